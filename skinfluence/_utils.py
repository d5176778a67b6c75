"""Small helpers shared by the estimators."""

import contextlib
import os
import sys

import numpy as np
from sklearn.utils import compute_class_weight
from sklearn.utils.validation import _check_sample_weight

__all__ = ["effective_weights", "check_non_negative_weights"]


def check_non_negative_weights(sample_weight):
    """Refuse negative sample weights (None passes)."""
    if sample_weight is None:
        return
    try:
        s = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError):
        return  # not numbers: the estimator's own validation says so
    if s.ndim and np.any(s < 0):
        raise ValueError(
            f"sample_weight has {int(np.sum(s < 0))} negative value(s) (smallest "
            f"{float(s.min()):g}): a negative weight makes the objective non-convex and "
            "influence undefined. Pass weights >= 0 (0 leaves a row out)."
        )


def effective_weights(classes, class_weight, y, sample_weight, n_samples):
    """``s_i = sample_weight_i * class_weight[y_i]`` as scikit-learn computes them.

    Returns the weights and the class index of every sample.
    """
    s = _check_sample_weight(sample_weight, np.empty((n_samples, 0)), dtype=np.float64)
    check_non_negative_weights(s)
    y_index = np.searchsorted(classes, y)
    if class_weight is not None:
        cw = compute_class_weight(class_weight, classes=classes, y=y, sample_weight=s)
        s = s * cw[y_index]
    return s, y_index


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep
_PASS_THROUGH = (_PACKAGE, os.path.abspath(contextlib.__file__))


def user_stacklevel():
    """``stacklevel`` for a ``warnings.warn`` made by the caller of this function that
    points at the first frame outside skinfluence (and ``contextlib``): the user's
    line, whichever public method led there."""
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
            _PASS_THROUGH):
        frame, level = frame.f_back, level + 1
    return level
