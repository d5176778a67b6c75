"""Smooth-hinge support vector classifiers, linear and RBF-kernel.

The hinge loss has no second derivative, so influence functions use the paper's
smoothing ``SmoothHinge(s, t) = t log(1 + exp((1 - s) / t))``, which tends to the
hinge as ``t -> 0`` (Koh & Liang, 2017, §4.1). Both estimators minimise

    C sum_i s_i SmoothHinge(y_i f(x_i), t) + 1/2 ||w||^2,    f(x) = phi(x) w + b,

by Newton's method on the library's own exact derivatives, and differ only in
their feature map ``phi``: the identity, or RBF-kernel features.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._mixin import InfluenceMixin, InfluenceModel, check_labels, check_magnitude
from ._optimize import fit_newton
from ._dask import is_dask
from ._frames import check_training_rows
from ._utils import check_non_negative_weights, effective_weights
from .curvature import penalty_diagonal
from .features import (
    IdentityFeatures,
    RandomFourierFeatures,
    RBFLandmarkFeatures,
    resolve_gamma,
)
from .losses import SmoothHinge
from .solvers import INFLUENCE_SETTINGS

__all__ = ["SmoothHingeSVC", "RBFSmoothHingeSVC"]


class _BaseSmoothHingeSVC(InfluenceMixin, ClassifierMixin, BaseEstimator):
    """Shared fit / predict of the smooth-hinge classifiers; subclasses give ``phi``."""

    _parameter_constraints: dict = {
        "C": [Interval(Real, 0, None, closed="neither")],
        "t": [Interval(Real, 0, None, closed="neither")],
        "influence_t": [Interval(Real, 0, None, closed="neither"), None],
        "fit_intercept": ["boolean"],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "tol": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "warm_start": ["boolean"],
        **INFLUENCE_SETTINGS,
    }

    def _make_features(self, X):  # pragma: no cover - abstract
        raise NotImplementedError

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the smooth-hinge SVM to a tight optimum by Newton's method.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights ``s_i`` (multiplied by ``class_weight``).
            Refitting with a row's weight set to 0 is the exact retraining that
            influence's "removal" predicts (the feature map stays as fitted).

        Returns
        -------
        self : object
        """
        if is_dask(X):
            if not isinstance(self._make_features(X[:1].compute()), IdentityFeatures):
                raise ValueError(
                    f"{type(self).__name__} cannot be fitted on a dask array: its kernel "
                    "features need all training rows. Use SmoothHingeSVC, or compute X."
                )
            # blockwise Newton with the same continuation in t as in memory
            warm = [SmoothHinge(10.0**e) for e in range(0, -6, -1) if 10.0**e > self.t]
            self.n_iter_ = self._fit_dask(X, y, sample_weight, SmoothHinge(self.t), self.C,
                                          self.tol, self.max_iter, continuation=warm)
            self.feature_map_ = IdentityFeatures()
            return self
        X_raw, y_raw = X, y
        check_labels(y)
        check_non_negative_weights(sample_weight)  # before any fitted attribute is set
        check_training_rows(X, y, sample_weight)
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=np.float64)
        check_magnitude(X, "X")
        check_classification_targets(y)
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes, but the "
                f"data contains only one class: {classes[0]!r}."
            )
        s, y_index = effective_weights(classes, self.class_weight, y, sample_weight, len(y))
        features = self._make_features(X)
        loss = SmoothHinge(self.t)
        Y = loss.encode(y_index, len(classes))
        Phi = features.transform(X)
        K = loss.n_outputs(len(classes))
        d = Phi.shape[1]
        D = d + int(self.fit_intercept)
        pen = penalty_diagonal(K, d, self.fit_intercept, self.C, len(y))
        Theta0 = np.zeros((K, D))
        if self.warm_start and getattr(self, "coef_", np.empty(0)).shape == (K, d):
            Theta0[:, :d] = self.coef_
            if self.fit_intercept:
                Theta0[:, d] = self.intercept_
        # Continuation in t: a small-t smooth hinge is nearly flat away from the
        # margin, so start from the solution at a larger temperature.
        n_iter = 0
        if not (self.warm_start and Theta0.any()):
            for t_start in [10.0**e for e in range(0, -6, -1)]:
                if t_start <= self.t:
                    break
                Theta0, it = fit_newton(
                    SmoothHinge(t_start), Phi, Y, s, self.fit_intercept, pen, Theta0,
                    tol=max(self.tol, 1e-6), max_iter=self.max_iter, warn=False,
                )
                n_iter += it
        Theta, it = fit_newton(
            loss, Phi, Y, s, self.fit_intercept, pen, Theta0, tol=self.tol,
            max_iter=self.max_iter,
        )
        self.n_iter_ = n_iter + it
        self.classes_ = classes
        self.feature_map_ = features
        self.coef_ = Theta[:, :d]
        self.intercept_ = Theta[:, d] if self.fit_intercept else np.zeros(K)
        self._remember_training_data(
            X, Y, s, y=y, sample_weight=sample_weight, X_raw=X_raw, y_raw=y_raw
        )
        return self

    def decision_function(self, X):
        """Signed distance ``f(x) = phi(x) w + b``; shape (n,) binary, (n, K) else."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, accept_sparse="csr", dtype=np.float64)
        F = np.asarray(self.feature_map_.transform(X) @ self.coef_.T) + self.intercept_
        return F[:, 0] if F.shape[1] == 1 else F

    def predict(self, X):
        """Class labels: the sign of ``f`` (binary), else the largest ``f_k``."""
        F = self.decision_function(X)
        idx = (F > 0).astype(int) if F.ndim == 1 else F.argmax(axis=1)
        return self.classes_[idx]

    def _expects_stationary(self):
        return self.influence_t is None or self.influence_t == self.t

    def _influence_model(self):
        t = self.t if self.influence_t is None else self.influence_t
        return InfluenceModel(
            loss=SmoothHinge(t),
            features=self.feature_map_,
            coef=self.coef_,
            intercept=self.intercept_ if self.fit_intercept else None,
            C=float(self.C),
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


_SHARED_PARAMS = """\
    C : float, default=1.0
        Inverse regularisation strength, as in LinearSVC (> 0).
    t : float, default=0.1
        Temperature of the smooth hinge (> 0); the hinge is the limit t -> 0.
    influence_t : float or None, default=None
        Temperature of the loss used by the influence methods; ``None`` means
        ``t``. The paper fitted its SVM with the hinge and explained it with a
        smooth hinge: fit at a tiny ``t`` and set ``influence_t`` (e.g. 0.001)
        to do the same. Then the fit is not stationary for the influence loss and
        no StationarityWarning is issued.
    fit_intercept : bool, default=True
        Fit an (unpenalised) intercept ``b``.
    class_weight : dict, "balanced" or None, default=None
        As in LinearSVC: multiplies the sample weights.
    tol : float, default=1e-10
        Newton's method stops when ``max |grad R| <= tol``, with ``R`` the
        objective divided by ``C n``.
    max_iter : int, default=200
        Maximum number of Newton iterations.
    warm_start : bool, default=False
        Start from the previous solution (useful when refitting many times).
    influence_solver : {"auto", "direct", "cg", "lissa"} or solver object, default="auto"
        How ``H^{-1}`` is applied, as in InfluenceLogisticRegression (``"auto"``:
        Cholesky up to 4,000 parameters, else conjugate gradients).
    damping : float, default=0.0
        ``lambda`` added to the Hessian's diagonal for influence."""

