"""Read the objective of an already-fitted scikit-learn estimator.

Every supported estimator is ``C sum_i s_i l(y_i, f_i) + 1/2 ||W||^2`` (the
intercept unpenalised unless liblinear) for some loss ``l`` and ``C``: a reader
turns the fitted estimator into that description -- an :class:`InfluenceModel`,
how targets are encoded, which class weights apply -- plus the estimator with
which a retraining refits (the chosen hyperparameters held fixed: a
``LogisticRegressionCV`` refits as a ``LogisticRegression`` with its ``C_``).

:class:`FittedObjective` is the influence model over such a reading; the rows it
sees are the final estimator's inputs (after a pipeline's earlier steps).
"""

import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import (
    GammaRegressor,
    LinearRegression,
    LogisticRegression,
    LogisticRegressionCV,
    PoissonRegressor,
    Ridge,
    RidgeClassifier,
    RidgeClassifierCV,
    RidgeCV,
    SGDClassifier,
    SGDRegressor,
    TweedieRegressor,
)
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    check_is_fitted,
    column_or_1d,
)

from ._mixin import InfluenceMixin, InfluenceModel, refit_judged
from ._utils import effective_weights, user_stacklevel
from .exceptions import InfluenceNotDefinedError
from .features import IdentityFeatures
from .glm import glm_loss
from .linear_model import InfluenceLogisticRegression, regression_targets, regression_weights
from .losses import OneVsRestLogLoss, SignedSquaredLoss, SquaredLoss
from .solvers import INFLUENCE_SETTINGS

__all__ = ["SUPPORTED", "FittedObjective", "read_objective"]

SUPPORTED = (
    "LogisticRegression / LogisticRegressionCV (L2 or no penalty), Ridge, RidgeCV, "
    "RidgeClassifier, RidgeClassifierCV, LinearRegression, SGDClassifier(loss='log_loss', "
    "penalty='l2'), SGDRegressor(loss='squared_error', penalty='l2'), PoissonRegressor, "
    "GammaRegressor, TweedieRegressor, or a Pipeline or "
    "GridSearchCV ending in one of them"
)


@dataclass
class Reading:
    """The objective of a fitted estimator, as the influence machinery needs it.

    ``C`` is divided by the number of training rows when ``C_per_row`` (SGD's
    ``(1/n) sum l_i + alpha/2 ||w||^2`` has ``C = 1 / (alpha n)``), and by the
    total sample weight when ``penalty_share`` (the GLMs' ``(1/sum s) sum s_i
    l_i + alpha/2 ||w||^2``, whose rows carry their share of the penalty).
    ``refit`` is an unfitted estimator minimising the same objective, used by
    the retraining tools.
    """

    loss: object
    C: float
    classifier: bool
    class_weight: object = None
    intercept_penalty: float = 0.0
    refit: object = None
    C_per_row: bool = False
    penalty_share: bool = False

    def C_for(self, n, total_weight=None):
        if self.penalty_share:
            return self.C / total_weight
        return self.C / n if self.C_per_row else self.C


def _fitted_intercept(est):
    return np.atleast_1d(np.asarray(est.intercept_, dtype=np.float64)) if est.fit_intercept \
        else None


def _logistic(est, classes=None):
    # the same reading of C, l1_ratio and liblinear's intercept as our subclass
    proxy = InfluenceLogisticRegression(**est.get_params())
    proxy.classes_ = est.classes_ if classes is None else classes
    intercept_penalty = 0.0
    if est.solver == "liblinear" and est.fit_intercept:
        intercept_penalty = 1.0 / float(est.intercept_scaling) ** 2
    return Reading(proxy._loss(), proxy._effective_C(), True, est.class_weight,
                   intercept_penalty, clone(est))


