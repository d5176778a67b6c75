"""Small helpers shared by the estimators."""

import numpy as np
from sklearn.utils import compute_class_weight
from sklearn.utils.validation import _check_sample_weight

__all__ = ["effective_weights"]


def effective_weights(classes, class_weight, y, sample_weight, n_samples):
    """``s_i = sample_weight_i * class_weight[y_i]`` as scikit-learn computes them.

    Returns the weights and the class index of every sample.
    """
    s = _check_sample_weight(sample_weight, np.empty((n_samples, 0)), dtype=np.float64)
    y_index = np.searchsorted(classes, y)
    if class_weight is not None:
        cw = compute_class_weight(class_weight, classes=classes, y=y, sample_weight=s)
        s = s * cw[y_index]
    return s, y_index
