"""Small helpers shared by the estimators."""

import contextlib
import functools
import os
import re
import sys
import warnings

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


def warns_once_per_call(tool):
    """Decorate a tool that refits or recomputes many times: each kind of warning its
    steps raise (the same message up to its numbers: a solver's residuals, a refit's
    stationarity) is issued once per call, counting the others, at the user's line
    (a training-set attack of 20 steps issued 121 ConvergenceWarnings)."""

    @functools.wraps(tool)
    def once(*args, **kwargs):
        caught = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                return tool(*args, **kwargs)
        finally:
            kinds = {}
            for w in caught:
                key = (w.category, re.sub(r"[-+.\de]+", "#", str(w.message)))
                kinds.setdefault(key, []).append(w)
            for (category, _), same in kinds.items():
                message = str(same[0].message)
                if len(same) > 1:
                    message += f" (and {len(same) - 1} more like it in this call)"
                warnings.warn(message, category, stacklevel=user_stacklevel())

    return once


def user_stacklevel():
    """``stacklevel`` for a ``warnings.warn`` made by the caller of this function that
    points at the first frame outside skinfluence (and ``contextlib``): the user's
    line, whichever public method led there."""
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
            _PASS_THROUGH):
        frame, level = frame.f_back, level + 1
    return level