def _logistic_cv(est):
    if not getattr(est, "refit", True):
        raise InfluenceNotDefinedError(
            "LogisticRegressionCV(refit=False) averages the folds' coefficients, which is "
            "not the optimum of any objective; refit with refit=True to compute influence."
        )
    C = float(np.ravel(est.C_)[0])
    l1_ratio = np.ravel(getattr(est, "l1_ratio_", [None]))[0]
    l1_ratio = 0.0 if l1_ratio is None else float(l1_ratio)
    params = dict(C=C, l1_ratio=l1_ratio, fit_intercept=est.fit_intercept,
                  intercept_scaling=est.intercept_scaling, class_weight=est.class_weight,
                  solver=est.solver, tol=est.tol, max_iter=est.max_iter,
                  random_state=est.random_state)
    if getattr(est, "penalty", "deprecated") in ("l1", "elasticnet"):
        l1_ratio = 1.0
    if l1_ratio > 0:
        raise InfluenceNotDefinedError(
            f"LogisticRegressionCV chose l1_ratio={l1_ratio}, an L1 penalty, which is not "
            "twice differentiable; search over l1_ratios=(0,) to compute influence."
        )
    return _logistic(LogisticRegression(**params), classes=est.classes_)


def _sgd_classifier(est):
    if est.loss != "log_loss":
        alternative = (
            "skinfluence.SmoothHingeSVC (a smooth hinge)" if est.loss in ("hinge", "squared_hinge")
            else "a twice-differentiable loss"
        )
        raise InfluenceNotDefinedError(
            f"SGDClassifier(loss={est.loss!r}) has no second derivative, so influence is "
            f"not defined; use SGDClassifier(loss='log_loss') or {alternative}."
        )
    _check_sgd(est)
    # (1/n) sum s_i l_i + alpha/2 ||w||^2: C = 1 / (alpha n)
    return Reading(OneVsRestLogLoss(), _sgd_C(est), True, est.class_weight, 0.0, clone(est),
                   C_per_row=True)


def _sgd_regressor(est):
    if est.loss != "squared_error":
        raise InfluenceNotDefinedError(
            f"SGDRegressor(loss={est.loss!r}) is not twice differentiable everywhere; use "
            "loss='squared_error' (or skinfluence.InfluenceRidge) to compute influence."
        )
    _check_sgd(est)
    return Reading(SquaredLoss(), _sgd_C(est), False, None, 0.0, clone(est), C_per_row=True)


def _check_sgd(est):
    name = type(est).__name__
    if est.penalty not in ("l2", None):
        raise InfluenceNotDefinedError(
            f"{name}(penalty={est.penalty!r}) is not twice differentiable; refit "
            "with penalty='l2' to compute influence."
        )
    if est.average:
        raise InfluenceNotDefinedError(
            f"{name}(average=...) returns averaged iterates, not an optimum of its "
            "objective; refit with average=False."
        )


def _sgd_C(est):
    alpha = float(est.alpha) if est.penalty == "l2" else 0.0
    return np.inf if alpha == 0 else 1.0 / alpha


def _alpha(est, alpha):
    alpha = np.asarray(alpha, dtype=float)
    if alpha.size > 1:
        raise InfluenceNotDefinedError(
            f"{type(est).__name__} with one alpha per target is not supported; fit one model "
            "per target (or use a single alpha) to compute influence."
        )
    if getattr(est, "positive", False):
        raise InfluenceNotDefinedError(
            f"{type(est).__name__}(positive=True) is a constrained fit: influence functions "
            "need an unconstrained optimum. Refit with positive=False."
        )
    alpha = float(alpha.ravel()[0])
    # sum_i s_i (y_i - f_i)^2 + alpha ||W||^2 is 2 alpha (C sum s_i l_i + 1/2 ||W||^2)
    # with l = (y - f)^2 / 2 and C = 1 / alpha
    return (np.inf if alpha == 0 else 1.0 / alpha), alpha


def _ridge(est):
    C, _ = _alpha(est, est.alpha)
    return Reading(SquaredLoss(), C, False, refit=clone(est))


def _ridge_cv(est):
    C, alpha = _alpha(est, est.alpha_)
    return Reading(SquaredLoss(), C, False,
                   refit=Ridge(alpha=alpha, fit_intercept=est.fit_intercept))


def _linear_regression(est):
    C, _ = _alpha(est, 0.0)
    return Reading(SquaredLoss(), C, False, refit=clone(est))


def _ridge_classifier(est):
    # least squares on targets in {-1, +1} (one column per class beyond two)
    C, _ = _alpha(est, est.alpha)
    return Reading(SignedSquaredLoss(), C, True, est.class_weight, 0.0, clone(est))


