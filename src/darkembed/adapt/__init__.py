"""Cross-network adaptation: anchors, explicit aligners and the provider-customer exchange bundle.

Entry points (import the submodules; this package imports nothing heavy on its own):
    * `anchors.find_anchors(provider_ips, customer_ips, labels)`, `anchors.anchor_samples(labels, fraction, ...)`.
    * `aligners.make_aligner(kind, ...)` / `aligner_from_config` / `aligner_from_state`: `linear`, `nonlinear`,
      `procrustes`, each with `fit`, `transform`, `state`.
    * `exchange.save_anchors` / `save_aligner` and their `load_*`: verified bundles (the classifier's:
      `darkembed.evaluate.classifier_bundle`).

The evaluation uses this package; nothing here imports `darkembed.evaluate`.
"""
