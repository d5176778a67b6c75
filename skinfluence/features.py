"""Feature maps ``phi(x)``: every supported model is linear over one of these.

A feature map is fitted with its estimator and then fixed: removing or
up-weighting a training point in the influence sense never changes it.
``transform`` is written in :mod:`autograd.numpy` so that derivatives with respect
to the input can flow through it.
"""

__all__ = ["IdentityFeatures"]


class IdentityFeatures:
    """The identity map ``phi(x) = x`` of linear models (dense or sparse ``X``)."""

    def transform(self, X):
        return X

    def __repr__(self):
        return "IdentityFeatures()"
