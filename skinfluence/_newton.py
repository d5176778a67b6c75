"""One Newton step per left-out training row (``kind="newton"``), over the fitted state.

Removing training row ``i`` (weight ``c_i = s_i / n``), one Newton step on the
objective without it is, by the rank-K Woodbury identity (never a per-row
factorisation),

    theta_-i - theta_hat ~= H^{-1} U_i coef_i + c_i u,
    coef_i = c_i (I - c_i A_i M_i)^{-1} (g_i + c_i A_i U_i^T u),

with ``U_i = I_K (x) phi~_i`` (the directions through which the row's K outputs
move), ``M_i = U_i^T H^{-1} U_i`` (its K x K leverage block), ``A_i`` and ``g_i``
the loss's second and first derivatives in the outputs, and ``u`` the solved
penalty share (GLMs; else 0). A leverage of 1 leaves no step: NaN.

``coef`` (n x K floats) does not depend on the question asked, so it is computed
once per fit and kept on the fitted state. With it a step is one product with
``H^{-1}``, and a test output moves by ``(e_k (x) phi~_t)^T H^{-1} U_i coef_i + c_i
(e_k (x) phi~_t)^T u``: for one output that is the first-order kind's product
scaled per row, so a repeated question costs what the first-order one does. The
n x P steps are kept as well when they are small (``STEPS_CACHE_ELEMENTS``).
"""

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from ._utils import OncePerCall
from .curvature import CHUNK_ELEMENTS, augment, gemm, row_chunks
from .solvers import DirectSolver

#: ``I - c A_i M_i`` with a singular value below this: removing the row(s) leaves the
#: objective flat along some direction (leverage 1).
LEVERAGE_ONE_TOL = 1e-10

#: Chunk size (floats) of the one-output Newton steps: the rows' steps are touched
#: three times (product, leverage, scaling), so they should stay in cache.
NEWTON_CHUNK_ELEMENTS = 2**20

#: The n x P steps are kept on the fitted state up to this many floats (32 MB).
STEPS_CACHE_ELEMENTS = 2**22

#: Largest ``H^{-1} (e_k (x) phi~_t)`` block (K P m floats, 64 MB) for which the test
#: rows are solved for instead of the steps formed.
TEST_SIDE_ELEMENTS = 2**23


def rank_one_newton_coef(c, a, q, rhs):
    """One output's Newton coefficient ``c rhs / (1 - c a q)`` (Sherman-Morrison with
    the leverage ``q = phi~^T H^-1 phi~``), NaN where the leverage is 1."""
    lhs = 1.0 - c * a * q
    flat = np.abs(lhs) < LEVERAGE_ONE_TOL
    coef = c * rhs / np.where(flat, 1.0, lhs)
    coef[flat] = np.nan
    return coef


def leverage_one(lhs):
    """Rows whose ``I - c A M`` (eigenvalues in [0, 1]) is singular to
    ``LEVERAGE_ONE_TOL``: the determinant screens them (a batched LU), the SVD
    decides for the few it cannot clear (each eigenvalue is at least the det)."""
    K = lhs.shape[-1]
    if K == 1:
        return np.abs(lhs[:, 0, 0]) < LEVERAGE_ONE_TOL
    unsure = np.flatnonzero(np.abs(np.linalg.det(lhs)) < 1e-3)
    flat = np.zeros(len(lhs), dtype=bool)
    if unsure.size:
        flat[unsure] = np.linalg.svd(lhs[unsure], compute_uv=False).min(axis=1) \
            < LEVERAGE_ONE_TOL
    return flat


def _cache(state):
    """The Newton quantities kept on one fitted state (dropped with it)."""
    return state.__dict__.setdefault("_newton", {})


def has_one_output_newton(state):
    """Whether the leverages alone give the coefficients: one output, dense rows,
    factored H."""
    return (state.K == 1 and isinstance(state.solver, DirectSolver)
            and not sp.issparse(state.Phi))


