"""Inverse-Hessian solvers.

A solver knows only the Hessian, through a :class:`~skinfluence.curvature.HessianOperator`
(``matvec``, ``diagonal``, ``matrix``); it knows nothing of losses, features or
estimators. Each solver is configured by a small object that an estimator takes
as its ``influence_solver`` parameter, either by name or as an instance:

- ``"direct"`` / :class:`Direct`: forms H and factors it (Cholesky). Exact;
  O(n P^2 + P^3) once, then cheap solves; offers ``half_solve`` (``L^{-1} B``) so
  that self-influence is a sum of squares.
- ``"cg"`` / :class:`ConjugateGradient`: preconditioned conjugate gradients on
  Hessian-vector products, all right-hand sides advanced together (one block
  product per iteration); never forms H. Exact to ``tol``; O(nnz) per product.
- ``"lissa"`` / :class:`LiSSA`: the stochastic estimation of Agarwal et al.
  (2017) used by Koh & Liang: a truncated Neumann series over mini-batch
  Hessian-vector products. Approximate.
- ``"auto"``: :class:`Direct` while the number of parameters ``P`` is at most
  ``AUTO_DIRECT_MAX_PARAMS`` (4,000: H takes at most 128 MB and its Cholesky
  about 2e10 flops), else :class:`ConjugateGradient`.

Configuration objects are scikit-learn-style (``get_params`` / ``set_params``), so
their settings can be tuned as nested estimator parameters, e.g.
``set_params(influence_solver__tol=1e-8)``.
"""

import math
import warnings
from numbers import Integral, Real

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve, solve_triangular
from scipy.linalg.lapack import dpocon
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from .exceptions import SingularHessianError

__all__ = [
    "Direct",
    "ConjugateGradient",
    "LiSSA",
    "DirectSolver",
    "resolve_solver",
    "AUTO_DIRECT_MAX_PARAMS",
]

#: Reciprocal condition number below which the Hessian is treated as singular.
RCOND_SINGULAR = 1e3 * np.finfo(np.float64).eps

#: ``"auto"`` factors H directly up to this many parameters, else uses CG.
AUTO_DIRECT_MAX_PARAMS = 4000

def singular_hint(H=None):
    """What to do about a singular Hessian, with a damping sized to ``H``."""
    if H is None or not np.all(np.isfinite(np.diag(H))) or np.diag(H).mean() <= 0:
        return _SINGULAR_HINT
    size = 1e-6 * float(np.diag(H).mean())
    return _SINGULAR_HINT.replace("(e.g. 1e-3)", f"(e.g. {size:.1e}, 1e-6 of H's mean diagonal)")


_SINGULAR_HINT = (
    "Common causes: collinear columns (a full one-hot encoding next to an intercept "
    "-- use OneHotEncoder(drop='first') -- or duplicated features), no penalty "
    "(C=np.inf, alpha=0, LinearRegression) on separable or rank-deficient data, or a "
    "smooth hinge with a small t. Set `damping` to a small positive value (e.g. 1e-3) "
    "to regularise H, add a penalty, or (smooth hinge) use a larger t."
)


# --------------------------------------------------------------- configurations
class _SolverConfig(BaseEstimator):
    """Base of the solver configurations (an estimator parameter).

    ``build`` validates the options against ``_parameter_constraints`` first,
    so a bad value set at construction or by ``set_params`` is refused with
    the option's name and allowed range before any work.
    """

    _parameter_constraints: dict = {}

    def build(self, op):
        self._validate_params()
        return self._build(op)

    def _build(self, op):  # pragma: no cover - abstract
        raise NotImplementedError


class Direct(_SolverConfig):
    """Cholesky factorisation of the exact Hessian.

    Raises :class:`~skinfluence.SingularHessianError` when H is not numerically
    positive definite (reciprocal condition number below ``1e3 * eps``).
    """

    def _build(self, op):
        return DirectSolver(op.matrix())


