"""GCN, i-GCN, GCN-GRU and i-GCN-GRU host embeddings with link prediction (docs/method.md 4, 7.1, 7.6).

Reads daily graphs from `darkembed.graph.to_pyg`; writes checkpoints where the caller says. See `train` for the
schedules and the fixes of the authors' bugs, `models` for the architectures, `loop` for the training steps and
early stopping, `checkpoint` for the checkpoint files, `sampling` for the adjacency and the negatives.

Choices the papers leave open:

* Only the day's active subgraph is ever built (N = the day's hosts and ports, never the month's id space).
* GCN-GRU windows: each day of [t-H, t] is convolved on its own graph; nodes are aligned on day t's nodes by
  stable key (address, service). A node absent on a day gets a zero GRU input at that step (the GRU sees the
  absence, as the authors' zero-feature inactive nodes did); nodes absent on day t are not embedded.
* Without node features the N x N identity input becomes a learned table (`nn.Embedding`, one 1024-wide row per
  node, the authors' first-layer weight rows) keyed by a vocabulary of addresses and services that grows with new
  hosts, drops rows idle for `vocab_max_idle` updates, and is stored in the checkpoint. Chosen over hashing into a
  fixed table: no collisions between hosts, and memory follows the active population rather than a worst case.
  Nodes never trained on embed from a zero first-layer input.
* Early stopping (GCN, GCN-GRU): 10 % of the target day's edges are held out of the loss and of message passing;
  the node features, computed from all the day's packets, still reflect them. The final embedding uses the full
  graph.
* BatchNorm: after each update its running statistics are set to the updated day's statistics, so eval-mode
  inference normalises like training without the authors' side effects.
* Randomness: initial weights and negatives are drawn on the CPU from (seed, update index), so a GPU run starts
  from the same weights and sees the same negatives as a CPU run; only floating-point rounding differs.
"""

from darkembed.embed.gnn.checkpoint import CHECKPOINT
from darkembed.embed.gnn.models import GcnEncoder, GraphConv, LinkModel
from darkembed.embed.gnn.sampling import Snapshot, make_snapshot, normalised_adjacency, sample_negatives
from darkembed.embed.gnn.train import METHODS, GnnTrainer, Method, Vocabulary, embed_inductive, pick_device

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
