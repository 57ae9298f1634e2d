"""Host embeddings: Word2Vec (`w2v`) and the GCN family (`gnn`)."""
