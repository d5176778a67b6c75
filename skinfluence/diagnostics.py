"""Regression diagnostics over the fitted state: Cook's distance.

Cook's distance of row ``i`` is the Newton parameter change of removing it,
``d_i = theta_-i - theta_hat`` (:meth:`InfluenceMixin.influence_on_params` with
``kind="newton"``), measured in the metric of the estimated parameters'
information:

    D_i = n d_i^T H d_i / (P phi)

with ``H`` the Hessian of ``R`` (without damping), ``P`` the number of parameters
and ``phi`` the dispersion: 1 for the Bernoulli, multinomial and Poisson families,
else Pearson's estimate ``sum_i s_i (y_i - mu_i)^2 / V(mu_i) / (n - P)`` with the
family's variance function ``V``. Several least-squares targets each have their
own: ``D_i = (n / P) sum_k d_ik^T H_k d_ik / phi_k`` over the outputs' blocks, with
``phi_k`` on ``n - P/K`` degrees of freedom, so that a target in other units
weighs the same and a duplicated target leaves ``D`` unchanged. Without a penalty this is the classical
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
    """The family's dispersion ``phi`` at the fit: 1 when it is fixed, else Pearson's
    estimate for each output, shape ``(K,)`` (several least-squares targets each have
    their own scale, on ``n - P/K`` degrees of freedom)."""
    loss = state.model.loss
    if not getattr(loss, "estimate_dispersion", False):
        return 1.0
    used = int(np.count_nonzero(state.s > 0))  # a row of weight 0 is left out (as R's glm)
    per_output = state.P // state.K
    dof = used - per_output
    if dof <= 0:
        raise ValueError(
            f"Cook's distance estimates the dispersion from n - P = {dof} degrees of freedom "
            f"({used} rows of positive weight, {per_output} parameters"
            f"{' per output' if state.K > 1 else ''}); it needs more rows than parameters."
        )
    Y = est._fit_Y
    total, scale = np.zeros(state.K), np.zeros(state.K)
    for rows in row_chunks(state.n, max(state.Phi.shape[1], state.K)):
        F = est._outputs(state.model, state.Phi[rows], IdentityFeatures())
        mu = np.asarray(loss.inverse_link(F))
        variance = np.asarray(loss.variance(mu))
        with np.errstate(over="ignore", invalid="ignore"):
            total += state.s[rows] @ ((Y[rows] - mu) ** 2 / variance)
            scale += state.s[rows] @ (np.asarray(Y[rows], dtype=float) ** 2 / variance)
    if not np.all(np.isfinite(total)):
        raise ValueError(
            "Pearson's estimate of the dispersion overflows float64: some targets are too "
            "far from their predicted means (squared residuals beyond 1e308). Rescale the "
            "target, or leave those rows out."
        )
    exact = total <= EXACT_FIT * scale
    if np.any(exact):
        raise ValueError(
            "The fit reproduces every target to rounding (dispersion "
            f"{(total / dof)[exact][0]:.1e}; is the target constant?), so Cook's "
            "distance, which measures changes against the residual scatter, is not "
            "defined."
        )
    return total / dof


#: Residual scatter below this share of the targets' own (squared, Pearson-scaled)
#: size is rounding (residuals about 1e-13 of the targets, some 450 float64 epsilons):
#: the fit is exact and no dispersion can be estimated. A target of 1e9 with noise of
#: 1e-3 (a share of 1e-24) is still a fit with residuals.
EXACT_FIT = 1e-26


def cooks_distance(est):
    """Cook's distance of every training row, shape ``(n_train,)``."""
    state = est._in_memory(est._state(), "cooks_distance")
    phi = dispersion(est, state)
    direct = isinstance(state.solver, DirectSolver)
    H = state.hessian() if direct else None  # P <= 4,000: one dense product per chunk
    out = np.empty(state.n)
    # each output's part of d^T H d over its own dispersion (H is block-diagonal across
    # the outputs of the losses that estimate one: several least-squares targets)
    weight = np.broadcast_to(1.0 / np.asarray(phi, dtype=float), (state.K,))
    for rows, steps in _newton.iter_steps(state):  # (c, P), internal layout (K, D) blocks
        HS = steps @ H if direct else state.op.matvec(steps.T).T - state.op.damping * steps
        if state.op.N is not None and not direct:
            HS -= state.op.null_scale * (steps @ state.op.N) @ state.op.N.T
        parts = (HS * steps).reshape(len(steps), state.K, -1).sum(axis=2)
        out[rows] = parts @ weight
    from ._mixin import _warn_unidentified

    _warn_unidentified(_newton.unidentified(state), "training rows have")
    return out * state.n / state.P
