"""Exceptions and warnings raised by skinfluence."""

import numpy as np

__all__ = [
    "SingularHessianError", "StationarityWarning", "InfluenceNotDefinedError", "DampingWarning",
]


class SingularHessianError(np.linalg.LinAlgError):
    """The Hessian of the training objective cannot be inverted.

    A subclass of :class:`numpy.linalg.LinAlgError` (itself a ``ValueError``).
    The message says how to regularise the problem (``damping`` or a finite ``C``).
    """


class InfluenceNotDefinedError(ValueError):
    """Influence is not defined for this model's objective (e.g. an L1 penalty)."""


class StationarityWarning(UserWarning):
    """The fitted parameters are far enough from the optimum to distort influence.

    Influence functions assume the gradient of the training objective vanishes
    at the fitted parameters. Refit with a smaller ``tol`` (and a larger
    ``max_iter``), or a second-order solver such as ``solver="newton-cholesky"``.
    """


class DampingWarning(UserWarning):
    """``damping`` is a material part of the Hessian's curvature.

    Influence with ``H + damping * I`` then differs from the undamped answer by
    up to the share of the smallest curvature that the damping makes up (and
    the undamped answer may not exist at all).
    """
