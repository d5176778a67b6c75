"""Influence for estimators users already have: ``skinfluence.explain``.

``explain(fitted_estimator, X_train, y_train)`` reads the objective of an
already-fitted scikit-learn estimator -- its loss, penalty strength, intercept,
class weights and fitted parameters -- and returns an :class:`Explanation` with
the same influence methods as the skinfluence estimators. Nothing is refitted.
"""

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression, Ridge, SGDClassifier
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d

from ._mixin import InfluenceMixin, InfluenceModel
from ._utils import effective_weights
from .exceptions import InfluenceNotDefinedError
from .features import IdentityFeatures
from .linear_model import (
    InfluenceLogisticRegression,
    InfluenceRidge,
    regression_targets,
    ridge_influence_model,
)
from .losses import OneVsRestLogLoss

__all__ = ["explain", "Explanation", "SUPPORTED"]

SUPPORTED = (
    "LogisticRegression (L2 or no penalty), Ridge, SGDClassifier(loss='log_loss', "
    "penalty='l2'), or a Pipeline ending in one of them"
)


def _logistic_model(est):
    # the same reading of C, l1_ratio and liblinear's intercept as our subclass
    proxy = InfluenceLogisticRegression(**est.get_params())
    for attr in ("classes_", "coef_", "intercept_"):
        setattr(proxy, attr, getattr(est, attr))
    return proxy._influence_model()


def _sgd_model(est):
    if est.loss != "log_loss":
        alternative = (
            "skinfluence.SmoothHingeSVC (a smooth hinge)" if est.loss in ("hinge", "squared_hinge")
            else "a twice-differentiable loss"
        )
        raise InfluenceNotDefinedError(
            f"SGDClassifier(loss={est.loss!r}) has no second derivative, so influence is "
            f"not defined; use SGDClassifier(loss='log_loss') or {alternative}."
        )
    if est.penalty not in ("l2", None):
        raise InfluenceNotDefinedError(
            f"SGDClassifier(penalty={est.penalty!r}) is not twice differentiable; refit "
            "with penalty='l2' to compute influence."
        )
    if est.average:
        raise InfluenceNotDefinedError(
            "SGDClassifier(average=...) returns averaged iterates, not an optimum of its "
            "objective; refit with average=False."
        )
    return est