_SHARED_NOTES = """\
    Two classes use one output, ``y`` in {-1, +1} with ``classes_[1]`` positive.
    More classes are one-vs-rest: one output per class, the loss of a sample is
    the sum of its binary losses, so the Hessian is block-diagonal across classes
    and the test loss of the influence methods is that sum too."""


class SmoothHingeSVC(_BaseSmoothHingeSVC):
    __doc__ = f"""Linear support vector classifier with the smooth hinge loss.

    Minimises ``C sum_i s_i SmoothHinge(y_i f(x_i), t) + 1/2 ||w||^2`` with
    ``f(x) = x w + b`` and ``SmoothHinge(s, t) = t log(1 + exp((1 - s) / t))``
    by Newton's method, to a tight optimum, and adds the influence methods of
    :class:`InfluenceMixin` (same conventions as
    :class:`InfluenceLogisticRegression`). Parameters follow LinearSVC where
    they overlap.

    Parameters
    ----------
{_SHARED_PARAMS}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (n_outputs, n_features)
    intercept_ : ndarray of shape (n_outputs,)
    feature_map_ : IdentityFeatures
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
    n_iter_ : int

    Notes
    -----
{_SHARED_NOTES}

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skinfluence import SmoothHingeSVC
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X)
    >>> svm = SmoothHingeSVC(C=1.0, t=0.1).fit(X[:300], y[:300])
    >>> svm.influence_on_loss(X[300:302], y[300:302]).shape
    (2, 300)
    """

    def __init__(
        self,
        C=1.0,
        *,
        t=0.1,
        influence_t=None,
        fit_intercept=True,
        class_weight=None,
        tol=1e-10,
        max_iter=200,
        warm_start=False,
        influence_solver="auto",
        damping=0.0,
    ):
        self.C = C
        self.t = t
        self.influence_t = influence_t
        self.fit_intercept = fit_intercept
        self.class_weight = class_weight
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.influence_solver = influence_solver
        self.damping = damping

    def _make_features(self, X):
        return IdentityFeatures()