def linear(Phi, v, state):
    """``[phi, 1] . v`` for every row (einsum, not a BLAS gemv: numpy's and scipy's
    OpenBLAS pools each spin after a call, so a gemv right after scipy's trsm was
    25x slower than its work)."""
    out = np.einsum("id,d->i", Phi, v[:state.d])
    if state.intercept:
        out += v[state.d]
    return out


def one_output(state):
    """``(coef, c, q)`` of a one-output model from its leverages, cached.

    With one output every quantity linear in the step needs only the leverage
    ``q_i = ||L^{-1} phi~_i||^2`` -- a triangular solve, ``P^2 / 2`` flops per row --
    not the step itself (``P^2``). Only where :func:`has_one_output_newton`.

    All rows in one pass of scipy's triangular solves, in chunks of at least
    ``2 P`` rows, before the caller's numpy products: numpy and scipy each bring
    an OpenBLAS pool, and alternating them chunk by chunk left the idle pool's
    threads spinning against the other's (50,000 x 200: 3x slower).
    """
    cache = _cache(state)
    if "q" not in cache:
        q = np.empty(state.n)
        for rows in row_chunks(state.n, state.P, max(CHUNK_ELEMENTS, 2 * state.P**2)):
            q[rows] = state.solver.quad_augmented(state.Phi[rows], state.intercept)
        c = state.s / state.n
        a = state.op.A[:, 0, 0]
        rhs = state.G[:, 0]
        if state.share is not None:
            rhs = rhs + c * a * linear(state.Phi, state.share_solved, state)
        cache["q"] = q
        cache.setdefault("coef", rank_one_newton_coef(c, a, q, rhs)[:, None])
    return cache["coef"][:, 0], state.s / state.n, cache["q"]


def _fresh(state, rows, out=None):
    """``(coef, steps)`` of ``rows`` from nothing: the leverage blocks and the steps
    from one product of ``H^{-1}``'s columns with the rows (``rows P^2`` flops);
    the steps written into ``out`` when given."""
    K, D = state.K, state.D
    if K == 1 and state.share is None and isinstance(state.solver, DirectSolver) \
            and not sp.issparse(state.Phi):
        # Sherman-Morrison in the rows' own layout: T = phi~ H^-1 (H symmetric),
        # the intercept row added by broadcasting: no [phi, 1] copy, no transposes
        Hinv, Phi, d = state.solver.inverse(), state.Phi[rows], state.d
        T = gemm(np.asarray(Phi), Hinv[:d])
        if out is not None:
            out[...] = T
            T = out
        if state.intercept:
            T += Hinv[d]
        q = np.einsum("id,id->i", Phi, T[:, :d])
        if state.intercept:
            q += T[:, d]
        coef = rank_one_newton_coef(state.s[rows] / state.n, state.op.A[rows, 0, 0], q,
                                    state.G[rows, 0])
        T *= coef[:, None]
        return coef[:, None], T
    Phi_t = augment(state.Phi[rows], state.intercept)  # (c, D)
    c_rows = Phi_t.shape[0]
    # right-hand sides e_k (x) phi~_i for every row i and output k: (P, c*K)
    S = state.solve_output_blocks(Phi_t, rows_first=True)  # (c, K, D, K)
    # (c, K, K): phi~^T (H^-1)_{kl} phi~, batched per row (an einsum was 5x slower)
    M = np.matmul(Phi_t[:, None, None, :], S).reshape(c_rows, K, K)
    c = (state.s[rows] / state.n)[:, None, None]
    A = state.op.A[rows]
    lhs = np.eye(K)[None] - c * np.matmul(A, M)
    # leverage 1: without the row the objective is flat along some direction, so
    # there is no Newton step (and no unique refit); NaN, never a finite guess
    flat = leverage_one(lhs)
    lhs[flat] = np.eye(K)
    rhs = state.G[rows]
    if state.share is not None:
        # the penalty share e: c (H - c U A U^T)^{-1} (U g + e) = c H^-1 U (I - c A
        # M)^{-1} (g + c A U^T u) + c u with u = H^-1 e (the share's own curvature,
        # (s_i / sum s) of the penalty, stays in H: a relative O(s_i / sum s) error)
        u = state.share_solved
        v = Phi_t @ u.reshape(K, D).T  # (c, K): U_i^T u
        rhs = rhs + c[:, :, 0] * np.einsum("ikl,il->ik", A, v)
    coef = np.linalg.solve(lhs, rhs[:, :, None])[:, :, 0] * c[:, :, 0]  # (c, K)
    coef[flat] = np.nan
    steps = np.matmul(S.reshape(c_rows, K * D, K), coef[:, :, None],
                      out=None if out is None else out.reshape(c_rows, K * D, 1))
    steps = steps.reshape(c_rows, K * D)
    if state.share is not None:
        steps += c[:, :, 0] * u[None, :]
    return coef, steps


