"""A damped Newton solver for the convex objectives of this library.

Each iteration is one pass for the value and gradient and one for the exact
Hessian, from the same derivatives the influence machinery uses
(:mod:`skinfluence.curvature`), then a Cholesky solve and a backtracking line
search. Deterministic, and quadratically convergent near the optimum, which is
what influence functions need: a truly stationary fit.
"""

import warnings

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve
from sklearn.exceptions import ConvergenceWarning

from ._utils import user_stacklevel
from .curvature import hessian, objective_gradient, output_derivatives
from .features import IdentityFeatures

__all__ = ["fit_newton", "newton_minimize", "risk_value"]

#: Iterations without a 10% fall of max|grad| before the float floor is declared.
STALL_ITERATIONS = 3


def _outputs(Phi, Theta, intercept):
    d = Phi.shape[1]
    F = np.asarray(Phi @ Theta[:, :d].T)
    if intercept:
        F = F + Theta[:, d][None, :]
    return F


def risk_value(loss, Phi, Y, s, n, intercept, pen, Theta):
    """``R(Theta) = (1/n) sum_i s_i l_i + 1/2 sum pen * Theta**2``."""
    F = _outputs(Phi, Theta, intercept)
    return float(np.dot(s, loss.value(Y, F)) / n + 0.5 * np.dot(pen, Theta.ravel() ** 2))


def _regularised_solve(H, g):
    """``H^{-1} g``, adding ``mu I`` (Levenberg-Marquardt) while H is not PD.

    Far from the optimum a flat loss (a smooth hinge with small ``t`` where no
    sample is near the margin) can leave an unpenalised direction without
    curvature; a small ``mu`` then gives a gradient-like step along it.
    """
    scale = max(float(np.mean(np.abs(np.diag(H)))), np.finfo(float).tiny)
    mu = 0.0
    while True:
        try:
            return cho_solve(cho_factor(H + mu * np.eye(len(H)), lower=True), g)
        except LinAlgError:
            mu = 1e-10 * scale if mu == 0.0 else 100.0 * mu
            if mu > 1e10 * scale:  # pragma: no cover - H is not finite
                return np.linalg.lstsq(H, g, rcond=None)[0]


def fit_newton(loss, Phi, Y, s, intercept, pen, Theta0, tol=1e-10, max_iter=100, warn=True,
               flat=None):
    """Minimise ``R`` over ``Theta`` (shape ``(K, D)``) by damped Newton steps.

    Parameters
    ----------
    loss : Loss
    Phi : ndarray or sparse matrix of shape (n, d)
        Features of the training points (the feature map is fixed).
    Y : ndarray
        Encoded targets.
    s : ndarray of shape (n,)
        Effective sample weights.
    intercept : bool
    pen : ndarray of shape (K * D,)
        Diagonal of the penalty Hessian on the scale of ``R``.
    Theta0 : ndarray of shape (K, D)
        Starting point.
    tol : float
        Stop when ``max |grad R| <= tol``.
    max_iter : int
    warn : bool
        Issue a ConvergenceWarning when ``max_iter`` is reached.
    flat : ndarray of shape (K * D, K * D), optional
        Added to the Hessian: ``c N N^T`` along directions the objective ignores
        (softmax without a penalty), as the influence operator does.

    Returns
    -------
    Theta : ndarray of shape (K, D)
    n_iter : int
    """
    n = Phi.shape[0]
    ident = IdentityFeatures()

    def evaluate(Theta):
        F = _outputs(Phi, Theta, intercept)
        G, A = output_derivatives(loss, Y, F)
        value = float(np.dot(s, loss.value(Y, F)) / n + 0.5 * np.dot(pen, Theta.ravel() ** 2))
        grad = objective_gradient(Phi, G, s, n, intercept, pen, Theta)
        if flat is None:
            return value, grad, lambda: hessian(ident, Phi, A, s, n, intercept, pen)
        return value, grad, lambda: hessian(ident, Phi, A, s, n, intercept, pen) + flat

    return newton_minimize(evaluate, Theta0, tol=tol, max_iter=max_iter, warn=warn)


