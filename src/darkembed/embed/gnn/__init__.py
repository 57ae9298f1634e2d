"""GCN, i-GCN, GCN-GRU and i-GCN-GRU host embeddings with link prediction (REFERENCE.md 4, 7.1, 7.6).

Reads daily graphs from `darkembed.graph.to_pyg`; writes checkpoints where the caller says. See `train` for the
schedules and the fixes of the authors' bugs, `models` for the architectures, `sampling` for the adjacency and
the negatives.
"""

from darkembed.embed.gnn.models import GcnEncoder, GraphConv, LinkModel
from darkembed.embed.gnn.sampling import Snapshot, make_snapshot, normalised_adjacency, sample_negatives
from darkembed.embed.gnn.train import (
    CHECKPOINT,
    METHODS,
    GnnTrainer,
    Method,
    Vocabulary,
    embed_inductive,
    pick_device,
)

#: The adaptation method name under which `embed_inductive` is exposed.
INDUCTIVE_METHOD = "gnn-inductive"

__all__ = [
    "CHECKPOINT",
    "INDUCTIVE_METHOD",
    "METHODS",
    "GcnEncoder",
    "GnnTrainer",
    "GraphConv",
    "LinkModel",
    "Method",
    "Snapshot",
    "Vocabulary",
    "embed_inductive",
    "make_snapshot",
    "normalised_adjacency",
    "pick_device",
    "sample_negatives",
]
