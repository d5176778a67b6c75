"""Poisson, gamma and Tweedie regression with exact influence functions.

scikit-learn's GLMs minimise ``(1/sum s) sum_i s_i l_i + alpha/2 ||w||^2`` with
``l_i`` half the unit deviance of the family at the mean ``mu_i = link^-1(f_i)``
and ``f_i = x_i w + b`` (the intercept unpenalised). On the library's scale that
is ``R = (1/n) sum_i s_i l_i + ||w||^2 / (2 C n)`` with ``C = 1 / (alpha sum s)``.

Because the objective is normalised by the total weight, every row carries the
share ``s_i / sum s`` of the penalty: refitting without a row (or with its
weight changed) changes the penalty's weight too. The influence quantities
perturb exactly that -- the row's term ``r_i = l_i + alpha/2 ||w||^2`` -- so that
they describe the refits scikit-learn would make (see
:class:`~skinfluence._mixin.InfluenceModel`). The loss at a test row is half its
deviance, ``l(y, mu) >= 0``, unweighted: ``sklearn.metrics.mean_poisson_deviance``
(or gamma, Tweedie) of one row, divided by two.

Each estimator here is a thin description: its loss (family and link, from
:mod:`skinfluence.losses`), the identity feature map and the penalty. Fitting is
scikit-learn's own.
"""

import numpy as np
from sklearn.linear_model import GammaRegressor, PoissonRegressor, TweedieRegressor
from sklearn.utils.validation import check_array

from ._mixin import InfluenceMixin, InfluenceModel, check_magnitude
from .features import IdentityFeatures
from ._frames import check_training_rows
from ._utils import check_non_negative_weights
from .linear_model import regression_targets, regression_weights
from .losses import HalfGammaDeviance, HalfPoissonDeviance, HalfTweedieDeviance
from .solvers import INFLUENCE_SETTINGS

__all__ = [
    "InfluencePoissonRegressor", "InfluenceGammaRegressor", "InfluenceTweedieRegressor",
    "glm_loss", "glm_influence_model",
]

_INFLUENCE_CONSTRAINTS = {
    **INFLUENCE_SETTINGS,
}


def glm_loss(est):
    """The per-sample loss (half deviance, with its link) of a scikit-learn GLM."""
    if isinstance(est, PoissonRegressor):
        return HalfPoissonDeviance()
    if isinstance(est, GammaRegressor):
        return HalfGammaDeviance()
    power = float(est.power)
    link = est.link if est.link != "auto" else ("identity" if power <= 0 else "log")
    return HalfTweedieDeviance(power=power, link=link)


def glm_influence_model(est, total_weight):
    """The influence description of a fitted scikit-learn GLM.

    ``total_weight`` is the sum of the sample weights it was fitted with (the
    number of rows without weights).
    """
    alpha = float(est.alpha)
    C = np.inf if alpha == 0 else 1.0 / (alpha * float(total_weight))
    return InfluenceModel(
        loss=glm_loss(est),
        features=IdentityFeatures(),
        coef=np.asarray(est.coef_, dtype=np.float64).reshape(1, -1),
        intercept=(np.array([float(est.intercept_)]) if est.fit_intercept else None),
        C=C,
        penalty_share=True,
    )


