"""Host embeddings: i-DarkVec (`w2v`) and graph neural networks (`gnn`)."""
