"""Report tables and figures."""
