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


class OncePerCall:
    """Holds the warnings raised inside :meth:`hold` and, on :meth:`issue`, gives each
    kind once -- the same category and message up to its numbers (a solver's residual
    per batch of right-hand sides, a refit's stationarity) -- counting the others, at
    the user's line: a call over many batches, chunks or refits warns once per kind
    (a training-set attack of 20 steps issued 121 ConvergenceWarnings). A holder
    inside another's :meth:`hold` leaves its warnings to the outer one."""

    depth = 0  # holds open now

    def __init__(self):
        self.held = []

    @contextlib.contextmanager
    def hold(self):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            OncePerCall.depth += 1
            try:
                yield self
            finally:
                OncePerCall.depth -= 1
                self.held.extend(caught)

    def issue(self):
        kinds = {}
        for w in self.held:
            # a message an inner holder already counted: its own, and how many more
            message, more = _counted(str(w.message))
            key = (w.category, re.sub(r"[-+.\de]+", "#", message))
            kinds.setdefault(key, []).append((message, more))
        self.held = []
        for (category, _), same in kinds.items():
            message = same[0][0]
            more = len(same) - 1 + sum(k for _, k in same)
            if more:
                message += f"{_MORE[0]}{more}{_MORE[1]}"
            warnings.warn(message, category, stacklevel=user_stacklevel())


_MORE = (" (and ", " more like it in this call)")


def _counted(message):
    """``(message, n)``: a held message without the count of ``n`` others like it."""
    found = re.search(r" \(and (\d+) more like it in this call\)$", message)
    if found is None:
        return message, 0
    return message[:found.start()], int(found.group(1))


@contextlib.contextmanager
def once_per_call():
    """A context inside which each kind of warning is issued once (see
    :class:`OncePerCall`); inside another such context, a pass-through."""
    if OncePerCall.depth:
        yield
        return
    held = OncePerCall()
    try:
        with held.hold():
            yield
    finally:
        held.issue()


def warns_once_per_call(tool):
    """Decorate a tool that refits or recomputes many times: :func:`once_per_call`."""

    @functools.wraps(tool)
    def once(*args, **kwargs):
        with once_per_call():
            return tool(*args, **kwargs)

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