def _ridge_classifier_cv(est):
    C, alpha = _alpha(est, est.alpha_)
    refit = RidgeClassifier(alpha=alpha, fit_intercept=est.fit_intercept,
                            class_weight=est.class_weight)
    return Reading(SignedSquaredLoss(), C, True, est.class_weight, 0.0, refit)


def _glm(est):
    # (1/sum s) sum s_i l_i + alpha/2 ||w||^2 with l half the deviance: C = 1 / (alpha sum s)
    alpha = float(est.alpha)
    return Reading(glm_loss(est), np.inf if alpha == 0 else 1.0 / alpha, False,
                   refit=clone(est), penalty_share=True)


# most specific first: the CV classes subclass their base classes' mixins
_READERS = (
    (LogisticRegressionCV, _logistic_cv),
    (LogisticRegression, _logistic),
    (RidgeClassifierCV, _ridge_classifier_cv),
    (RidgeClassifier, _ridge_classifier),
    (RidgeCV, _ridge_cv),
    (Ridge, _ridge),
    (LinearRegression, _linear_regression),
    (SGDClassifier, _sgd_classifier),
    (SGDRegressor, _sgd_regressor),
    (PoissonRegressor, _glm),
    (GammaRegressor, _glm),
    (TweedieRegressor, _glm),
)


def read_objective(est):
    """The :class:`Reading` of a fitted estimator; clear errors for the rest."""
    for cls, reader in _READERS:
        if isinstance(est, cls):
            return reader(est)
    raise TypeError(
        f"explain() cannot read the objective of {type(est).__name__}; it supports "
        f"{SUPPORTED}. For other convex models use skinfluence's estimators "
        "(InfluenceLogisticRegression, InfluenceRidge, SmoothHingeSVC, RBFSmoothHingeSVC)."
    )


@contextmanager
def _named(obj):
    """Errors and warnings raised inside name the user's estimator, not
    FittedObjective (scikit-learn's validation names the object it validates)."""
    name = type(obj.estimator).__name__
    pending = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                yield
            except ValueError as exc:
                message = str(exc)
                if "FittedObjective" not in message:
                    raise
                raise ValueError(message.replace("FittedObjective", name)) from None
            finally:
                pending = list(caught)
    finally:  # re-issued outside the recorder, through the caller's own filters,
        # before any error leaves (scikit-learn warns, then refuses the same rows)
        for w in pending:
            warnings.warn(str(w.message).replace("FittedObjective", name), w.category,
                          stacklevel=user_stacklevel())


