"""Feature maps ``phi(x)``: every supported model is linear over one of these.

A feature map is fitted with its estimator and then fixed: removing or
up-weighting a training point in the influence sense never changes it.
``transform`` is written in :mod:`autograd.numpy` so that derivatives with respect
to the input flow through it.
"""

import autograd.numpy as anp
import numpy as np
import scipy.sparse as sp
from autograd.scipy.linalg import solve_triangular
from scipy.linalg import LinAlgError, cholesky

__all__ = ["IdentityFeatures", "RBFLandmarkFeatures", "RandomFourierFeatures", "resolve_gamma"]


class IdentityFeatures:
    """The identity map ``phi(x) = x`` of linear models (dense or sparse ``X``)."""

    is_identity = True

    def transform(self, X):
        return X

    def __repr__(self):
        return "IdentityFeatures()"


def resolve_gamma(gamma, X):
    """``gamma`` as :class:`sklearn.svm.SVC` reads it ("scale", "auto" or a float)."""
    n_features = X.shape[1]
    if gamma == "scale":
        if sp.issparse(X):
            var = X.multiply(X).mean() - X.mean() ** 2
        else:
            var = X.var()
        return 1.0 / (n_features * var) if var != 0 else 1.0
    if gamma == "auto":
        return 1.0 / n_features
    return float(gamma)


def _rbf(X, C, gamma):
    """``exp(-gamma ||x - c||^2)`` for rows of ``X`` and ``C``, in autograd.numpy."""
    sq = anp.sum(X**2, axis=1)[:, None] - 2.0 * anp.dot(X, C.T) + anp.sum(C**2, axis=1)[None, :]
    return anp.exp(-gamma * anp.maximum(sq, 0.0))


class RBFLandmarkFeatures:
    """Exact or Nystroem features of the RBF kernel ``k(x, c) = exp(-gamma ||x - c||^2)``.

    With landmarks ``C`` and ``k(C, C) = L L^T`` (Cholesky, jittered if needed),
    ``phi(x) = L^{-1} k(C, x)``, so ``phi(x)^T phi(x') = k(x, C) k(C, C)^{-1}
    k(C, x')``. With every training point as a landmark this reproduces the kernel
    exactly on the training points, ``||w||^2`` is the RKHS norm of the function
    and a linear model over ``phi`` is the kernel machine itself; with a subset it
    is the Nystroem approximation.

    Parameters
    ----------
    landmarks : ndarray of shape (m, n_features)
    gamma : float
    """

    is_identity = False

    def __init__(self, landmarks, gamma):
        self.landmarks = np.asarray(landmarks, dtype=np.float64)
        self.gamma = float(gamma)
        Kmm = _rbf(self.landmarks, self.landmarks, self.gamma)
        self.jitter = 0.0
        for jitter in [0.0] + [10.0**e for e in range(-12, -1)]:
            try:
                self.L = cholesky(Kmm + jitter * np.eye(len(Kmm)), lower=True)
                self.jitter = jitter
                break
            except LinAlgError:
                continue
        else:  # pragma: no cover - k(C, C) has unit diagonal: jitter 0.1 always works
            raise LinAlgError("the kernel matrix of the landmarks cannot be factored")

    @property
    def n_components(self):
        return self.landmarks.shape[0]

    def transform(self, X):
        if sp.issparse(X):
            X = X.toarray()
        Kxc = _rbf(X, self.landmarks, self.gamma)  # (n, m)
        return anp.transpose(solve_triangular(self.L, anp.transpose(Kxc), lower=True))

    def __repr__(self):
        return f"RBFLandmarkFeatures(n_components={self.n_components}, gamma={self.gamma:g})"


class RandomFourierFeatures:
    """Random Fourier features of the RBF kernel (Rahimi & Recht, 2007).

    ``phi(x) = sqrt(2 / D) cos(x Omega + beta)`` with ``Omega ~ N(0, 2 gamma)`` and
    ``beta ~ U(0, 2 pi)``, so that ``E[phi(x)^T phi(x')] = k(x, x')``.

    Parameters
    ----------
    n_features : int
    n_components : int
    gamma : float
    random_state : int, RandomState instance or None
    """

    is_identity = False

    def __init__(self, n_features, n_components, gamma, random_state=None):
        from sklearn.utils import check_random_state

        rng = check_random_state(random_state)
        self.gamma = float(gamma)
        self.omega = rng.normal(scale=np.sqrt(2.0 * self.gamma), size=(n_features, n_components))
        self.beta = rng.uniform(0.0, 2.0 * np.pi, size=n_components)

    @property
    def n_components(self):
        return self.omega.shape[1]

    def transform(self, X):
        if sp.issparse(X):
            X = X.toarray()
        return np.sqrt(2.0 / self.n_components) * anp.cos(anp.dot(X, self.omega) + self.beta)

    def __repr__(self):
        return f"RandomFourierFeatures(n_components={self.n_components}, gamma={self.gamma:g})"