def _line_search(evaluate, Theta, value, g, H, step, slope):
    """Backtracking along the Newton step; when it finds no decrease (a nearly flat
    direction makes the step enormous: a rare class under a smooth hinge), the step
    is damped towards the gradient (``(H + mu I)^{-1} g``, ``mu`` growing 100x)
    until one decreases the objective. Returns ``(Theta, value, grad, hessian)``
    at the accepted point, or Nones when no damped step decreases it either."""
    scale = max(float(np.mean(np.abs(np.diag(H)))), np.finfo(float).tiny)
    mu = 0.0
    while True:
        alpha, smallest = 1.0, 1e-10 if mu == 0.0 else 1e-3
        while True:
            cand = Theta + alpha * step.reshape(Theta.shape)
            new_value, new_grad, new_hess = evaluate(cand)
            if new_value <= value + 1e-4 * alpha * slope:
                return cand, new_value, new_grad, new_hess
            if alpha < smallest:
                break
            alpha *= 0.5
        mu = 1e-6 * scale if mu == 0.0 else 100.0 * mu
        if mu > 1e12 * scale:
            if new_value < value:  # the last, tiny step still decreased it
                return cand, new_value, new_grad, new_hess
            return None, None, None, None
        step = -_regularised_solve(H + mu * np.eye(len(H)), g)
        slope = float(g @ step)


def newton_minimize(evaluate, Theta0, tol=1e-10, max_iter=100, warn=True):
    """Damped Newton with backtracking on an evaluator.

    ``evaluate(Theta)`` returns ``(value, grad, hessian_thunk)``: the objective,
    its gradient (shape of ``Theta``) and a callable giving the Hessian. An
    evaluator may compute all three in one pass over the data (as the Dask one
    does); the Hessian is requested only at accepted points.

    Termination. Stops when ``max |grad| <= tol``. Near the optimum the
    predicted decrease ``-g^T step`` falls below what the objective's floating
    point value can resolve; a line search on the value is then noise, so the
    full Newton step is taken and judged by the gradient instead. When the
    gradient has not fallen by 10% over ``STALL_ITERATIONS`` iterations it has
    reached the floor that floating-point sums allow (on Dask: sums over
    blocks), and the best point is returned with a ConvergenceWarning naming
    the gradient reached -- never a silent run to ``max_iter``.
    """
    eps = np.finfo(np.float64).eps
    Theta = np.array(Theta0, dtype=np.float64)
    value, grad, hess = evaluate(Theta)
    gmax = float(np.max(np.abs(grad)))
    best = (gmax, Theta)
    stall = 0
    for it in range(1, max_iter + 1):
        if gmax <= tol:
            return Theta, it - 1
        g = grad.ravel()
        H = hess()
        step = -_regularised_solve(H, g)
        slope = float(g @ step)
        if slope >= 0:  # not a descent direction: fall back to the gradient
            step, slope = -g, -float(g @ g)
        if -slope <= 16 * eps * max(1.0, abs(value)):
            # below the resolution of the objective: a line search on the value is
            # noise, so take the Newton step and judge it by the gradient
            cand = Theta + step.reshape(Theta.shape)
            new_value, new_grad, new_hess = evaluate(cand)
            new_gmax = float(np.max(np.abs(new_grad)))
            if not new_gmax < 0.9 * best[0]:
                stall += 1
                if stall >= STALL_ITERATIONS:
                    break
            if not new_gmax <= gmax:
                break  # the step made the gradient worse: the float floor is reached
        else:
            cand, new_value, new_grad, new_hess = _line_search(evaluate, Theta, value, g, H,
                                                               step, slope)
            if cand is None:
                break  # no decrease left at machine precision, along any damped step
            stall = 0
            new_gmax = float(np.max(np.abs(new_grad)))
        if not np.isfinite(new_gmax):
            break
        Theta, value, grad, hess, gmax = cand, new_value, new_grad, new_hess, new_gmax
        if gmax < best[0]:
            if gmax < 0.9 * best[0]:
                stall = 0
            best = (gmax, Theta)
    else:
        if warn:
            warnings.warn(
                f"Newton's method did not reach max|grad| <= {tol:g} in {max_iter} "
                f"iterations (max|grad| = {best[0]:.2e}); increase max_iter (influence "
                "needs a stationary fit).",
                ConvergenceWarning,
                stacklevel=user_stacklevel(),
            )
        return Theta, max_iter
    if warn:
        warnings.warn(
            f"Newton's method stopped at max|grad| = {best[0]:.2e} after {it} iterations: "
            f"the gradient no longer decreases at floating-point precision, above "
            f"tol={tol:g}. The fit is as stationary as float64 allows.",
            ConvergenceWarning,
            stacklevel=user_stacklevel(),
        )
    return best[1], it
