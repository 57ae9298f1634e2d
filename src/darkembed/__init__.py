"""darkembed: host embeddings, labels and cross-network transfer for darknet and honeypot traffic."""

__version__ = "0.1.0"