class RBFSmoothHingeSVC(_BaseSmoothHingeSVC):
    __doc__ = f"""RBF-kernel support vector classifier with the smooth hinge loss.

    A linear smooth-hinge SVM over explicit features of the kernel
    ``k(x, c) = exp(-gamma ||x - c||^2)``. By default (``kernel_approximation=
    "exact"``) every training point is a landmark and ``phi(x) = L^{{-1}} k(X_train,
    x)`` with ``k(X_train, X_train) = L L^T`` (jittered if needed): the features
    reproduce the kernel exactly on the training points, so the penalty
    ``1/2 ||w||^2`` is the RKHS norm of ``f`` and the model *is* the kernel SVM
    with the smooth hinge (the construction of the paper's code). ``"nystroem"``
    uses ``n_components`` random training rows as landmarks, ``"fourier"``
    random Fourier features; both scale to large ``n``.

    The feature map is fitted once and held fixed: influence ("removing" or
    up-weighting a training point) re-weights the point's loss but keeps it as
    a landmark, and the matching retraining is a refit with that point's
    ``sample_weight`` set to 0. The map is written in autograd.numpy, so
    derivatives with respect to the inputs flow through it.

    Parameters
    ----------
    gamma : {{"scale", "auto"}} or float, default="scale"
        As in :class:`sklearn.svm.SVC`: ``1 / (n_features * X.var())``,
        ``1 / n_features``, or the value given.
    kernel_approximation : {{"exact", "nystroem", "fourier"}}, default="exact"
    n_components : int, default=100
        Landmarks (Nystroem) or random features (Fourier); ignored by "exact".
    random_state : int, RandomState instance or None, default=None
        Draws the Nystroem landmarks or the Fourier frequencies.
{_SHARED_PARAMS}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (n_outputs, n_components)
        Weights over the kernel features.
    intercept_ : ndarray of shape (n_outputs,)
    feature_map_ : RBFLandmarkFeatures or RandomFourierFeatures
    gamma_ : float
    n_features_in_ : int
    n_iter_ : int

    Notes
    -----
{_SHARED_NOTES}

    The exact map costs ``O(n^2)`` memory and ``O(n^3)`` time (Cholesky of the
    kernel matrix and of the ``n x n`` Hessian); use "nystroem" beyond a few
    thousand training rows.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skinfluence import RBFSmoothHingeSVC
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X)
    >>> svm = RBFSmoothHingeSVC(gamma=0.02, t=0.1).fit(X[:300], y[:300])
    >>> svm.self_influence().shape
    (300,)
    """

    _parameter_constraints: dict = {
        **_BaseSmoothHingeSVC._parameter_constraints,
        "gamma": [StrOptions({"scale", "auto"}), Interval(Real, 0, None, closed="neither")],
        "kernel_approximation": [StrOptions({"exact", "nystroem", "fourier"})],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        C=1.0,
        *,
        gamma="scale",
        kernel_approximation="exact",
        n_components=100,
        random_state=None,
        t=0.1,
        influence_t=None,
        fit_intercept=True,
        class_weight=None,
        tol=1e-10,
        max_iter=200,
        warm_start=False,
        influence_solver="auto",
        damping=0.0,
    ):
        self.C = C
        self.gamma = gamma
        self.kernel_approximation = kernel_approximation
        self.n_components = n_components
        self.random_state = random_state
        self.t = t
        self.influence_t = influence_t
        self.fit_intercept = fit_intercept
        self.class_weight = class_weight
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.influence_solver = influence_solver
        self.damping = damping

    def _keep_fitted_map(self, refit):
        # a refit is "the same model without these rows": the feature map stays as
        # fitted (with random_state=None a refit drew other landmarks / frequencies,
        # and a refit with no row removed moved decision values by up to 1.8)
        refit._fitted_map = (self.feature_map_, self.gamma_)

    def _make_features(self, X):
        kept = self.__dict__.pop("_fitted_map", None)
        if kept is not None:
            self.gamma_ = kept[1]
            return kept[0]
        self.gamma_ = resolve_gamma(self.gamma, X)
        Xd = X.toarray() if hasattr(X, "toarray") else X
        if self.kernel_approximation == "exact":
            return RBFLandmarkFeatures(Xd, self.gamma_)
        rng = check_random_state(self.random_state)
        if self.kernel_approximation == "nystroem":
            m = min(self.n_components, Xd.shape[0])
            idx = np.sort(rng.choice(Xd.shape[0], size=m, replace=False))
            return RBFLandmarkFeatures(Xd[idx], self.gamma_)
        return RandomFourierFeatures(Xd.shape[1], self.n_components, self.gamma_, rng)