def _from_coef(state, rows, coef):
    """The steps of ``rows`` from their kept coefficients: ``H^{-1} (U_i coef_i)``,
    one product with ``H^{-1}`` per row (``P^2`` flops), not ``K`` of them."""
    K, D = state.K, state.D
    Phi_t = augment(state.Phi[rows], state.intercept)
    flat = np.isnan(coef).any(axis=1)
    W = (np.where(flat[:, None], 0.0, coef)[:, :, None] * Phi_t[:, None, :]).reshape(-1, K * D)
    if isinstance(state.solver, DirectSolver):
        steps = gemm(W, state.solver.inverse())  # H^-1 symmetric
    else:
        steps = state.solve_many(W.T).T
    steps[flat] = np.nan
    if state.share is not None:
        steps += (state.s[rows] / state.n)[:, None] * state.share_solved[None, :]
    return steps


def iter_steps(state, budget=None, extra=0):
    """``(rows, steps)`` over every training row in chunks; ``steps`` of shape
    ``(len(rows), P)`` in the internal layout, NaN on rows of leverage 1.

    Yielded arrays may be read-only views of kept steps: copy before writing. The
    first full pass keeps the coefficients (and the steps, when small). Chunks hold
    at most ``budget`` floats, counting the caller's ``extra`` floats per row.
    """
    cache = _cache(state)
    n, P = state.n, state.P
    state.expect_solves(n * state.K)
    if "steps" in cache:
        for rows in row_chunks(n, P + extra, budget):
            yield rows, cache["steps"][rows]
        return
    known = cache.get("coef")
    coef = np.empty((n, state.K)) if known is None else None
    kept = np.empty((n, P)) if n * P <= STEPS_CACHE_ELEMENTS else None
    shortfalls = OncePerCall()  # an iterative solver's warnings: once, at the end
    for rows in row_chunks(n, P * (state.K if known is None else 1) + extra, budget):
        with shortfalls.hold():
            if known is None:  # computed in place when kept: yielded as a view of them
                coef[rows], steps = _fresh(state, rows, None if kept is None else kept[rows])
            else:
                steps = _from_coef(state, rows, known[rows])
                if kept is not None:
                    kept[rows] = steps
        yield rows, steps
    short = any(issubclass(w.category, ConvergenceWarning) for w in shortfalls.held)
    shortfalls.issue()
    if short:  # a short-stopped solver's steps are not kept: later calls warn again
        if known is None:
            cache["unkept_coef"] = coef  # for coefficients(), this call only
        return
    if known is None:
        cache["coef"] = coef
    if kept is not None:
        kept.flags.writeable = False
        cache["steps"] = kept


def coefficients(state):
    """Every training row's Newton coefficient, shape ``(n, K)`` (kept)."""
    cache = _cache(state)
    if "coef" not in cache:
        if has_one_output_newton(state):
            one_output(state)
        else:
            for _ in iter_steps(state):
                pass
    return cache["coef"] if "coef" in cache else cache.pop("unkept_coef")


def unidentified(state):
    """Training rows of leverage 1 (no Newton step without them): a mask."""
    return np.isnan(coefficients(state)).any(axis=1)


