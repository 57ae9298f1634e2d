"""Cross-network adaptation: anchors, explicit aligners and the provider-customer exchange bundle."""
