"""Regression diagnostics over the fitted state: Cook's distance.

Cook's distance of row ``i`` is the Newton parameter change of removing it,
``d_i = theta_-i - theta_hat`` (:meth:`InfluenceMixin.influence_on_params` with
``kind="newton"``), measured in the metric of the estimated parameters'
information:

    D_i = n d_i^T H d_i / (P phi)

with ``H`` the Hessian of ``R`` (without damping), ``P`` the number of parameters
and ``phi`` the dispersion: 1 for the Bernoulli, multinomial and Poisson families,
else Pearson's estimate ``sum_i s_i (y_i - mu_i)^2 / V(mu_i) / (n - P)`` with the
family's variance function ``V``. Without a penalty this is the classical
one-step Cook's distance of a GLM (statsmodels' ``GLMInfluence.cooks_distance``;
``OLSInfluence`` for least squares); with one, ``H`` includes it.
"""

import numpy as np

from . import _newton
from .curvature import row_chunks
from .features import IdentityFeatures
from .solvers import DirectSolver

__all__ = ["cooks_distance", "dispersion"]


def dispersion(est, state):
    """The family's dispersion ``phi`` at the fit (1 when it is fixed)."""
    loss = state.model.loss
    if not getattr(loss, "estimate_dispersion", False):
        return 1.0
    used = int(np.count_nonzero(state.s > 0))  # a row of weight 0 is left out (as R's glm)
    dof = used - state.P
    if dof <= 0:
        raise ValueError(
            f"Cook's distance estimates the dispersion from n - P = {dof} degrees of freedom "
            f"({used} rows of positive weight, {state.P} parameters); it needs more rows "
            "than parameters."
        )
    Y = est._fit_Y
    total = 0.0
    for rows in row_chunks(state.n, max(state.Phi.shape[1], state.K)):
        F = est._outputs(state.model, state.Phi[rows], IdentityFeatures())
        mu = np.asarray(loss.inverse_link(F))
        pearson = (Y[rows] - mu) ** 2 / np.asarray(loss.variance(mu))
        with np.errstate(over="ignore", invalid="ignore"):
            total += float(state.s[rows] @ pearson.sum(axis=1))
    if not np.isfinite(total):
        raise ValueError(
            "Pearson's estimate of the dispersion overflows float64: some targets are too "
            "far from their predicted means (squared residuals beyond 1e308). Rescale the "
            "target, or leave those rows out."
        )
    return total / dof


def cooks_distance(est):
    """Cook's distance of every training row, shape ``(n_train,)``."""
    state = est._in_memory(est._state(), "cooks_distance")
    phi = dispersion(est, state)
    direct = isinstance(state.solver, DirectSolver)
    H = state.hessian() if direct else None  # P <= 4,000: one dense product per chunk
    out = np.empty(state.n)
    for rows, steps in _newton.iter_steps(state):  # (c, P), internal layout
        HS = steps @ H if direct else state.op.matvec(steps.T).T - state.op.damping * steps
        if state.op.N is not None and not direct:
            HS -= state.op.null_scale * (steps @ state.op.N) @ state.op.N.T
        out[rows] = np.einsum("cp,cp->c", HS, steps)
    from ._mixin import _warn_unidentified

    _warn_unidentified(_newton.unidentified(state), "training rows have")
    return out * state.n / (state.P * phi)