def step_output_changes(Phi_t, steps, K, D, kept=False):
    """``dF[k, t, j]``: change of output ``k`` at test row ``Phi_t[t]`` after step
    ``j``, shape ``(K, m, len(steps))``. ``kept``: the steps were kept, so no solve of
    scipy's ran just before."""
    c = len(steps)
    if K == 1:
        return gemm(Phi_t, steps.T)[None]
    if kept:
        # numpy's batched matmul writes outputs first directly (0.65 ms where one GEMM
        # and a transposing copy took 4.1: 10 outputs, 100 test rows, 350 training
        # rows) -- but it meets scipy's spinning pool right after scipy's solves
        # (W1 cold Newton loss 180 ms against 123), so it serves kept steps only
        return np.matmul(Phi_t[None], steps.reshape(c, K, D).transpose(1, 2, 0))
    # one GEMM by scipy's BLAS (as the solves before it), then outputs first
    R = gemm(Phi_t, steps.reshape(c * K, D).T).reshape(len(Phi_t), c, K)
    return np.ascontiguousarray(R.transpose(2, 0, 1))


def _test_side_cheaper(state, m):
    """Whether solving for the test rows beats forming the steps from kept
    coefficients: ``m P^2 + K m n P`` against ``n P^2 + m n P`` flops."""
    n, P, K = state.n, state.P, state.K
    return m * P * P + K * m * n * P < n * P * P + m * n * P


def output_changes(state, Phi_t, per_row=0):
    """``(rows, dF)`` over every training row in chunks: ``dF[k, t, j]`` the change of
    output ``k`` at test row ``Phi_t[t]`` after the Newton step without training
    row ``rows[j]``, shape ``(K, m, len(rows))``.

    ``per_row`` is the caller's own memory per training row of a chunk (floats).
    With kept coefficients and fewer test rows than the steps' cost justifies, the
    test rows are solved for instead (``m`` columns of ``H^{-1}`` per output): a
    repeated one-output question then costs the first-order kind's products.
    """
    K, D, n = state.K, state.D, state.n
    m = Phi_t.shape[0]
    cache = _cache(state)
    test_side = "steps" not in cache and K * state.P * m <= TEST_SIDE_ELEMENTS and (
        (K == 1 and has_one_output_newton(state))
        or ("coef" in cache and _test_side_cheaper(state, m)))
    if not test_side:
        kept = "steps" in cache
        for rows, steps in iter_steps(state, extra=K * m + per_row):
            yield rows, step_output_changes(Phi_t, steps, K, D, kept)
        return
    coef = coefficients(state)
    # T[l, e, k, t] = (H^-1 (e_k (x) phi~_t))_(l, e): as (K_l, K m, D) for the products
    T = state.solve_output_blocks(Phi_t).reshape(K, D, K * m).transpose(0, 2, 1)
    shared = None
    if state.share is not None:  # c_i (e_k (x) phi~_t)^T u
        shared = (Phi_t @ state.share_solved.reshape(K, D).T).T  # (K, m)
    for rows in row_chunks(n, 2 * K * m + per_row + D):
        Phi_r = state.Phi[rows]
        dF = _times_rows(T[0], Phi_r, state).reshape(K, m, -1)
        dF *= coef[rows, 0]
        for l in range(1, K):  # a loop over outputs
            part = _times_rows(T[l], Phi_r, state).reshape(K, m, -1)
            part *= coef[rows, l]
            dF += part
        if shared is not None:
            dF += shared[:, :, None] * (state.s[rows] / state.n)
        yield rows, dF


def _times_rows(A, Phi, state):
    """``A @ [phi, 1]^T`` for rows ``Phi`` (``A`` of shape (r, D)), without copying
    the rows into ``[phi, 1]``."""
    d = state.d
    out = np.asarray((Phi @ A[:, :d].T).T) if sp.issparse(Phi) else gemm(A[:, :d], Phi.T)
    if state.intercept:
        out += A[:, d:]
    return out