class _InfluenceGLM(InfluenceMixin):
    """What the three GLMs share: scikit-learn's fit, then the stored data."""

    _not_objective_params = frozenset({"solver"})  # any solver reaches the same optimum

    def fit(self, X, y, sample_weight=None):
        """Fit exactly as the scikit-learn GLM does, and keep the training data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Targets in the family's domain (counts >= 0 for Poisson, > 0 for
            gamma).
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        check_magnitude(X, "X")  # before the parent's fit, whose messages would mislead
        check_non_negative_weights(sample_weight)
        check_training_rows(X, y, sample_weight)
        y_checked = np.asarray(y)
        if y_checked.dtype.kind in "fiub" and y_checked.ndim == 1 and y_checked.size:
            # the family's domain, in words, before scikit-learn's terser message
            regression_targets(y_checked.astype(float), 1, glm_loss(self), training=True)
        super().fit(X, y, sample_weight=sample_weight)
        X_raw = X
        X = check_array(X, accept_sparse="csr", dtype=np.float64)
        Y = regression_targets(y, 1, glm_loss(self), training=True)
        s = regression_weights(sample_weight, X.shape[0])
        self._remember_training_data(X, Y, s, y=np.asarray(y), sample_weight=sample_weight,
                                     X_raw=X_raw, y_raw=y)
        return self

    def _influence_targets(self, y):
        return regression_targets(y, 1, glm_loss(self), "y_test")

    def _influence_model(self):
        return glm_influence_model(self, self._fit_s.sum())

    def _stationarity_advice(self):
        return ("Refit with a smaller `tol` (e.g. tol=1e-10) and a larger `max_iter`, or "
                "solver='newton-cholesky'.")


_SHARED_DOC = """
    A drop-in replacement for :class:`sklearn.linear_model.{parent}`: the same
    parameters, the same fit (scikit-learn's), the same ``coef_``, ``predict``
    and ``score``. It also keeps its training data, so that it can say how each
    training row affects each prediction: :meth:`influence_on_loss`,
    :meth:`self_influence`, :meth:`influence_on_params` (``kind="newton"``: the
    leverage-corrected one-step change, statsmodels' ``d_params`` negated),
    :meth:`influence_on_prediction` (the predicted mean), :meth:`cooks_distance`,
    the leave-one-out and K-fold predictions, and every tool of
    :mod:`skinfluence.applications`.

    Influence refers to scikit-learn's objective ``(1/sum s) sum_i s_i l_i +
    alpha/2 ||w||^2`` with ``l_i`` half the unit deviance, on the library's scale
    (``R = (1/n) sum s_i l_i + ||w||^2 / (2 C n)``, ``C = 1 / (alpha sum s)``).
    Because the objective is normalised by the total weight, a row carries the
    share ``s_i / sum s`` of the penalty, and removing or up-weighting it
    perturbs ``r_i = l_i + alpha/2 ||w||^2``: that is what a refit does. The
    loss at a test row is half its deviance (``>= 0``, zero at ``mu = y``).

    Influence assumes the fit is an exact optimum; the default ``tol=1e-4`` is
    often not (see :meth:`stationarity`). For explanations fit with
    ``solver="newton-cholesky"`` and ``tol=1e-10``.
"""


class InfluencePoissonRegressor(_InfluenceGLM, PoissonRegressor):
    __doc__ = """Poisson regression (log link) with exact influence functions.
""" + _SHARED_DOC.format(parent="PoissonRegressor") + """
    Parameters
    ----------
    alpha, fit_intercept, solver, max_iter, tol, warm_start, verbose
        As in :class:`sklearn.linear_model.PoissonRegressor`.
    influence_solver : {"auto", "direct", "cg", "lissa"} or solver object, default="auto"
        How ``H^{-1}`` is applied (see :class:`InfluenceLogisticRegression`).
    damping : float, default=0.0
        ``lambda >= 0`` added to the Hessian's diagonal.

    Attributes
    ----------
    coef_, intercept_, n_features_in_, feature_names_in_, n_iter_
        As in :class:`sklearn.linear_model.PoissonRegressor`.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence import InfluencePoissonRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3))
    >>> y = rng.poisson(np.exp(0.3 * X[:, 0]))
    >>> reg = InfluencePoissonRegressor(alpha=0.01, solver="newton-cholesky",
    ...                                 tol=1e-10).fit(X, y)
    >>> reg.influence_on_loss(X[:2], y[:2], kind="newton").shape
    (2, 200)
    >>> reg.cooks_distance().shape
    (200,)
    """

    _parameter_constraints: dict = {**PoissonRegressor._parameter_constraints,
                                    **_INFLUENCE_CONSTRAINTS}

    def __init__(self, *, alpha=1.0, fit_intercept=True, solver="lbfgs", max_iter=100,
                 tol=1e-4, warm_start=False, verbose=0, influence_solver="auto",
                 damping=0.0):
        super().__init__(alpha=alpha, fit_intercept=fit_intercept, solver=solver,
                         max_iter=max_iter, tol=tol, warm_start=warm_start, verbose=verbose)
        self.influence_solver = influence_solver
        self.damping = damping


class InfluenceGammaRegressor(_InfluenceGLM, GammaRegressor):
    __doc__ = """Gamma regression (log link) with exact influence functions.