class FittedObjective(InfluenceMixin, BaseEstimator):
    """The influence model of an already-fitted scikit-learn estimator.

    ``fit(X, y, sample_weight)`` does not refit ``estimator``: it reads its
    objective (:func:`read_objective`) and stores the rows it was fitted on, as
    it saw them. Used by :func:`skinfluence.explain`; the rows here are already
    through any preprocessing.

    Parameters
    ----------
    estimator : fitted estimator
    influence_solver : {"auto", "direct", "cg", "lissa"} or solver object, default="auto"
    damping : float, default=0.0
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit"])],
        **INFLUENCE_SETTINGS,
    }

    def __init__(self, estimator, *, influence_solver="auto", damping=0.0):
        self.estimator = estimator
        self.influence_solver = influence_solver
        self.damping = damping

    def fit(self, X, y, sample_weight=None):
        est = self.estimator
        check_is_fitted(est)
        reading = read_objective(est)
        X_raw, y_raw = X, y
        X = check_array(X, accept_sparse="csr", dtype=np.float64)
        if sample_weight is not None:  # one finite weight per row, or a clear error
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        if X.shape[1] != est.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features (after any preprocessing) but the estimator "
                f"was fitted on {est.n_features_in_}: pass the training data it was fitted on."
            )
        self.n_features_in_ = est.n_features_in_
        if hasattr(est, "feature_names_in_"):
            self.feature_names_in_ = est.feature_names_in_
        if reading.classifier:
            y = column_or_1d(y)
            self.classes_ = est.classes_
            unseen = ~np.isin(y, est.classes_)
            if unseen.any():
                raise ValueError(
                    f"y_train has labels the estimator never saw: {np.unique(y[unseen])}; "
                    "pass the training data it was fitted on."
                )
            s, y_index = effective_weights(
                est.classes_, reading.class_weight, y, sample_weight, len(y)
            )
            Y = reading.loss.encode(y_index, len(est.classes_))
        else:  # finite targets in the loss's domain (e.g. counts >= 0 for Poisson)
            y = np.asarray(y)
            Y = regression_targets(y, self._n_outputs(), reading.loss, "y_train",
                                   training=True)
            s = regression_weights(sample_weight, len(y))
        if len(Y) != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y has {len(Y)}.")
        self._reading = reading
        self._remember_training_data(X, Y, s, y=y, sample_weight=sample_weight, X_raw=X_raw,
                                     y_raw=y_raw)
        return self

    def _n_outputs(self):
        return np.atleast_2d(self.estimator.coef_).shape[0]

    def _influence_targets(self, y):
        if self._reading.classifier:
            return super()._influence_targets(y)
        return regression_targets(y, self._n_outputs(), self._reading.loss, "y_test")

    def _check_influence_supported(self):
        read_objective(self.estimator)

    def _influence_model(self):
        est, reading = self.estimator, self._reading
        return InfluenceModel(
            loss=reading.loss,
            features=IdentityFeatures(),
            coef=np.atleast_2d(np.asarray(est.coef_, dtype=np.float64)),
            intercept=_fitted_intercept(est),
            C=reading.C_for(self._fit_X.shape[0], self._fit_s.sum()),
            intercept_penalty=reading.intercept_penalty,
            penalty_share=reading.penalty_share,
        )

    def _coefficients(self):
        return [np.asarray(getattr(self.estimator, name, 0.0), dtype=float)
                for name in ("coef_", "intercept_")]

    def _refit(self, sample_weight=None, X=None, y=None):
        """Refit the estimator's objective (hyperparameters fixed), warm-started."""
        X = self._fit_X if X is None else X
        y = self._fit_y if y is None else y
        if sample_weight is None:
            sample_weight = self._fit_sample_weight
        refit = clone(self._reading.refit)
        names = getattr(self.estimator, "feature_names_in_", None)
        if names is not None and not sp.issparse(X) and not hasattr(X, "columns"):
            import pandas as pd  # it was fitted on a table: refit on one, names and all

            X = pd.DataFrame(X, columns=names)
        # SGD refits from scratch, as it was fitted: its schedule depends on the start
        if "warm_start" in refit.get_params() and not isinstance(
                refit, (SGDClassifier, SGDRegressor)):
            refit.set_params(warm_start=True)
            refit.coef_ = np.array(self.estimator.coef_, copy=True)
            refit.intercept_ = np.array(self.estimator.intercept_, dtype=float, copy=True)
        return refit_judged(
            lambda: refit.fit(X, y, sample_weight=sample_weight),
            lambda fitted: FittedObjective(fitted, influence_solver=self.influence_solver,
                                           damping=self.damping).fit(X, y, sample_weight))

    def _class_weight_setting(self):
        return self._reading.class_weight

    @property
    def _user_name(self):
        """The explained estimator's name, for messages."""
        return type(self.estimator).__name__

    def _validate_test(self, X, y):
        with _named(self):
            return super()._validate_test(X, y)

    def _validate_rows(self, X):
        with _named(self):
            return super()._validate_rows(X)

    def _stationarity_advice(self):
        name = type(self.estimator).__name__
        return (f"Either the {name} stopped before its optimum (refit it with a smaller `tol` "
                "and more iterations; SGD rarely reaches it), or the X_train, y_train and "
                "sample_weight given to explain() are not the data it was fitted on.")

    def predict(self, X):
        """The estimator's predictions (rows as it sees them)."""
        return self.estimator.predict(X)

    def decision_function(self, X):
        """The estimator's decision values (rows as it sees them)."""
        return self.estimator.decision_function(X)

    def score(self, X, y):
        """The estimator's score (rows as it sees them)."""
        return self.estimator.score(X, y)

    def __sklearn_is_fitted__(self):
        return hasattr(self, "_fit_X")
