"""Evaluation: consistent folds, classifiers (DNN, leave-one-out kNN), metrics and the [TNSM] protocol.

Entry points (import the submodules):
    * `folds.consistent_folds(...)`: folds over the union of two networks' hosts, same fold for a shared host.
    * `classifiers.DNNClassifier`, `classifiers.knn_loo(X, labels)`; `classifier_bundle.save_classifier` /
      `load_classifier`: the DNN classifier as an exchange bundle.
    * `metrics.score(y_true, y_pred)`, `metrics.summarize(runs)`, `metrics.confusion(...)`.
    * `protocol.no_adaptation` / `align` / `transfer` / `independent` / `anchor_sweep` / `fit_aligner`.
"""