class ConjugateGradient(_SolverConfig):
    """Preconditioned conjugate gradients on Hessian-vector products.

    Parameters
    ----------
    tol : float, default=1e-10
        Stop a right-hand side ``b`` when ``||H x - b|| <= tol * ||b||``.
    maxiter : int or None, default=None
        Iteration limit; ``None`` means ``min(10 * P, 1000)``. Reaching it
        issues a ConvergenceWarning that names the residual.
    preconditioner : {"jacobi", None}, default="jacobi"
        Diagonal (Jacobi) preconditioning, from the exact diagonal of H.
    batch_size : int, default=256
        Right-hand sides solved together when many are needed
        (``self_influence``, ``influence_on_params``); bounds the memory to about
        ``6 * P * batch_size`` floats.
    """

    _parameter_constraints: dict = {
        "tol": [Interval(Real, 0, 1, closed="neither")],
        "maxiter": [Interval(Integral, 1, None, closed="left"), None],
        "preconditioner": [StrOptions({"jacobi"}), None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, tol=1e-10, maxiter=None, preconditioner="jacobi", batch_size=256):
        self.tol = tol
        self.maxiter = maxiter
        self.preconditioner = preconditioner
        self.batch_size = batch_size

    def _build(self, op):
        return CGSolver(op, self)


class LiSSA(_SolverConfig):
    """Stochastic estimation of ``H^{-1} b`` (Agarwal et al., 2017; Koh & Liang, 2017).

    Runs the recursion ``v_j = b + (I - H_j / scale) v_{j-1}`` with mini-batch
    Hessians ``H_j`` (``v_0 = b``) for ``depth`` steps, returns ``v / scale``
    and averages ``repeats`` independent runs. It converges when ``scale``
    exceeds the largest eigenvalue of every ``H_j``, at the rate
    ``(1 - lambda_min / scale)`` per step.

    Parameters
    ----------
    scale : float or None, default=None
        ``None``: ``1.05`` (full batch) or ``2`` (mini-batches) times the largest
        eigenvalue of H, estimated by a few Lanczos iterations.
    depth : int or None, default=None
        ``None``: ``ceil(log(1 / tol) * scale / lambda_min)`` with the smallest
        eigenvalue estimated likewise, capped at ``max_depth``.
    tol : float, default=1e-6
        Target contraction of the truncation error, for the automatic depth.
    max_depth : int, default=100_000
        Cap on the automatic depth; reaching it warns that the result is further
        from ``H^{-1} b`` than ``tol``.
    repeats : int, default=1
        Independent runs averaged.
    batch_size : int or None, default=None
        Rows per mini-batch Hessian; ``None`` means all rows (a deterministic
        Neumann series, exact up to the truncation).
    random_state : int, RandomState instance or None, default=None
        Draws the mini-batches.
    progress : bool, default=False
        Show a tqdm progress bar over the recursion (needs ``tqdm``).
    """

    _parameter_constraints: dict = {
        "scale": [Interval(Real, 0, None, closed="neither"), None],
        "depth": [Interval(Integral, 1, None, closed="left"), None],
        "tol": [Interval(Real, 0, 1, closed="neither")],
        "max_depth": [Interval(Integral, 1, None, closed="left")],
        "repeats": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "progress": ["boolean"],
    }

    def __init__(
        self,
        scale=None,
        depth=None,
        tol=1e-6,
        max_depth=100_000,
        repeats=1,
        batch_size=None,
        random_state=None,
        progress=False,
    ):
        self.scale = scale
        self.depth = depth
        self.tol = tol
        self.max_depth = max_depth
        self.repeats = repeats
        self.batch_size = batch_size
        self.random_state = random_state
        self.progress = progress

    def _build(self, op):
        return LissaSolver(op, self)


def resolve_solver(spec, n_params):
    """The solver configuration for an ``influence_solver`` value."""
    if isinstance(spec, _SolverConfig):
        return spec
    if spec == "auto":
        return Direct() if n_params <= AUTO_DIRECT_MAX_PARAMS else ConjugateGradient()
    named = {"direct": Direct, "cg": ConjugateGradient, "lissa": LiSSA}
    if spec not in named:
        raise ValueError(
            f"influence_solver must be 'auto', 'direct', 'cg', 'lissa' or a solver "
            f"object (Direct, ConjugateGradient, LiSSA); got {spec!r}."
        )
    return named[spec]()


# ---------------------------------------------------------------------- solvers
class DirectSolver:
    """Cholesky factorisation of a dense symmetric matrix ``H``.

    Raises
    ------
    SingularHessianError
        When ``H`` is not numerically positive definite.
    """

    name = "direct"
    exact = True

    def __init__(self, H):
        H = np.asarray(H, dtype=np.float64)
        diag = np.diag(H).copy()
        if np.any(~np.isfinite(H)) or np.any(diag <= 0):
            raise SingularHessianError(
                "The Hessian has a non-positive or non-finite diagonal entry: some "
                "parameter has no curvature. " + singular_hint(H)
            )
        # Judge and factor the Jacobi-equilibrated matrix E H E (E = diag(H)^-1/2):
        # the verdict then does not depend on the units of the features (raw Longley
        # has rcond 1e-20 in its units), and the factor of H is E^-1 L^ (rows scaled).
        e = 1.0 / np.sqrt(diag)
        He = H * e[:, None] * e[None, :]
        anorm = np.abs(He).sum(axis=0).max() if He.size else 0.0
        try:
            c, self._lower = cho_factor(He, lower=True, check_finite=False)
        except LinAlgError as exc:
            raise SingularHessianError(
                "The Hessian is not positive definite, so influence is not defined: "
                "the optimum is not unique along some direction. " + singular_hint(H)
            ) from exc
        rcond, info = dpocon(c, anorm, uplo="L")
        self.rcond = float(rcond)
        if info != 0 or not np.isfinite(rcond) or rcond < RCOND_SINGULAR:
            raise SingularHessianError(
                f"The Hessian is numerically singular (reciprocal condition number "
                f"{rcond:.1e} after scaling each parameter to unit curvature): influence "
                "would be dominated by rounding error. " + singular_hint(H)
            )
        self._c = np.tril(c) / e[:, None]  # H = (E^-1 L^)(E^-1 L^)^T

    def solve(self, B):
        """``H^{-1} B`` for a vector or a matrix of right-hand sides."""
        return cho_solve((self._c, self._lower), B, check_finite=False)

    def half_solve(self, B):
        """``L^{-1} B`` where ``H = L L^T``."""
        return solve_triangular(self._c, B, lower=True, check_finite=False)

    def quad_augmented(self, Phi, intercept):
        """``[phi_i, 1]^T H^{-1} [phi_i, 1]`` for every row ``phi_i`` of ``Phi``.

        Splits ``L = [[L11, 0], [l21^T, l22]]`` so that the rows never need to be
        copied into an augmented matrix: ``L^{-1} [phi; 1] = [v; (1 - l21^T v) /
        l22]`` with ``v = L11^{-1} phi``. Without ``intercept`` it is
        ``||L^{-1} phi||^2``.
        """
        d = Phi.shape[1]
        V = solve_triangular(self._c[:d, :d], Phi.T, lower=True, check_finite=False)
        quad = np.einsum("pc,pc->c", V, V)
        if intercept:
            last = (1.0 - self._c[d, :d] @ V) / self._c[d, d]
            quad += last**2
        return quad


class CGSolver:
    """Block-parallel preconditioned CG: every column is its own CG run, but all
    active columns share one Hessian-vector block product per iteration."""

    name = "cg"
    exact = True

    def __init__(self, op, config):
        self.op = op
        self.tol = float(config.tol)
        self.maxiter = config.maxiter or min(10 * op.P, 1000)
        self.rhs_batch = int(config.batch_size)
        diag = op.diagonal() if config.preconditioner == "jacobi" else np.ones(op.P)
        if np.any(diag <= 0):
            raise SingularHessianError(
                "The Hessian has a non-positive diagonal entry: some parameter has no "
                "curvature (e.g. a feature that is zero on every training row with "
                "C=np.inf). " + _SINGULAR_HINT
            )
        self.inv_diag = 1.0 / diag
        self.iterations = []

    def solve(self, B):
        B = np.asarray(B, dtype=np.float64)
        vec = B.ndim == 1
        B2 = B.reshape(B.shape[0], -1)
        X = np.zeros_like(B2)
        bnorm = np.linalg.norm(B2, axis=0)
        active = np.flatnonzero(bnorm > 0)
        R = B2[:, active].copy()
        Z = self.inv_diag[:, None] * R
        Pk = Z.copy()
        rz = np.einsum("pm,pm->m", R, Z)
        res = np.zeros(B2.shape[1])
        it = 0
        while active.size and it < self.maxiter:
            it += 1
            HP = self.op.matvec(Pk)
            curv = np.einsum("pm,pm->m", Pk, HP)
            if np.any(curv <= 0):
                raise SingularHessianError(
                    "Conjugate gradients met a direction of zero or negative curvature: "
                    "the Hessian is not positive definite. " + _SINGULAR_HINT
                )
            alpha = rz / curv
            X[:, active] += alpha * Pk
            R -= alpha * HP
            rnorm = np.linalg.norm(R, axis=0) / bnorm[active]
            res[active] = rnorm
            keep = rnorm > self.tol
            if not keep.all():
                active, R, Pk, rz = active[keep], R[:, keep], Pk[:, keep], rz[keep]
            if not active.size:
                break
            Z = self.inv_diag[:, None] * R
            rz_new = np.einsum("pm,pm->m", R, Z)
            Pk = Z + (rz_new / rz) * Pk
            rz = rz_new
        self.iterations.append(it)
        if active.size:
            warnings.warn(
                f"Conjugate gradients stopped after {it} iterations with relative "
                f"residual {res[active].max():.2e} > tol={self.tol:g} for "
                f"{active.size} right-hand side(s); increase maxiter or add damping.",
                ConvergenceWarning,
                stacklevel=3,
            )
        return X[:, 0] if vec else X


def _extreme_eigenvalue(op, which, shift=None):
    """A few Lanczos iterations for the largest (or, with a shift, smallest) eigenvalue."""
    P = op.P
    if shift is None:
        mv = op.matvec
    else:
        def mv(v):
            return shift * v - op.matvec(v)
    lin = LinearOperator((P, P), matvec=mv, dtype=np.float64)
    v0 = np.random.default_rng(0).standard_normal(P)
    try:
        val = eigsh(lin, k=1, which="LA", tol=1e-3, v0=v0, maxiter=300,
                    return_eigenvectors=False)[0]
    except ArpackNoConvergence as exc:  # pragma: no cover - fall back to best estimate
        val = exc.eigenvalues[0] if len(exc.eigenvalues) else np.nan
    return float(val) if shift is None else float(shift - val)


class LissaSolver:
    """The LiSSA recursion, vectorised over all right-hand sides."""

    name = "lissa"
    exact = False

    def __init__(self, op, config):
        self.op = op
        self.config = config
        n = op.n
        batch = config.batch_size
        self.batch_size = n if batch is None else int(min(batch, n))
        lam_max = _extreme_eigenvalue(op, "LA")
        full = self.batch_size == n
        self.scale = float(config.scale) if config.scale else (1.05 if full else 2.0) * lam_max
        if config.depth is not None:
            self.depth = int(config.depth)
        else:
            lam_min = _extreme_eigenvalue(op, "SA", shift=lam_max * 1.01)
            lam_min = max(lam_min, 1e-3 * lam_max / op.n)
            if not (lam_min > 0):  # pragma: no cover
                raise SingularHessianError("LiSSA needs a positive definite H. " + _SINGULAR_HINT)
            need = math.log(1.0 / config.tol) * self.scale / lam_min
            self.depth = int(min(math.ceil(need), config.max_depth))
            if need > config.max_depth:
                warnings.warn(
                    f"LiSSA needs a depth of about {need:.0f} for tol={config.tol:g} "
                    f"(scale / lambda_min = {self.scale / lam_min:.0f}) but is capped at "
                    f"max_depth={config.max_depth}: its results are approximate. Use "
                    "influence_solver='cg' or 'direct' for exact values.",
                    ConvergenceWarning,
                    stacklevel=3,
                )
        self.rhs_batch = 256

    def solve(self, B):
        B = np.asarray(B, dtype=np.float64)
        vec = B.ndim == 1
        B2 = B.reshape(B.shape[0], -1)
        cfg = self.config
        rng = check_random_state(cfg.random_state)
        n = self.op.n
        steps = range(self.depth)
        if cfg.progress:
            try:
                from tqdm.auto import tqdm
            except ImportError as exc:  # pragma: no cover - optional extra
                raise ImportError("LiSSA(progress=True) needs tqdm: pip install tqdm") from exc
        total = np.zeros_like(B2)
        for _ in range(cfg.repeats):
            V = B2.copy()
            it = tqdm(steps, desc="LiSSA", leave=False) if cfg.progress else steps
            for _ in it:
                rows = None if self.batch_size == n else rng.choice(n, self.batch_size, replace=False)
                V = B2 + V - self.op.matvec(V, rows) / self.scale
            total += V / self.scale
        X = total / cfg.repeats
        return X[:, 0] if vec else X
