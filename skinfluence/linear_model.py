"""InfluenceLogisticRegression: scikit-learn's LogisticRegression that explains itself."""

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.utils.validation import check_array, column_or_1d

from ._mixin import InfluenceMixin, InfluenceModel, check_labels, check_magnitude
from .exceptions import InfluenceNotDefinedError
from ._dask import is_dask
from ._frames import check_training_rows
from ._utils import check_non_negative_weights, effective_weights
from .features import IdentityFeatures
from .losses import LogLoss, SoftmaxLoss, SquaredLoss
from .solvers import INFLUENCE_SETTINGS

__all__ = ["InfluenceLogisticRegression", "InfluenceRidge"]

_INFLUENCE_CONSTRAINTS = {
    **INFLUENCE_SETTINGS,
}


class InfluenceLogisticRegression(InfluenceMixin, LogisticRegression):
    """L2 logistic regression with exact influence functions.

    A drop-in replacement for :class:`sklearn.linear_model.LogisticRegression`:
    the same parameters, the same fit, the same ``coef_``, ``predict_proba`` and
    ``score``. It also stores its training data, so that it can say how each
    training point affects each prediction (Koh & Liang, 2017):
    :meth:`influence_on_loss`, :meth:`self_influence`,
    :meth:`influence_on_params`.

    Binary problems use the logistic loss on ``classes_[1]``; three or more
    classes use the multinomial (softmax) loss. All influence quantities refer to
    ``R(theta) = (1/n) sum_i s_i l_i(theta) + 1/(2 C n) ||W||^2`` -- scikit-learn's
    objective divided by ``C n`` -- with ``s_i = sample_weight_i *
    class_weight[y_i]``. With ``solver="liblinear"`` the intercept is penalised
    as liblinear does, by ``1 / intercept_scaling**2``.

    Influence needs a twice-differentiable objective: with ``l1_ratio > 0``
    the model fits as usual, but the influence methods raise. With ``C=np.inf``
    (no penalty) the Hessian may be singular (e.g. separable data): then an
    error suggests ``damping``. In the multinomial case the Hessian is singular
    along the common shift of all intercepts, which the softmax ignores; every
    gradient is orthogonal to it and influence is computed on its complement
    (equal to using the pseudo-inverse).

    Influence functions assume the fitted parameters are an exact optimum.
    scikit-learn's default ``tol=1e-4`` often is not tight enough; see
    :meth:`stationarity`. For explanations, fit with e.g. ``tol=1e-10,
    max_iter=1000`` or ``solver="newton-cholesky"``.

    Parameters
    ----------
    penalty, C, l1_ratio, dual, tol, fit_intercept, intercept_scaling, \
class_weight, random_state, solver, max_iter, verbose, warm_start, n_jobs
        As in :class:`sklearn.linear_model.LogisticRegression`.
    influence_solver : {"auto", "direct", "cg", "lissa"} or solver object, default="auto"
        How ``H^{-1}`` is applied: ``"direct"`` factors the exact Hessian
        (Cholesky); ``"cg"`` runs conjugate gradients on Hessian-vector products
        (never factors H; for many features or sparse X); ``"lissa"`` the paper's
        stochastic estimation (approximate); ``"auto"`` is direct up to 4,000
        parameters, else CG. Pass :class:`~skinfluence.solvers.Direct`,
        :class:`~skinfluence.solvers.ConjugateGradient` or
        :class:`~skinfluence.solvers.LiSSA` to set their options (tunable as
        ``influence_solver__<option>``).
    damping : float, default=0.0
        ``lambda >= 0`` added to the Hessian's diagonal (``H + lambda I``), for
        objectives whose Hessian is singular or ill-conditioned.

    Attributes
    ----------
    classes_, coef_, intercept_, n_features_in_, feature_names_in_, n_iter_
        As in :class:`sklearn.linear_model.LogisticRegression`.

    See Also
    --------
    sklearn.linear_model.LogisticRegression : The parent estimator.

    References
    ----------
    P. W. Koh and P. Liang, "Understanding Black-box Predictions via Influence
    Functions", ICML 2017.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skinfluence import InfluenceLogisticRegression
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X)
    >>> clf = InfluenceLogisticRegression(tol=1e-10, max_iter=1000).fit(X[:400], y[:400])
    >>> infl = clf.influence_on_loss(X[400:403], y[400:403])
    >>> infl.shape
    (3, 400)
    >>> bool((clf.self_influence() <= 0).all())
    True
    """

    _parameter_constraints: dict = {
        **LogisticRegression._parameter_constraints,
        **_INFLUENCE_CONSTRAINTS,
    }

    def __init__(
        self,
        penalty="deprecated",
        *,
        C=1.0,
        l1_ratio=0.0,
        dual=False,
        tol=1e-4,
        fit_intercept=True,
        intercept_scaling=1,
        class_weight=None,
        random_state=None,
        solver="lbfgs",
        max_iter=100,
        verbose=0,
        warm_start=False,
        n_jobs=None,
        influence_solver="auto",
        damping=0.0,
    ):
        super().__init__(
            penalty=penalty,
            C=C,
            l1_ratio=l1_ratio,
            dual=dual,
            tol=tol,
            fit_intercept=fit_intercept,
            intercept_scaling=intercept_scaling,
            class_weight=class_weight,
            random_state=random_state,
            solver=solver,
            max_iter=max_iter,
            verbose=verbose,
            warm_start=warm_start,
            n_jobs=n_jobs,
        )
        self.influence_solver = influence_solver
        self.damping = damping

    def fit(self, X, y, sample_weight=None):
        """Fit the model exactly as LogisticRegression does, and keep the data.

        With a ``dask.array`` X (rows in chunks) the model is fitted by
        skinfluence's blockwise Newton method instead (one pass over the blocks
        per iteration, to ``max |grad R| <= min(tol, 1e-10)``; ``solver`` is
        ignored) and the influence methods return lazy dask arrays.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        if is_dask(X):
            # blockwise Newton to max|grad R| <= min(tol, 1e-10), whatever `solver` says
            import dask.array as da

            self._validate_params()
            n_classes = len(np.unique(np.asarray(da.unique(da.asarray(y)).compute())))
            loss = LogLoss() if n_classes == 2 else SoftmaxLoss()
            n_iter = self._fit_dask(X, y, sample_weight, loss, self._effective_C(),
                                    min(self.tol, 1e-10), max(self.max_iter, 50))
            self.n_iter_ = np.array([n_iter], dtype=np.int32)
            return self
        check_magnitude(X, "X")  # before the parent's fit, whose messages would mislead
        check_labels(y)
        if not hasattr(sample_weight, "dask"):
            check_non_negative_weights(sample_weight)
        check_training_rows(X, y, sample_weight)
        super().fit(X, y, sample_weight=sample_weight)
        X_raw, y_raw = X, y
        X = check_array(X, accept_sparse="csr", dtype=np.float64)
        y = column_or_1d(y)
        s, y_index = effective_weights(
            self.classes_, self.class_weight, y, sample_weight, X.shape[0]
        )
        loss = self._loss()
        self._remember_training_data(
            X, loss.encode(y_index, len(self.classes_)), s, y=y, sample_weight=sample_weight,
            X_raw=X_raw, y_raw=y_raw,
        )
        return self

    def _loss(self):
        return LogLoss() if len(self.classes_) == 2 else SoftmaxLoss()

    def _stationarity_advice(self):
        return ("Refit with a smaller `tol` (e.g. tol=1e-10) and a larger `max_iter`, or "
                "solver='newton-cholesky'.")

    def _effective_C(self):
        """C of the L2 objective (``np.inf`` without penalty); raise for L1."""
        penalty = self.penalty
        if penalty == "deprecated":
            l1_ratio = 0.0 if self.l1_ratio is None else self.l1_ratio
            if l1_ratio > 0:
                raise InfluenceNotDefinedError(
                    f"Influence functions need a twice-differentiable objective, but "
                    f"l1_ratio={self.l1_ratio} adds an L1 penalty. Refit with "
                    f"l1_ratio=0 (L2 penalty) to compute influence."
                )
            return float(self.C)
        if penalty in ("l1", "elasticnet"):
            raise InfluenceNotDefinedError(
                f"Influence functions need a twice-differentiable objective, but "
                f"penalty={penalty!r} is not. Refit with an L2 penalty (l1_ratio=0)."
            )
        return np.inf if penalty is None else float(self.C)

    def _check_influence_supported(self):
        self._effective_C()

    def _influence_model(self):
        intercept_penalty = 0.0
        if self.solver == "liblinear" and self.fit_intercept:
            intercept_penalty = 1.0 / float(self.intercept_scaling) ** 2
        return InfluenceModel(
            loss=self._loss(),
            features=IdentityFeatures(),
            coef=np.asarray(self.coef_, dtype=np.float64),
            intercept=(
                np.asarray(self.intercept_, dtype=np.float64) if self.fit_intercept else None
            ),
            C=self._effective_C(),
            intercept_penalty=intercept_penalty,
        )


def ridge_influence_model(ridge):
    """The influence description of a fitted scikit-learn ``Ridge``.

    Ridge minimises ``sum_i s_i (y_i - f_i)^2 + alpha ||W||^2``; with the loss
    ``l = (y - f)^2 / 2`` that is ``2 alpha`` times ``C sum_i s_i l_i + 1/2 ||W||^2``
    with ``C = 1 / alpha``.
    """
    alpha = np.asarray(ridge.alpha, dtype=float)
    if alpha.ndim > 0 and alpha.size > 1:
        raise InfluenceNotDefinedError(
            "Ridge with one alpha per target is not supported; fit one model per "
            "target (or use a single alpha) to compute influence."
        )
    if getattr(ridge, "positive", False):
        raise InfluenceNotDefinedError(
            "Ridge(positive=True) is a constrained fit: influence functions need an "
            "unconstrained optimum. Refit with positive=False."
        )
    alpha = float(alpha)
    coef = np.atleast_2d(np.asarray(ridge.coef_, dtype=np.float64))
    intercept = np.atleast_1d(np.asarray(ridge.intercept_, dtype=np.float64))
    return InfluenceModel(
        loss=SquaredLoss(),
        features=IdentityFeatures(),
        coef=coef,
        intercept=intercept if ridge.fit_intercept else None,
        C=np.inf if alpha == 0 else 1.0 / alpha,
    )


def regression_targets(y, n_outputs, loss=None, what="y", training=False):
    """Targets of a regression influence model as an ``(n, K)`` float array: finite,
    and in the domain of ``loss`` (:meth:`~skinfluence.losses.Loss.check_targets`)."""
    y = np.asarray(y, dtype=np.float64)
    if not np.all(np.isfinite(y)):
        raise ValueError("y contains NaN or infinity; pass finite regression targets.")
    check_magnitude(y, "y")
    Y = y.reshape(len(y), -1)
    if Y.shape[1] != n_outputs:
        raise ValueError(f"y has {Y.shape[1]} target(s) but the model has {n_outputs}.")
    if loss is not None:
        loss.check_targets(Y, what, training)
    return Y


def regression_weights(sample_weight, n):
    """The effective weights ``s`` of a regression; negative weights are refused (the
    objective would not be convex, and influence assumes it is)."""
    if sample_weight is None:
        return np.ones(n)
    s = np.broadcast_to(np.asarray(sample_weight, dtype=np.float64), (n,)).copy()
    check_non_negative_weights(s)
    return s


class InfluenceRidge(InfluenceMixin, Ridge):
    """Ridge regression with exact influence functions.

    A drop-in replacement for :class:`sklearn.linear_model.Ridge` (same
    parameters, same fit) that also stores its training data and answers
    :meth:`influence_on_loss`, :meth:`self_influence`,
    :meth:`influence_on_params` and :meth:`perturbation_influence`. The loss
    is ``l = (y - f)^2 / 2`` (summed over targets); the objective, divided by
    ``2 alpha n``, is the library's ``R = (1/n) sum s_i l_i + ||W||^2 / (2 C n)``
    with ``C = 1 / alpha``. For this quadratic loss ``kind="newton"`` is the exact
    leave-one-out change.

    Parameters
    ----------
    alpha, fit_intercept, copy_X, max_iter, tol, solver, positive, random_state
        As in :class:`sklearn.linear_model.Ridge` (a single ``alpha``;
        ``positive=False``).
    influence_solver : {"auto", "direct", "cg", "lissa"} or solver object, default="auto"
    damping : float, default=0.0

    Attributes
    ----------
    coef_, intercept_, n_features_in_, feature_names_in_
        As in :class:`sklearn.linear_model.Ridge`.
    target_names_ : ndarray
        With several targets given as a DataFrame: its column names, which name
        the outputs in labelled results (``loo_predict(as_frame=True)``,
        ``parameter_names()``).

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from skinfluence import InfluenceRidge
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = InfluenceRidge(alpha=0.1).fit(X[:300], y[:300])
    >>> reg.influence_on_loss(X[300:302], y[300:302], kind="newton").shape
    (2, 300)
    """

    _not_objective_params = frozenset({"solver"})  # any solver reaches the same optimum

    _parameter_constraints: dict = {**Ridge._parameter_constraints, **_INFLUENCE_CONSTRAINTS}

    def __init__(
        self,
        alpha=1.0,
        *,
        fit_intercept=True,
        copy_X=True,
        max_iter=None,
        tol=1e-4,
        solver="auto",
        positive=False,
        random_state=None,
        influence_solver="auto",
        damping=0.0,
    ):
        super().__init__(
            alpha=alpha, fit_intercept=fit_intercept, copy_X=copy_X, max_iter=max_iter,
            tol=tol, solver=solver, positive=positive, random_state=random_state,
        )
        self.influence_solver = influence_solver
        self.damping = damping

    def fit(self, X, y, sample_weight=None):
        """Fit exactly as Ridge does, and keep the training data.

        Returns
        -------
        self : object
        """
        check_magnitude(X, "X")  # before the parent's fit, whose messages would mislead
        check_non_negative_weights(sample_weight)
        check_training_rows(X, y, sample_weight)
        super().fit(X, y, sample_weight=sample_weight)
        X_raw = X
        X = check_array(X, accept_sparse="csr", dtype=np.float64)
        K = np.atleast_2d(self.coef_).shape[0]
        Y = regression_targets(y, K)
        s = np.ones(X.shape[0]) if sample_weight is None else np.broadcast_to(
            np.asarray(sample_weight, dtype=np.float64), (X.shape[0],)).copy()
        self._remember_training_data(X, Y, s, y=np.asarray(y), sample_weight=sample_weight,
                                     X_raw=X_raw, y_raw=y)
        return self

    def _influence_targets(self, y):
        return regression_targets(y, np.atleast_2d(self.coef_).shape[0])

    def _check_influence_supported(self):
        ridge_influence_model(self)

    def _influence_model(self):
        return ridge_influence_model(self)