""" + _SHARED_DOC.format(parent="GammaRegressor") + """
    Parameters
    ----------
    alpha, fit_intercept, solver, max_iter, tol, warm_start, verbose
        As in :class:`sklearn.linear_model.GammaRegressor`.
    influence_solver : {"auto", "direct", "cg", "lissa"} or solver object, default="auto"
    damping : float, default=0.0

    Attributes
    ----------
    coef_, intercept_, n_features_in_, feature_names_in_, n_iter_
        As in :class:`sklearn.linear_model.GammaRegressor`.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence import InfluenceGammaRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3))
    >>> y = rng.gamma(2.0, np.exp(0.3 * X[:, 0]) / 2.0)
    >>> reg = InfluenceGammaRegressor(alpha=0.01, solver="newton-cholesky",
    ...                               tol=1e-10).fit(X, y)
    >>> bool(reg.self_influence(kind="remove").mean() > 0)
    True
    """

    _parameter_constraints: dict = {**GammaRegressor._parameter_constraints,
                                    **_INFLUENCE_CONSTRAINTS}

    def __init__(self, *, alpha=1.0, fit_intercept=True, solver="lbfgs", max_iter=100,
                 tol=1e-4, warm_start=False, verbose=0, influence_solver="auto",
                 damping=0.0):
        super().__init__(alpha=alpha, fit_intercept=fit_intercept, solver=solver,
                         max_iter=max_iter, tol=tol, warm_start=warm_start, verbose=verbose)
        self.influence_solver = influence_solver
        self.damping = damping


class InfluenceTweedieRegressor(_InfluenceGLM, TweedieRegressor):
    __doc__ = """Tweedie regression (power and link as scikit-learn's) with exact influence.
""" + _SHARED_DOC.format(parent="TweedieRegressor") + """
    ``power=0`` with the identity link is least squares (then, with
    ``alpha=0``, ``kind="newton"`` is the exact refit; with a penalty each row
    carries a share of it, which one step does not remove exactly); ``1 < power < 2`` is the compound Poisson-gamma model
    of pure premiums, with zeros allowed.

    Parameters
    ----------
    power, alpha, fit_intercept, link, solver, max_iter, tol, warm_start, verbose
        As in :class:`sklearn.linear_model.TweedieRegressor`.
    influence_solver : {"auto", "direct", "cg", "lissa"} or solver object, default="auto"
    damping : float, default=0.0

    Attributes
    ----------
    coef_, intercept_, n_features_in_, feature_names_in_, n_iter_
        As in :class:`sklearn.linear_model.TweedieRegressor`.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence import InfluenceTweedieRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 3))
    >>> y = rng.poisson(0.5, 300) * rng.gamma(2.0, 1.0, 300)  # zeros and amounts
    >>> reg = InfluenceTweedieRegressor(power=1.5, alpha=0.01, solver="newton-cholesky",
    ...                                 tol=1e-10).fit(X, y)
    >>> reg.influence_on_prediction(X[:2], kind="newton").shape
    (2, 300)
    """

    _parameter_constraints: dict = {**TweedieRegressor._parameter_constraints,
                                    **_INFLUENCE_CONSTRAINTS}

    def __init__(self, *, power=0.0, alpha=1.0, fit_intercept=True, link="auto",
                 solver="lbfgs", max_iter=100, tol=1e-4, warm_start=False, verbose=0,
                 influence_solver="auto", damping=0.0):
        super().__init__(power=power, alpha=alpha, fit_intercept=fit_intercept, link=link,
                         solver=solver, max_iter=max_iter, tol=tol, warm_start=warm_start,
                         verbose=verbose)
        self.influence_solver = influence_solver
        self.damping = damping