class Explanation(InfluenceMixin, BaseEstimator):
    """Influence methods for an already-fitted scikit-learn estimator.

    Usually built with :func:`explain`. ``fit(X_train, y_train)`` does not refit
    the estimator: it reads its objective and stores the training rows (passed
    through a pipeline's earlier steps), after which :meth:`influence_on_loss`,
    :meth:`self_influence`, :meth:`influence_on_params`,
    :meth:`perturbation_influence` and :meth:`stationarity` behave as on the
    corresponding skinfluence estimator, with test rows going through the same
    earlier steps.

    Objectives read (all as ``C sum_i s_i l_i + 1/2 ||W||^2``, intercept
    unpenalised unless liblinear):

    - ``LogisticRegression``: ``C``, ``l1_ratio`` (must be 0), ``class_weight``;
      logistic or softmax loss.
    - ``Ridge``: ``C = 1 / alpha``, squared loss ``(y - f)^2 / 2``.
    - ``SGDClassifier(loss="log_loss", penalty="l2")``: it minimises ``(1/n)
      sum s_i l_i + alpha/2 ||w||^2``, so ``C = 1 / (alpha n)``; one-vs-rest
      logistic losses for more than two classes. SGD rarely stops at a
      stationary point: check :meth:`stationarity`.

    Parameters
    ----------
    estimator : fitted estimator or Pipeline
    influence_solver : {"auto", "direct", "cg", "lissa"} or solver object, default="auto"
    damping : float, default=0.0
    """

    def __init__(self, estimator, *, influence_solver="auto", damping=0.0):
        self.estimator = estimator
        self.influence_solver = influence_solver
        self.damping = damping

    def fit(self, X, y, sample_weight=None):
        """Read the fitted estimator's objective and store its training data.

        Parameters
        ----------
        X, y : the training data the estimator was fitted on
        sample_weight : array-like of shape (n_samples,), optional
            The weights it was fitted with.

        Returns
        -------
        self : Explanation
        """
        est = self.estimator
        check_is_fitted(est)
        if isinstance(est, Pipeline):
            self.transformer_ = est[:-1] if len(est) > 1 else None
            final = est[-1]
        else:
            self.transformer_, final = None, est
        if not isinstance(final, (LogisticRegression, Ridge, SGDClassifier)):
            raise TypeError(
                f"explain() cannot read the objective of a {type(final).__name__}; it "
                f"supports {SUPPORTED}. For other convex models use skinfluence's "
                "estimators (InfluenceLogisticRegression, InfluenceRidge, SmoothHingeSVC, "
                "RBFSmoothHingeSVC)."
            )
        self.final_estimator_ = final
        self._check_influence_supported()
        X_raw = X
        Xt = self.transformer_.transform(X) if self.transformer_ is not None else X
        Xt = check_array(Xt, accept_sparse="csr", dtype=np.float64)
        if Xt.shape[1] != final.n_features_in_:
            raise ValueError(
                f"X has {Xt.shape[1]} features after the pipeline but the estimator was "
                f"fitted on {final.n_features_in_}: pass the training data it was fitted on."
            )
        self.n_features_in_ = final.n_features_in_
        if self.transformer_ is None and hasattr(final, "feature_names_in_"):
            self.feature_names_in_ = final.feature_names_in_
        y = column_or_1d(y) if not isinstance(final, Ridge) else np.asarray(y)
        if isinstance(final, Ridge):
            Y = regression_targets(y, np.atleast_2d(final.coef_).shape[0])
            s = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
        else:
            self.classes_ = final.classes_
            unseen = ~np.isin(y, final.classes_)
            if unseen.any():
                raise ValueError(
                    f"y_train has labels the estimator never saw: {np.unique(y[unseen])}; "
                    "pass the training data it was fitted on."
                )
            s, y_index = effective_weights(
                final.classes_, getattr(final, "class_weight", None), y, sample_weight, len(y)
            )
            Y = self._influence_model().loss.encode(y_index, len(final.classes_))
        self._remember_training_data(Xt, Y, s, y=y, sample_weight=sample_weight, X_raw=X_raw)
        self.stationarity()  # warns now, at the point of explanation, if not stationary
        return self

    def _validate_test(self, X, y):
        if self.transformer_ is not None:
            X = self.transformer_.transform(X)
        return super()._validate_test(X, y)

    def _influence_targets(self, y):
        if isinstance(self.final_estimator_, Ridge):
            return regression_targets(y, np.atleast_2d(self.final_estimator_.coef_).shape[0])
        return super()._influence_targets(y)

    def _check_influence_supported(self):
        self._influence_model()

    def _influence_model(self):
        final = self.final_estimator_
        if isinstance(final, LogisticRegression):
            return _logistic_model(final)
        if isinstance(final, Ridge):
            return ridge_influence_model(final)
        _sgd_model(final)
        n = self._fit_X.shape[0] if hasattr(self, "_fit_X") else None
        coef = np.asarray(final.coef_, dtype=np.float64)
        return InfluenceModel(
            loss=OneVsRestLogLoss(),
            features=IdentityFeatures(),
            coef=coef,
            intercept=np.asarray(final.intercept_, float) if final.fit_intercept else None,
            C=np.inf if final.alpha == 0 else 1.0 / (final.alpha * (n or 1)),
        )

    def __sklearn_is_fitted__(self):
        return hasattr(self, "_fit_X")


def explain(estimator, X_train, y_train, sample_weight=None, *, influence_solver="auto",
            damping=0.0):
    """Influence methods for an already-fitted scikit-learn estimator.

    Parameters
    ----------
    estimator : fitted LogisticRegression, Ridge, SGDClassifier or Pipeline
        See :class:`Explanation` for the objectives read; L1 penalties, hinge
        losses and other estimators are refused with the alternative named.
    X_train, y_train : the data it was fitted on (raw rows for a pipeline)
    sample_weight : array-like, optional
        The weights it was fitted with.
    influence_solver, damping : as on the skinfluence estimators

    Returns
    -------
    Explanation

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> import skinfluence
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> pipe = make_pipeline(StandardScaler(),
    ...                      LogisticRegression(solver="newton-cholesky", tol=1e-10))
    >>> ex = skinfluence.explain(pipe.fit(X[:400], y[:400]), X[:400], y[:400])
    >>> ex.influence_on_loss(X[400:403], y[400:403]).shape
    (3, 400)
    """
    return Explanation(estimator, influence_solver=influence_solver, damping=damping).fit(
        X_train, y_train, sample_weight
    )
