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
  product per iteration); never factors H, and forms it only when a product with it is
  cheaper than a pass over the rows (``products``). Exact to ``tol``; O(nnz) or
  O(P^2) per product, with a Jacobi, class-block or randomized Nystrom preconditioner.
- ``"lissa"`` / :class:`LiSSA`: the stochastic estimation of Agarwal et al.
  (2017) used by Koh & Liang: a truncated Neumann series over mini-batch
  Hessian-vector products; with full batches preconditioned and with
  Chebyshev's weights (about ``sqrt(kappa)`` steps, not ``kappa``). Approximate.
- ``"auto"``: :class:`Direct` while the number of parameters ``P`` is at most
  ``AUTO_DIRECT_MAX_PARAMS`` (4,000: H takes at most 128 MB and its Cholesky
  about 2e10 flops), else :class:`ConjugateGradient`.

Configuration objects are scikit-learn-style (``get_params`` / ``set_params``), so
their settings can be tuned as nested estimator parameters, e.g.
``set_params(influence_solver__tol=1e-8)``.
"""

import contextlib
import copy
import math
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from scipy.linalg import (LinAlgError, cho_factor, cho_solve, eigh_tridiagonal,
                          solve_triangular)
from scipy.linalg.blas import dsyrk
from scipy.linalg.lapack import dpocon, dpotri
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from ._utils import user_stacklevel
from .exceptions import SingularHessianError

__all__ = [
    "Direct",
    "ConjugateGradient",
    "LiSSA",
    "DirectSolver",
    "resolve_solver",
    "AUTO_DIRECT_MAX_PARAMS",
    "INFLUENCE_SETTINGS",
]

#: Reciprocal condition number below which the Hessian is treated as singular.
RCOND_SINGULAR = 1e3 * np.finfo(np.float64).eps

#: The influence settings every skinfluence estimator takes (and ``explain``), as
#: ``_parameter_constraints`` entries: they take effect without a refit.
INFLUENCE_SETTINGS = {
    "influence_solver": [StrOptions({"auto", "direct", "cg", "lissa"}), HasMethods(["build"])],
    "damping": [Interval(Real, 0, None, closed="left")],
}


#: ``"auto"`` factors H directly up to this many parameters, else uses CG.
AUTO_DIRECT_MAX_PARAMS = 4000

#: Beyond ``AUTO_DIRECT_MAX_PARAMS``, ``"auto"`` still factors H (up to this many
#: parameters: a 512 MB factor, and as much again for the explicit inverse of
#: ``influence_on_params`` and the Newton steps) for a call that needs so many solves
#: that CG would cost more.
AUTO_FACTOR_MAX_PARAMS = 8_000

#: How many times more a flop of CG's sparse products costs than one of a dense
#: Cholesky factorisation (memory-bound: 5 GFLOP/s on the sparse 20,000 x 20,000
#: products here, against about 50 for the factorisation).
SPARSE_FLOP_COST = 10.0

def singular_hint(H=None, diag=None):
    """What to do about a singular Hessian, with a damping sized to ``H`` (or to its
    diagonal ``diag``)."""
    if diag is None and H is not None:
        diag = np.diag(H)
    if diag is None or not np.all(np.isfinite(diag)) or diag.mean() <= 0:
        return _SINGULAR_HINT
    size = 1e-6 * float(diag.mean())
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
        return DirectSolver(op.matrix(), overwrite=True)


class ConjugateGradient(_SolverConfig):
    """Preconditioned conjugate gradients on Hessian-vector products.

    Parameters
    ----------
    tol : float, default=1e-10
        Stop a right-hand side ``b`` when ``||H x - b|| <= tol * ||b||``.
    maxiter : int or None, default=None
        Iteration limit; ``None`` means ``min(10 * P, 1000)``. Reaching it
        issues a ConvergenceWarning that names the residual.
    preconditioner : {"auto", "jacobi", "block", "nystrom"} or None, default="auto"
        ``"jacobi"``: the exact diagonal of H. ``"block"``: the ``K`` diagonal
        ``D x D`` blocks of H, one per output (the multinomial / one-vs-rest
        class blocks: feature correlations kept, class coupling dropped),
        factored once. ``"nystrom"``: a randomized Nystrom approximation of
        rank ``rank`` from ``iterated_power + 1`` blocks of ``rank``
        Hessian-vector products (Frangella, Tropp & Udell, 2023): the top of the
        spectrum is inverted, the rest left as is; for many parameters and
        sparse data. ``"auto"``:
        ``"block"`` for several outputs with ``D <= 2000`` features, else
        ``"nystrom"`` for more than 2,000 parameters, else ``"jacobi"``.
    rank : int, default=100
        Rank of the Nystrom preconditioner (capped at the number of parameters).
    iterated_power : int, default=2
        Subspace (power) iterations before the Nystrom approximation, as in
        :func:`sklearn.utils.extmath.randomized_svd`: each costs one block of
        ``rank`` products and brings the sketch closer to H's top eigenvectors
        when the spectrum decays slowly (sparse text: 0 gives CG 75 iterations at
        rank 100, 2 gives 47, the exact top 100 eigenvectors about 41).
    products : {"auto", "matrix-free", "dense"}, default="auto"
        How Hessian-vector products are made: ``"matrix-free"`` passes over the
        training rows every time (``O(nnz K)`` per vector); ``"dense"`` forms H
        once (``O(n P^2)``) and multiplies by it (``2 P^2`` per vector);
        ``"auto"`` forms it when ``P <= 4,000`` and a product with it is at least
        twice cheaper than a pass over the rows (dense rows with ``n K d >> P^2``,
        e.g. digits or 50,000 x 200: forming H costs about as much as
        ``n P^2 / (n K d)`` products, repaid within the first solve), else stays
        matrix-free (sparse text, very many parameters).
    batch_size : int, default=256
        Right-hand sides solved together when many are needed
        (``self_influence``, ``influence_on_params``); bounds the memory to about
        ``6 * P * batch_size`` floats.

    Notes
    -----
    On an exactly singular Hessian (no penalty, and duplicate or collinear
    columns) whose right-hand sides lie in its range, CG converges to the
    minimum-norm answer, the pseudo-inverse's (what a minimum-norm refit
    gives), where :class:`Direct` refuses with SingularHessianError: the Krylov
    space never meets the flat directions, so CG cannot see them. Use
    ``"direct"`` (or ``"auto"`` up to 4,000 parameters) to be told.
    """

    _parameter_constraints: dict = {
        "tol": [Interval(Real, 0, 1, closed="neither")],
        "maxiter": [Interval(Integral, 1, None, closed="left"), None],
        "preconditioner": [StrOptions({"auto", "jacobi", "block", "nystrom"}), None],
        "rank": [Interval(Integral, 1, None, closed="left")],
        "iterated_power": [Interval(Integral, 0, None, closed="left")],
        "products": [StrOptions({"auto", "matrix-free", "dense"})],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, tol=1e-10, maxiter=None, preconditioner="auto", rank=100,
                 iterated_power=2, products="auto", batch_size=256):
        self.tol = tol
        self.maxiter = maxiter
        self.preconditioner = preconditioner
        self.rank = rank
        self.iterated_power = iterated_power
        self.products = products
        self.batch_size = batch_size

    def _build(self, op):
        return CGSolver(op, self)


class LiSSA(_SolverConfig):
    """Stochastic estimation of ``H^{-1} b`` (Agarwal et al., 2017; Koh & Liang, 2017).

    The paper's recursion is ``v_j = b + (I - H_j / scale) v_{j-1}`` with
    mini-batch Hessians ``H_j`` (``v_0 = b``), returning ``v / scale``: a
    truncated Neumann series for ``H^{-1}``. It converges when ``scale`` exceeds
    the largest eigenvalue of every ``H_j``, at the rate ``(1 - lambda / scale)``
    per step along an eigenvalue ``lambda``, so it needs about ``kappa`` steps.
    Two standard devices cut that:

    - **Preconditioning**: the recursion runs on ``M^{-1} H`` (``M`` the class
      blocks or the diagonal of H), whose condition number is smaller;
    - **Chebyshev acceleration** (full batches only): the same series with the
      weights of Chebyshev's polynomial on ``[lambda_min, scale]``
      (the semi-iterative method; Golub & Van Loan, §11.2.8), which needs about
      ``sqrt(kappa)`` steps. Mini-batch products are noisy, so mini-batches keep
      the plain recursion.

    Both bounds come from a 40-step Lanczos run on ``M^{-1} H``. With
    ``preconditioner=None, acceleration=None`` it is exactly the paper's
    recursion. On digits (10 classes, P = 650, ``kappa`` = 3,200) 1e-2 takes
    about 100 steps instead of 14,000.

    **Stopping.** Chebyshev runs the whole ``depth``, which bounds its error by
    ``tol`` (its steps do not shrink monotonically, so a rule on them stops too
    early). The plain recursion with full batches stops a right-hand side as
    soon as its own change says it is within ``tol``: with ``c_j`` the norm of
    the step's change and the contraction ``rho`` measured over the last 8
    steps, the truncation error left is about ``c_j rho / (1 - rho)``, and it
    stops when that is at most ``tol`` times the current estimate's norm
    (mini-batch changes never vanish: they run ``depth``). A ``scale`` below the
    Lanczos estimate of the largest eigenvalue is refused; a series that grows
    raises instead of returning garbage.

    **Noise.** Mini-batch products make the estimate random. With ``repeats >= 2``
    the runs' spread measures it: the standard error of their average, relative
    to its norm, is kept per right-hand side (the built solver's ``noise``) and a
    ConvergenceWarning names it when it exceeds ``tol``.

    **When to use it.** Conjugate gradients (``"cg"``) are exact, need no
    spectrum estimates and are at least as fast with full batches. LiSSA is for
    problems whose Hessian-vector products over all rows are too expensive,
    with ``batch_size`` rows per product (large ``n``, matrix-free), and for
    reproducing the paper.

    Parameters
    ----------
    scale : float or None, default=None
        Upper bound on the eigenvalues of ``M^{-1} H`` (of H without a
        preconditioner; of every mini-batch Hessian with ``batch_size``).
        ``None``: ``1.05`` times the Lanczos estimate of the largest (full
        batches), or of a bound on every ``b``-row mini-batch Hessian: the
        smaller of ``(n / b) lambda_max`` and the mean of the ``b`` largest row
        curvatures plus the penalty.
    depth : int or None, default=None
        Number of steps. ``None``: from the spectrum estimates --
        ``log(1 / tol) * scale / lambda_min`` for the plain recursion,
        ``sqrt(scale / lambda_min) * log(2 / tol)`` with Chebyshev -- capped at
        ``max_depth``; the stopping rule usually ends the recursion earlier. An
        explicit depth that those estimates call too short for ``tol`` warns
        (ConvergenceWarning), with mini-batches too; given ``scale`` as well, there
        is no estimate (the paper's setting, used as given).
    tol : float, default=1e-2
        Target relative error of ``H^{-1} b``: for the stopping rule and the
        automatic depth.
    max_depth : int, default=10_000
        Cap on the automatic depth; stopping there with a right-hand side not
        yet within ``tol`` warns.
    preconditioner : {"auto", "jacobi", "block"} or None, default="auto"
        ``M``: ``"block"`` the ``K`` diagonal ``D x D`` blocks of H (one per class),
        ``"jacobi"`` its diagonal; built once from all rows. ``"auto"``: with full
        batches ``"block"`` for several outputs with at most 2,000 features each,
        else ``"jacobi"``; with mini-batches none (the paper's recursion: on
        digits, 4 x 10,000 steps of 256 rows, a preconditioner amplified the
        mini-batch noise, median error 7e-2 against 4e-2).
    acceleration : {"auto", "chebyshev"} or None, default="auto"
        ``"auto"``: Chebyshev for full batches, none for mini-batches.
    repeats : int, default=1
        Independent mini-batch runs averaged (full batches are deterministic: one
        run). With two or more, their spread gives the standard error of the
        average; above ``tol`` of its norm it warns (ConvergenceWarning). One run
        cannot measure its own noise: a mini-batch estimate that completed its
        depth can still be off by its noise.
    batch_size : int or None, default=None
        Rows per mini-batch Hessian; ``None`` means all rows (deterministic,
        exact up to the truncation).
    random_state : int, RandomState instance or None, default=None
        Draws the mini-batches.
    progress : bool, default=False
        Show a tqdm progress bar over the recursion (needs ``tqdm``).

    Attributes of the built solver (``est._state().solver``): ``steps`` (per
    repeat), ``depth``, ``scale``, ``lam_min``, ``preconditioner``,
    ``acceleration``.
    """

    _parameter_constraints: dict = {
        "scale": [Interval(Real, 0, None, closed="neither"), None],
        "depth": [Interval(Integral, 1, None, closed="left"), None],
        "tol": [Interval(Real, 0, 1, closed="neither")],
        "max_depth": [Interval(Integral, 1, None, closed="left")],
        "preconditioner": [StrOptions({"auto", "jacobi", "block"}), None],
        "acceleration": [StrOptions({"auto", "chebyshev"}), None],
        "repeats": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "progress": ["boolean"],
    }

    def __init__(
        self,
        scale=None,
        depth=None,
        tol=1e-2,
        max_depth=10_000,
        preconditioner="auto",
        acceleration="auto",
        repeats=1,
        batch_size=None,
        random_state=None,
        progress=False,
    ):
        self.scale = scale
        self.depth = depth
        self.tol = tol
        self.max_depth = max_depth
        self.preconditioner = preconditioner
        self.acceleration = acceleration
        self.repeats = repeats
        self.batch_size = batch_size
        self.random_state = random_state
        self.progress = progress

    def _build(self, op):
        return LissaSolver(op, self)


def factoring_pays(solver, op, m):
    """Whether forming and factoring H costs fewer flops than ``m`` CG solves on it
    (``m`` right-hand sides at the iterations CG has needed so far, at least 20; a
    sparse product's flops counted ``SPARSE_FLOP_COST`` times), with H small enough
    to keep (``P <= AUTO_FACTOR_MAX_PARAMS``)."""
    if not isinstance(solver, CGSolver) or op.P > AUTO_FACTOR_MAX_PARAMS:
        return False
    P = op.P
    per_product = 2.0 * P * P if op.dense is not None else float(op.data_pass_cost())
    iterations = max([20, *solver.iterations])
    cg = m * iterations * (per_product + 10.0 * P)
    if op.dense is None and sp.issparse(op.Phi):
        cg *= SPARSE_FLOP_COST
    form = op.data_pass_cost() * P / 2.0  # H from the rows: about P / 2 passes' flops
    return cg > form + P**3 / 3.0 + 2.0 * P * P * m


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

    With ``overwrite=True`` ``H`` (a temporary of the caller's) is equilibrated and
    factored in its own memory: on a 2,001-parameter Hessian the copies cost as
    much as the Cholesky factorisation itself. ``scale`` (positive, shape ``(P,)``)
    equilibrates by another matrix's diagonal instead of H's own: H with one fold's
    curvature removed is judged against the full Hessian's, so a parameter whose
    curvature all came from the fold counts as singular, however small the rest.

    Raises
    ------
    SingularHessianError
        When ``H`` is not numerically positive definite.
    """

    name = "direct"
    exact = True

    def __init__(self, H, overwrite=False, scale=None):
        H = np.asarray(H, dtype=np.float64)
        diag = np.diag(H).copy()
        if not np.isfinite(H).all() or np.any(diag <= 0):
            raise SingularHessianError(
                "The Hessian has a non-positive or non-finite diagonal entry: some "
                "parameter has no curvature. " + singular_hint(diag=diag)
            )
        # Judge and factor the Jacobi-equilibrated matrix E H E (E = diag(H)^-1/2):
        # the verdict then does not depend on the units of the features (raw Longley
        # has rcond 1e-20 in its units), and the factor of H is E^-1 L^ (rows scaled).
        e = 1.0 / np.sqrt(diag if scale is None else np.asarray(scale, dtype=np.float64))
        if overwrite and H.flags.writeable and (H.flags.c_contiguous or H.flags.f_contiguous):
            He = H
            He *= e[:, None]
        else:
            He = H * e[:, None]
        He *= e[None, :]
        anorm = np.abs(He).sum(axis=0).max() if He.size else 0.0
        try:  # factored in place (He is ours), in Fortran order as LAPACK wants it:
            # He is symmetric, so its transpose is the same matrix laid out that way
            c, self._lower = cho_factor(He.T if He.flags.c_contiguous else He, lower=True,
                                        overwrite_a=True, check_finite=False)
        except LinAlgError as exc:
            raise SingularHessianError(
                "The Hessian is not positive definite, so influence is not defined: "
                "the optimum is not unique along some direction. " + singular_hint(diag=diag)
            ) from exc
        rcond, info = dpocon(c, anorm, uplo="L")
        self.rcond = float(rcond)
        if info != 0 or not np.isfinite(rcond) or rcond < RCOND_SINGULAR:
            raise SingularHessianError(
                f"The Hessian is numerically singular (reciprocal condition number "
                f"{rcond:.1e} after scaling each parameter to unit curvature): influence "
                "would be dominated by rounding error. " + singular_hint(diag=diag)
            )
        # H = (E^-1 L^)(E^-1 L^)^T; the strict upper triangle is left as LAPACK left
        # it (every use reads the lower one; zeroing it was a P^2 copy)
        self._c = c
        self._c /= e[:, None]

    def solve(self, B):
        """``H^{-1} B`` for a vector or a matrix of right-hand sides."""
        return cho_solve((self._c, self._lower), B, check_finite=False)

    def inverse(self):
        """``H^{-1}`` as a dense symmetric matrix, from the factor (computed once).

        Worth its ``P^2`` floats when many structured right-hand sides follow
        (the Newton steps' ``e_k (x) phi~_i``): products with it are GEMMs over
        only the columns that are non-zero, instead of solves over all of them.
        """
        if getattr(self, "_inverse", None) is None:
            inv, info = dpotri(self._c, lower=1)
            if info != 0:  # pragma: no cover - the factor was checked when made
                raise SingularHessianError("The Hessian's factor cannot be inverted. "
                                           + _SINGULAR_HINT)
            inv = np.tril(inv)
            inv += np.tril(inv, -1).T
            self._inverse = inv
        return self._inverse

    def matrix(self):
        """The factored matrix ``L L^T`` again, from the factor (``P^3 / 3`` flops: cheaper
        than a pass over ``n > P / 3`` rows to form it anew)."""
        M = dsyrk(1.0, np.tril(self._c), lower=1)  # lower triangle of L L^T
        M = np.tril(M)
        M += np.tril(M, -1).T
        return M

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
        # L11 copied Fortran-ordered: scipy would otherwise transpose it while copying
        # the non-contiguous block (18 ms against 2 at P = 2,001)
        V = solve_triangular(np.asfortranarray(self._c[:d, :d]), Phi.T, lower=True,
                             check_finite=False)
        quad = np.einsum("pc,pc->c", V, V)
        if intercept:
            # einsum, not a BLAS gemv: right after the trsm OpenBLAS's gemv took 25 ms
            # for what einsum does in 1 (500 x 4,000 rows), doubling self_influence
            l21 = np.ascontiguousarray(self._c[d, :d])  # a row of a Fortran array
            last = (1.0 - np.einsum("p,pc->c", l21, V)) / self._c[d, d]
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
        dense = config.products == "dense" or (
            config.products == "auto" and _dense_products_pay(op))
        if dense:
            op.densify()
        self.products = "dense" if dense else "matrix-free"
        kind = config.preconditioner
        if kind == "auto":
            kind = ("block" if op.K > 1 and op.D <= 2000
                    else "nystrom" if op.P > 2000 else "jacobi")
        self.preconditioner = kind
        diag = _checked_diagonal(op)
        self.precondition = _preconditioner(op, kind, int(config.rank), diag,
                                            int(config.iterated_power)).apply
        self.iterations = []

    def with_tol(self, tol):
        """The same solver (and preconditioner) stopping at another tolerance."""
        other = copy.copy(self)
        other.tol = float(tol)
        other.iterations = []
        return other

    def solve(self, B):
        B = np.asarray(B, dtype=np.float64)
        vec = B.ndim == 1
        B2 = B.reshape(B.shape[0], -1)
        X = np.zeros_like(B2)
        bnorm = np.linalg.norm(B2, axis=0)
        active = np.flatnonzero(bnorm > 0)
        R = B2[:, active].copy()
        Z = self.precondition(R)
        Pk = Z.copy()
        rz = np.einsum("pm,pm->m", R, Z)
        res = np.zeros(B2.shape[1])
        step = np.empty_like(Pk)  # the updates in place: no (P, m) temporaries per step
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
            np.multiply(Pk, alpha, out=step)
            if active.size == X.shape[1]:  # no fancy-indexed copy while all run
                X += step
            else:
                X[:, active] += step
            HP *= alpha
            R -= HP
            rnorm = np.linalg.norm(R, axis=0) / bnorm[active]
            res[active] = rnorm
            keep = rnorm > self.tol
            if not keep.all():
                active, R, Pk, rz = active[keep], R[:, keep], Pk[:, keep], rz[keep]
                step = np.empty_like(Pk)
            if not active.size:
                break
            Z = self.precondition(R)
            rz_new = np.einsum("pm,pm->m", R, Z)
            Pk *= rz_new / rz
            Pk += Z
            rz = rz_new
        self.iterations.append(it)
        if active.size:
            warnings.warn(
                f"Conjugate gradients stopped after {it} iterations with relative "
                f"residual {res[active].max():.2e} > tol={self.tol:g} for "
                f"{active.size} right-hand side(s); increase maxiter or add damping.",
                ConvergenceWarning,
                stacklevel=user_stacklevel(),
            )
        return X[:, 0] if vec else X


def _dense_products_pay(op):
    """Whether to form H once: it fits (``P <= 4,000``) and a product with it (``2 P^2``
    flops) is at least twice cheaper than a pass over the rows."""
    return op.P <= AUTO_DIRECT_MAX_PARAMS and 2 * 2 * op.P**2 <= op.data_pass_cost()


class _Preconditioner:
    """``M^{-1} = F F^T`` applied to a block of columns: ``apply(R) = M^{-1} R``;
    ``half(R) = F R`` and ``half_t(R) = F^T R`` give the symmetric operator
    ``F^T H F`` whose spectrum is that of ``M^{-1} H`` (for Lanczos estimates)."""

    def __init__(self, apply, half, half_t=None):
        self.apply, self.half = apply, half
        self.half_t = half if half_t is None else half_t


def _identity(R):
    return R


def _checked_diagonal(op):
    """H's diagonal, refused when some parameter has no curvature."""
    diag = op.diagonal()
    if np.any(diag <= 0):
        raise SingularHessianError(
            "The Hessian has a non-positive diagonal entry: some parameter has no "
            "curvature (e.g. a feature that is zero on every training row with "
            "C=np.inf). " + _SINGULAR_HINT
        )
    return diag


def _preconditioner(op, kind, rank=100, diag=None, iterated_power=2):
    """The preconditioner ``kind`` ({"jacobi", "block", "nystrom", None}) for ``op``."""
    if kind is None:
        return _Preconditioner(_identity, _identity)
    if kind == "block":
        return _block_preconditioner(op)
    if kind == "nystrom":
        return _nystrom_preconditioner(op, min(int(rank), op.P), iterated_power)
    inv_diag = 1.0 / (_checked_diagonal(op) if diag is None else diag)
    root = np.sqrt(inv_diag)
    return _Preconditioner(lambda R: (inv_diag if R.ndim == 1 else inv_diag[:, None]) * R,
                           lambda R: (root if R.ndim == 1 else root[:, None]) * R)


def _block_preconditioner(op):
    """``R -> blockdiag(H_11, ..., H_KK)^{-1} R``, the blocks factored once."""
    K, D = op.K, op.D
    blocks = op.block_diagonal()
    try:  # explicit inverses (batched LAPACK): one batched product per application
        L = np.linalg.cholesky(blocks)  # refuses a block that is not positive definite
        Linv = np.linalg.inv(L)
        LinvT = np.ascontiguousarray(Linv.transpose(0, 2, 1))
        inverses = np.matmul(LinvT, Linv)
    except np.linalg.LinAlgError as exc:
        raise SingularHessianError(
            "A diagonal block of the Hessian is not positive definite. " + _SINGULAR_HINT
        ) from exc

    def by_blocks(M):
        def apply(R):
            return np.matmul(M, R.reshape(K, D, -1)).reshape(R.shape)
        return apply

    return _Preconditioner(by_blocks(inverses), by_blocks(LinvT), by_blocks(Linv))


def _nystrom_preconditioner(op, rank, iterated_power=2, seed=0):
    """Randomized Nystrom preconditioner (Frangella, Tropp & Udell, 2023, Alg. 2.1/5.1).

    ``H ~ U diag(lam) U^T`` from ``H Omega``, where ``Omega`` is a random basis
    after ``iterated_power`` subspace iterations (``Omega <- qr(H Omega)``, one block
    of ``rank`` products each; Halko, Martinsson & Tropp 2011, Alg. 4.4): on sparse
    text the spectrum decays slowly, and a plain sketch finds the top eigenvectors
    poorly (CG: 75 iterations at rank 100, 47 after two iterations, 41 with the
    exact eigenvectors). Then
    ``P^{-1} = lam_rank U diag(1 / lam) U^T + (I - U U^T)`` maps the top of the
    spectrum onto ``lam_rank`` and leaves the rest, so CG's effective condition
    number becomes about ``lam_rank / lam_min``.
    """
    rng = np.random.default_rng(seed)
    Omega, _ = np.linalg.qr(rng.standard_normal((op.P, rank)))
    for _ in range(iterated_power):
        Omega, _ = np.linalg.qr(op.matvec(Omega))
    Y = op.matvec(Omega)
    shift = math.sqrt(op.P) * np.finfo(float).eps * np.linalg.norm(Y)
    Y += shift * Omega
    try:
        C = np.linalg.cholesky(Omega.T @ Y)
    except np.linalg.LinAlgError:  # pragma: no cover - H is PD, so Omega^T H Omega is
        return _Preconditioner(_identity, _identity)
    B = solve_triangular(C, Y.T, lower=True, check_finite=False).T
    U, sigma, _ = np.linalg.svd(B, full_matrices=False)
    lam = np.maximum(sigma**2 - shift, 0.0)
    keep = lam > lam[0] * 1e-12
    U, lam = U[:, keep], lam[keep]
    scale = lam[-1] / lam - 1.0  # P^-1 R = R + U (lam_r / lam - 1) U^T R
    root = np.sqrt(lam[-1] / lam) - 1.0
    # Between sparse products on a thread per CPU, BLAS's own threads would spin after
    # each application and slow the next product (sparse 20,000 x 20,000: 22.0 s
    # against 17.9 s with one BLAS thread here)
    one_thread = _one_blas_thread() if op.dense is None and sp.issparse(op.Phi) else None
    blas = one_thread or contextlib.nullcontext

    def low_rank(c):
        def apply(R):
            with blas():
                out = U @ ((c if R.ndim == 1 else c[:, None]) * (U.T @ R))
            out += R
            return out
        return apply

    return _Preconditioner(low_rank(scale), low_rank(root))


_BLAS = None


def _one_blas_thread():
    """A context that runs BLAS on one thread (threadpoolctl, a dependency of
    scikit-learn), or None when the BLAS libraries cannot be controlled."""
    global _BLAS
    if _BLAS is None:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS = ThreadpoolController().select(user_api="blas")
        except Exception:  # pragma: no cover - threadpoolctl cannot read the libraries
            _BLAS = False
    if not _BLAS:
        return None
    return lambda: _BLAS.limit(limits=1)


#: Steps over which LiSSA's stopping rule measures the recursion's contraction.
LISSA_WINDOW = 8

#: Lanczos steps behind LiSSA's spectrum estimates, and how far they go on while the
#: smallest eigenvalue's estimate is not resolved.
LANCZOS_STEPS = 40
LANCZOS_MAX_STEPS = 120


def _lanczos_bounds(matvec, P, steps=LANCZOS_STEPS, seed=0, max_steps=LANCZOS_MAX_STEPS):
    """``(theta_min, upper, settled)`` for a symmetric positive definite operator: the
    smallest Ritz value (an estimate of the smallest eigenvalue from above), the
    largest Ritz value plus its residual norm (a bound on the largest eigenvalue,
    which Lanczos finds first), and whether the smallest Ritz pair is resolved
    (its residual norm ``r`` below ``theta_min``, so that ``[theta - r, theta + r]``,
    which holds an eigenvalue, stays clear of 0). After ``steps`` steps with full
    reorthogonalisation, then ten at a time up to ``max_steps`` while it is not."""
    m = min(int(max_steps), P)
    Q = np.empty((P, m + 1))
    q = np.random.default_rng(seed).standard_normal(P)
    Q[:, 0] = q / np.linalg.norm(q)
    alpha, beta = np.empty(m), np.empty(m)
    for j in range(m):
        w = matvec(Q[:, j])
        alpha[j] = Q[:, j] @ w
        for _ in range(2):  # twice is enough (Kahan)
            w -= Q[:, :j + 1] @ (Q[:, :j + 1].T @ w)
        beta[j] = np.linalg.norm(w)
        k = j + 1
        exact = beta[j] <= 1e-10 * abs(alpha[j])  # an invariant subspace: exact
        if exact or k == m or (k >= min(steps, m) and (k - steps) % 10 == 0):
            theta, S = eigh_tridiagonal(alpha[:k], beta[:k - 1])
            settled = exact or abs(beta[j] * S[-1, 0]) < theta[0]
            if settled or k == m:
                break
        Q[:, k] = w / beta[j]
    return (float(theta[0]), float(theta[-1] + abs(beta[k - 1] * S[-1, -1])),
            bool(settled or k == P))


class _StopRule:
    """LiSSA's stopping rule on the recursion's change (see :class:`LiSSA`)."""

    def __init__(self, m, tol):
        self.window = np.full((LISSA_WINDOW, m), np.nan)  # recent changes
        self.tol = tol

    def done(self, j, active, change, norm):
        slot = j % LISSA_WINDOW
        old = self.window[slot, active]
        self.window[slot, active] = change
        if j < LISSA_WINDOW:
            return np.zeros(active.size, dtype=bool)
        with np.errstate(divide="ignore", invalid="ignore"):
            rho = np.clip((change / old) ** (1.0 / LISSA_WINDOW), 0.0, 1.0 - 1e-12)
            left = change * rho / (1.0 - rho) / norm
        return left <= self.tol / 2  # a margin for rho's error


def _batch_curvature_bound(op, b):
    """An upper bound on the largest eigenvalue of every ``b``-row mini-batch Hessian:
    the mean of the ``b`` largest row curvatures ``s_i lambda_max(A_i) ||phi~_i||^2``
    plus the penalty, damping and null-space terms."""
    A = op.A
    top = A[:, 0, 0] if op.K == 1 else np.linalg.eigvalsh(A)[:, -1]
    sq = (np.asarray(op.Phi.multiply(op.Phi).sum(axis=1)).ravel() if sp.issparse(op.Phi)
          else np.einsum("ij,ij->i", op.Phi, op.Phi))
    rows = np.maximum(op.s * top, 0.0) * (sq + float(op.intercept))
    b = int(min(b, rows.size))
    largest = np.partition(rows, rows.size - b)[rows.size - b:]
    return float(largest.mean() + np.max(op.pen) + op.damping + op.null_scale)


class LissaSolver:
    """The LiSSA recursion (preconditioned; Chebyshev-accelerated with full
    batches), vectorised over all right-hand sides."""

    name = "lissa"
    exact = False

    def __init__(self, op, config):
        self.op = op
        self.config = config
        n = op.n
        batch = config.batch_size
        self.batch_size = n if batch is None else int(min(batch, n))
        full = self.batch_size == n
        if full and _dense_products_pay(op):
            op.densify()  # full batches: every step is a product with H (as CG's rule)
        kind = config.preconditioner
        if kind == "auto":
            kind = (None if not full else "block" if op.K > 1 and op.D <= 2000
                    else "jacobi")
        self.preconditioner = kind
        self.pc = _preconditioner(op, kind)
        accel = config.acceleration
        if accel == "chebyshev" and not full:
            raise ValueError(
                "LiSSA(acceleration='chebyshev') needs full batches (batch_size=None): "
                "Chebyshev's weights amplify the noise of mini-batch Hessians. Use "
                "acceleration=None (the paper's recursion) with batch_size, or drop "
                "batch_size.")
        self.acceleration = ("chebyshev" if full else None) if accel == "auto" else accel
        # Lanczos on F^T H F (40 products): the spectrum behind scale, depth and checks;
        # skipped only for mini-batches given both scale and depth (no pass over all rows)
        pc = self.pc
        self.lam_min = self.lam_max = None
        if full or config.scale is None or config.depth is None:
            self.lam_min, self.lam_max, settled = _lanczos_bounds(
                lambda v: pc.half_t(op.matvec(pc.half(v))), op.P)
            if not (self.lam_min > 0):
                raise SingularHessianError("LiSSA needs a positive definite H. "
                                           + _SINGULAR_HINT)
            if not settled:
                warnings.warn(
                    f"LiSSA's estimate of the Hessian's smallest eigenvalue "
                    f"({self.lam_min:.2g}) has not settled after {LANCZOS_MAX_STEPS} "
                    "Lanczos steps: the spectrum may reach far lower, and the depth set "
                    f"from it may be far too short for tol={config.tol:g}, without any "
                    "other warning. Use influence_solver='cg' (exact, it says when it "
                    "stops short) or 'direct'.",
                    ConvergenceWarning,
                    stacklevel=user_stacklevel(),
                )
        if config.scale is not None:
            self.scale = float(config.scale)
            if self.lam_max is not None and self.scale < self.lam_max / 1.01:
                raise ValueError(
                    f"LiSSA(scale={self.scale:g}) is below the largest eigenvalue of the "
                    f"{'preconditioned ' if kind else ''}Hessian (about {self.lam_max:.3g}): "
                    "the series would diverge. Leave scale=None to set it from the "
                    "spectrum.")
        elif full:
            self.scale = 1.05 * self.lam_max
        else:
            # every mini-batch Hessian must lie below scale: H_B <= (n / b) H in the
            # PSD order, and (no preconditioner) lambda_max(H_B) <= the mean of the b
            # largest row curvatures + the penalty; the smaller bound, with a margin
            bound = (n / self.batch_size) * self.lam_max
            if kind is None:
                bound = min(bound, _batch_curvature_bound(op, self.batch_size))
            self.scale = 1.05 * bound
        if self.lam_min is not None:  # the steps tol takes, from the spectrum estimates
            ratio = self.scale / min(self.lam_min, self.scale)
            self.need = (math.sqrt(ratio) * math.log(2.0 / config.tol) if self.acceleration
                         else math.log(1.0 / config.tol) * ratio)
        if config.depth is not None:
            self.depth = int(config.depth)
        else:
            self.depth = int(min(math.ceil(self.need), config.max_depth))
            if self.need > 10 * config.max_depth:  # said before the steps are spent
                warnings.warn(
                    f"LiSSA's spectrum estimates ask for about {self.need:.2g} steps per "
                    f"solve, far beyond max_depth={config.max_depth}: its answers will be "
                    f"far from tol={config.tol:g} after {self.depth} steps per batch. Use "
                    "influence_solver='cg' (exact, fewer products) or 'direct'.",
                    ConvergenceWarning,
                    stacklevel=user_stacklevel(),
                )
        self.rhs_batch = 256

    need = None  # the automatic depth before the cap

    def solve(self, B):
        B = np.asarray(B, dtype=np.float64)
        vec = B.ndim == 1
        B2 = B.reshape(B.shape[0], -1)
        cfg = self.config
        rng = check_random_state(cfg.random_state)
        steps = range(self.depth)
        if cfg.progress:
            try:
                from tqdm.auto import tqdm
            except ImportError as exc:  # pragma: no cover - optional extra
                raise ImportError("LiSSA(progress=True) needs tqdm: pip install tqdm") from exc
        total = np.zeros_like(B2)
        squares = np.zeros_like(B2) if cfg.repeats > 1 else None
        unfinished = 0
        self.steps = []
        self.diverged = False
        self.noise = None
        full = self.batch_size == self.op.n
        for _ in range(1 if full else cfg.repeats):  # full batches: identical runs
            it = tqdm(steps, desc="LiSSA", leave=False) if cfg.progress else steps
            run = self._chebyshev if self.acceleration else self._neumann
            X, active, done = run(B2, it, rng)
            self.steps.append(done)
            unfinished = max(unfinished, active.size)
            total += X
            if squares is not None and not full:
                squares += X * X
        if cfg.depth is not None and self.need is not None and self.need > self.depth \
                and (unfinished or self.acceleration or not full):
            # an explicit depth too short for tol: the series is cut before it reaches
            # H^-1 (with mini-batches too -- a bias no number of repeats averages away)
            warnings.warn(
                f"LiSSA(depth={cfg.depth}) stopped short of tol={cfg.tol:g}: the spectrum "
                f"estimates ask for about {self.need:.0f} steps"
                + (f", and {unfinished} right-hand side(s) had not settled" if full and
                   unfinished else " (Chebyshev's error bound)" if full else
                   " (the series is cut there whatever the mini-batches' noise)")
                + ". Raise depth, leave depth=None (from the spectrum), or use "
                "influence_solver='cg' (exact, fewer products).",
                ConvergenceWarning,
                stacklevel=user_stacklevel(),
            )
        if unfinished and cfg.depth is None and self.need > self.depth:  # once, not per run
            warnings.warn(
                f"LiSSA stopped after {self.depth} steps (max_depth={cfg.max_depth}) "
                f"with {unfinished} right-hand side(s) not yet within tol={cfg.tol:g} "
                f"(the spectrum estimates ask for about {self.need:.0f} steps). Raise "
                "max_depth, or use influence_solver='cg' (exact, fewer products) or "
                "'direct'.",
                ConvergenceWarning,
                stacklevel=user_stacklevel(),
            )
        X = total / len(self.steps)
        if squares is not None and not full and np.all(np.isfinite(X)):
            self._check_noise(X, squares, len(self.steps))
        if not np.all(np.isfinite(X)) or self.diverged:
            raise ValueError(
                f"LiSSA diverged: scale={self.scale:.3g} is below the largest eigenvalue of "
                + ("some mini-batch Hessian" if self.batch_size < self.op.n else
                   f"the Hessian (about {self.lam_max:.3g})")
                + ". Leave scale=None, or use a larger batch_size or "
                "influence_solver='cg'.")
        return X[:, 0] if vec else X

    def _check_noise(self, X, squares, runs):
        """The mini-batch runs' spread as the standard error of their mean, relative
        to its norm, per right-hand side (``self.noise``); above ``tol`` it warns."""
        var = np.maximum(squares / runs - X * X, 0.0) * runs / (runs - 1)
        norm = np.linalg.norm(X, axis=0)
        se = np.sqrt(var.sum(axis=0) / runs)
        self.noise = np.divide(se, norm, out=np.zeros_like(se), where=norm > 0)
        worst = float(self.noise.max(initial=0.0))
        if worst > self.config.tol:
            warnings.warn(
                f"LiSSA's mini-batch estimate is noisy: across {runs} runs its standard "
                f"error is up to {worst:.2g} of its norm (tol={self.config.tol:g}). Raise "
                "repeats or batch_size, or use influence_solver='cg' (exact).",
                ConvergenceWarning,
                stacklevel=user_stacklevel(),
            )

    def _neumann(self, B, steps, rng):
        """``v_j = M^{-1} b + (I - M^{-1} H_j / scale) v_{j-1}``; returns ``v / scale``."""
        n, full, apply = self.op.n, self.batch_size == self.op.n, self.pc.apply
        MB = apply(B)
        V = MB.copy()
        b_norm = np.linalg.norm(MB, axis=0)
        active = np.flatnonzero(np.linalg.norm(B, axis=0) > 0)
        rule = _StopRule(B.shape[1], self.config.tol)
        j = -1
        for j in steps:
            if not active.size:
                break
            rows = None if full else rng.choice(n, self.batch_size, replace=False)
            Va = V[:, active]
            Vn = MB[:, active] + Va - apply(self.op.matvec(Va, rows)) / self.scale
            V[:, active] = Vn
            if full:
                change = np.linalg.norm(Vn - Va, axis=0)
                if j == 0:
                    first = np.zeros(B.shape[1])
                    first[active] = change
                elif np.any(change > 2.0 * first[active]):  # a contraction never grows
                    self.diverged = True
                    break
                active = active[~rule.done(j, active, change, np.linalg.norm(Vn, axis=0))]
            elif self.preconditioner is None and np.any(
                    np.linalg.norm(Vn, axis=0) > 2.0 * (j + 2) * b_norm[active]):
                # with scale above every mini-batch's curvature each term is at most
                # ||b||: a sum of j + 2 of them that is larger has a term that grew
                self.diverged = True
                break
        return V / self.scale, active, j + 1

    def _chebyshev(self, B, steps, rng):
        """Preconditioned Chebyshev iteration on ``[lam_min, scale]`` (Saad, 2003,
        Alg. 12.1): ``x_{j+1} = x_j + d_j`` with ``d_j`` mixing the preconditioned
        residual and ``d_{j-1}`` by the three-term recurrence of ``T_j``. It runs the
        whole depth: its steps do not shrink monotonically, so the change-based rule
        stopped it early on ill-conditioned problems (ridge with a 3e-4 collinearity:
        0.13 relative error), while the depth bounds the error by ``2 / T_depth``."""
        a = min(self.lam_min, self.scale / 2)
        theta, delta = (self.scale + a) / 2, (self.scale - a) / 2
        sigma = theta / delta
        rho = 1.0 / sigma
        X = np.zeros_like(B)
        active = np.flatnonzero(np.linalg.norm(B, axis=0) > 0)
        bnorm = np.linalg.norm(B[:, active], axis=0)
        R = B[:, active].copy()
        Dk = self.pc.apply(R) / theta
        j = -1
        for j in steps:
            if not active.size:
                break
            X[:, active] += Dk
            R -= self.op.matvec(Dk)
            if np.any(np.linalg.norm(R, axis=0) > 1e3 * bnorm):  # bounded if scale is
                self.diverged = True
                break
            rho_next = 1.0 / (2.0 * sigma - rho)
            Dk = (rho_next * rho) * Dk + (2.0 * rho_next / delta) * self.pc.apply(R)
            rho = rho_next
        return X, active, j + 1
