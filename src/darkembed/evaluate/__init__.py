"""Evaluation: consistent folds, classifiers (DNN, leave-one-out kNN), metrics and the [TNSM] protocol."""
