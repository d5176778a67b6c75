"""Per-sample derivatives, gradients and the exact Hessian of a linear-over-features model.

Every model is ``f(x) = phi(x) W^T + b`` with ``K`` outputs. Internally the
parameters are laid out as a ``(K, D)`` matrix ``Theta = [W | b]`` (``D = d + 1``
with an intercept, ``d`` without), flattened row by row, so that the gradient of
sample ``i`` is the Kronecker product ``g_i (x) phi~_i`` of the loss derivative
``g_i = dl/df_i`` and the augmented features ``phi~_i = [phi(x_i), 1]``, and the
Hessian is ``(1/n) sum_i s_i (A_i (x) phi~_i phi~_i^T)`` plus the penalty, with
``A_i = d^2 l / df_i^2``.

The loss derivatives come from autograd, in one vectorised pass over all samples
(the summed loss is separable, so its elementwise gradient is every sample's
derivative); everything in parameter space comes from BLAS over bounded chunks
of rows. Nothing here knows how ``H^{-1}`` is applied.
"""

import os
from concurrent.futures import ThreadPoolExecutor

import autograd.numpy as anp
import numpy as np
import scipy.sparse as sp
from autograd import elementwise_grad
from scipy.linalg.blas import dgemm, dgemv, dsyrk

from .features import IdentityFeatures

__all__ = [
    "output_derivatives",
    "row_chunks",
    "augment",
    "sample_gradients",
    "penalty_diagonal",
    "objective_gradient",
    "hessian",
    "directional_gradients",
    "HessianOperator",
]

# Rows per chunk are chosen so that a chunk of width ``w`` holds about this many
# float64 values (16 MiB).
CHUNK_ELEMENTS = 2**21


class ParameterLayout:
    """The internal ``(K, D)`` layout of a fitted model's parameters.

    Sets ``intercept``, ``K``, ``d``, ``D``, ``P``, ``Theta`` (``[W | b]``) and
    ``perm``, the map from the external order (``coef_.ravel()``, then
    ``intercept_``) to the internal one: ``internal[perm] == external``.
    """

    def _set_layout(self, model):
        self.intercept = model.intercept is not None
        self.K, self.d = model.coef.shape
        self.D = self.d + int(self.intercept)
        self.P = self.K * self.D
        Theta = np.asarray(model.coef, dtype=np.float64)
        if self.intercept:
            Theta = np.hstack([Theta, np.asarray(model.intercept, dtype=np.float64)[:, None]])
        self.Theta = Theta
        idx = np.arange(self.P).reshape(self.K, self.D)
        perm = [idx[:, : self.d].ravel()]
        if self.intercept:
            perm.append(idx[:, self.d])
        self.perm = np.concatenate(perm)
        # one output: the internal layout is already theta's order (no reindexing)
        self.perm_is_identity = bool(np.array_equal(self.perm, np.arange(self.perm.size)))

    def to_theta(self, rows, out):
        """Write ``rows`` (shape (c, P), internal layout) into ``out`` in theta order:
        two strided block copies (a gather by ``perm`` was 3x slower)."""
        if self.perm_is_identity:
            out[...] = rows
            return out
        K, d = self.K, self.d
        blocks = rows.reshape(len(rows), K, self.D)
        out[:, :K * d].reshape(len(rows), K, d)[...] = blocks[:, :, :d]
        out[:, K * d:] = blocks[:, :, d]
        return out


def output_derivatives(loss, Y, F, order=2):
    """First (and second) derivatives of each sample's loss w.r.t. its outputs.

    Parameters
    ----------
    loss : Loss
    Y : ndarray
        Encoded targets.
    F : ndarray of shape (n_samples, K)
        Model outputs.
    order : {1, 2}

    Returns
    -------
    G : ndarray of shape (n_samples, K)
        ``dl_i / df_i``.
    A : ndarray of shape (n_samples, K, K)
        ``d^2 l_i / df_i^2`` (only with ``order=2``).
    """
    F = np.asarray(F, dtype=np.float64)
    if hasattr(loss, "derivatives"):  # closed form (tested against the autograd path)
        return loss.derivatives(Y, F, order)
    return autograd_derivatives(loss, Y, F, order)


def autograd_derivatives(loss, Y, F, order=2):
    """:func:`output_derivatives` by automatic differentiation of ``loss.value``."""
    F = np.asarray(F, dtype=np.float64)

    def total(F_):
        return anp.sum(loss.value(Y, F_))

    first = elementwise_grad(total)
    G = first(F)
    if order == 1:
        return G
    K = F.shape[1]
    A = np.empty((F.shape[0], K, K))
    for k in range(K):  # a loop over outputs, never over samples
        A[:, k, :] = elementwise_grad(lambda F_, k=k: anp.sum(first(F_)[:, k]))(F)
    # the exact second derivative is symmetric; remove rounding asymmetry
    A = 0.5 * (A + A.transpose(0, 2, 1))
    return G, A


def row_chunks(n_rows, width, chunk_elements=None):
    """Slices of at most ``chunk_elements // width`` rows covering ``range(n_rows)``."""
    budget = CHUNK_ELEMENTS if chunk_elements is None else chunk_elements
    step = max(1, int(budget) // max(int(width), 1))
    for start in range(0, n_rows, step):
        yield slice(start, min(n_rows, start + step))


#: Rows below which a sparse product is not worth a thread.
SPARSE_THREAD_ROWS = 2048


def sparse_workers():
    """Threads for sparse products: scipy's are single-threaded and release the GIL
    (dense products are left to BLAS, which has its own threads)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


_POOL = {}


def map_chunks(fn, parts, threads=False):
    """``fn`` over ``parts`` in order; on a thread pool when ``threads`` and there are
    several parts and CPUs, at most ``2 * workers`` chunks in flight (bounded memory)."""
    workers = sparse_workers() if threads and len(parts) > 1 else 1
    if workers == 1:
        yield from map(fn, parts)
        return
    pool = _POOL.get(workers)
    if pool is None:
        pool = _POOL[workers] = ThreadPoolExecutor(workers, thread_name_prefix="skinfluence")
    pending = []
    for part in parts:
        pending.append(pool.submit(fn, part))
        if len(pending) >= 2 * workers:
            yield pending.pop(0).result()
    for future in pending:
        yield future.result()


def augment(Phi, intercept):
    """``[Phi, 1]`` as a dense array (with ``intercept``), else dense ``Phi``."""
    Phi = Phi.toarray() if sp.issparse(Phi) else np.asarray(Phi, dtype=np.float64)
    if not intercept:
        return Phi
    return np.hstack([Phi, np.ones((Phi.shape[0], 1))])


def sample_gradients(Phi, G, intercept):
    """Per-sample parameter gradients ``g_i (x) phi~_i``, shape ``(n, K * D)``.

    Dense; call it on bounded chunks of rows.
    """
    Pt = augment(Phi, intercept)
    return (G[:, :, None] * Pt[:, None, :]).reshape(Pt.shape[0], -1)


def gradients_times(Phi, G, M, intercept, out=None):
    """``sample_gradients(Phi, G, intercept) @ M`` for ``M`` of shape ``(K * D, q)``
    (internal layout), shape ``(c, q)``, written into ``out`` when given.

    With one output the gradients are never formed: ``g_i [phi_i, 1] M`` is
    ``g_i (phi_i M_phi + m_1)``, one product with the rows as they are (forming
    ``g_i (x) [phi_i, 1]`` first copied every row and was half of
    ``influence_on_params``' time with a factored H).
    """
    K = G.shape[1]
    if K > 1:
        return gemm(sample_gradients(Phi, G, intercept), M, out=out)
    d = Phi.shape[1]
    if sp.issparse(Phi):
        res = np.asarray(Phi @ M[:d])
        if out is None:
            out = res
        else:
            out[...] = res
    else:
        out = gemm(np.asarray(Phi, dtype=np.float64), M[:d], out=out)
    if intercept:
        out += M[d]
    out *= G
    return out


def _fortran_view(A):
    """``(array, trans)`` with ``array`` Fortran-ordered and ``op(array) == A``
    (no copy for C- or Fortran-ordered ``A``)."""
    if A.flags.f_contiguous:
        return A, 0
    if A.flags.c_contiguous:
        return A.T, 1
    return np.asfortranarray(A), 0


def gemm(A, B, out=None):
    """``A @ B`` for dense float64 matrices by scipy's BLAS, C-ordered (written into
    a C-ordered float64 ``out`` when given).

    The factorisation and the solves are scipy's: numpy and scipy each bring an
    OpenBLAS pool whose idle threads spin, and a numpy product right after a
    scipy solve ran 2-4x slower than alone. Computed as ``(B^T A^T)^T`` so that
    the result is C-ordered without a copy.
    """
    if (A.ndim != 2 or B.ndim != 2 or A.dtype != np.float64 or B.dtype != np.float64
            or not A.size or not B.size):
        return np.matmul(A, B, out=out)
    a, ta = _fortran_view(A.T)
    b, tb = _fortran_view(B.T)
    if out is None:
        return dgemm(1.0, b, a, trans_a=tb, trans_b=ta).T
    # out^T is Fortran-ordered: BLAS writes the product there, no copy
    res = dgemm(1.0, b, a, beta=0.0, c=out.T, trans_a=tb, trans_b=ta, overwrite_c=1)
    if not np.shares_memory(res, out):  # pragma: no cover - f2py copied out^T
        out[...] = res.T
    return out


def _matmul(Phi, M):
    if sp.issparse(Phi):
        return np.asarray(Phi @ M)
    return gemm(np.asarray(Phi), np.ascontiguousarray(M, dtype=np.float64))


def penalty_diagonal(K, d, intercept, C, n, intercept_penalty=0.0):
    """Diagonal of the L2 penalty's Hessian on the scale of ``R``, shape ``(K * D,)``.

    The objective ``C sum_i s_i l_i + 1/2 ||W||^2 + 1/2 intercept_penalty ||b||^2``
    divided by ``C n`` penalises ``W`` by ``1 / (C n)``; ``C = inf`` means none.
    """
    lam = 0.0 if np.isinf(C) else 1.0 / (C * n)
    per_row = np.full(d, lam)
    if intercept:
        per_row = np.append(per_row, lam * intercept_penalty)
    return np.tile(per_row, K)


def objective_gradient(Phi, G, s, n, intercept, penalty, Theta):
    """Gradient of ``R(Theta) = (1/n) sum_i s_i l_i + 1/2 sum penalty * Theta**2``.

    Returns an array of shape ``(K, D)``.
    """
    Gs = G * s[:, None]
    grad_W = (np.asarray(Phi.T @ Gs) if sp.issparse(Phi) else gemm(np.asarray(Phi).T, Gs)).T / n
    parts = [grad_W]
    if intercept:
        parts.append(Gs.sum(axis=0)[:, None] / n)
    grad = np.hstack(parts)
    return grad + penalty.reshape(grad.shape) * Theta


def _weighted_gram(X, w, symmetric_psd):
    """``X^T diag(w) X`` for a dense or sparse chunk ``X``."""
    if sp.issparse(X):
        return np.asarray((X.T @ X.multiply(w[:, None])).todense())
    if symmetric_psd:
        Z = X * np.sqrt(w)[:, None]
        # Z is C-contiguous, so Z.T is Fortran-contiguous: no copy inside BLAS
        U = dsyrk(1.0, Z.T, trans=0)
        return np.triu(U) + np.triu(U, 1).T
    return X.T @ (X * w[:, None])


def hessian(features, X, A, s, n, intercept, penalty, chunk_elements=None):
    """The exact Hessian of ``R`` in the internal ``(K, D)`` layout.

    Parameters
    ----------
    features : feature map with ``transform``
    X : ndarray or sparse matrix of shape (n_samples, n_features)
        Training inputs; processed in chunks of rows.
    A : ndarray of shape (n_samples, K, K)
        Second derivatives of the loss w.r.t. the outputs.
    s : ndarray of shape (n_samples,)
        Effective sample weights.
    n : int
        Number of training points (the ``1/n`` of ``R``).
    intercept : bool
    penalty : ndarray of shape (K * D,)
        Diagonal of the penalty's Hessian (already on the scale of ``R``).

    Returns
    -------
    H : ndarray of shape (K * D, K * D)
    """
    K = A.shape[1]
    if K == 1 and not sp.issparse(X) and getattr(features, "is_identity", False):
        w_all = s * A[:, 0, 0]
        if np.all(w_all >= 0):
            H = _psd_gram_augmented(X, w_all, intercept, chunk_elements) / n
            H[np.diag_indices_from(H)] += penalty
            return H
    ks, ls = np.triu_indices(K)  # blocks (k, l) with k <= l; the rest by symmetry
    if K > 1:  # skip blocks that vanish (e.g. one-vs-rest losses are block-diagonal)
        nonzero = (ks == ls) | np.any(A[:, ks, ls] != 0, axis=0)
        ks, ls = ks[nonzero], ls[nonzero]
    n_rows = X.shape[0]
    acc = None
    for rows in row_chunks(n_rows, X.shape[1] * len(ks), chunk_elements):
        Phi = features.transform(X[rows])
        W = s[rows, None] * A[rows][:, ks, ls]  # (c, n_blocks)
        if sp.issparse(Phi) or K == 1:
            part = np.stack(
                [_gram_block(Phi, W[:, q], intercept, psd=(ks[q] == ls[q])) for q in range(len(ks))],
                axis=1,
            )
        else:
            # all blocks in one GEMM: Phi~^T [w_q * Phi~]_q, shape (D, n_blocks, D)
            Pt = augment(Phi, intercept)
            R = np.empty((Pt.shape[0], len(ks), Pt.shape[1]))  # C order: free reshape
            np.multiply(W[:, :, None], Pt[:, None, :], out=R)
            R = R.reshape(Pt.shape[0], -1)
            # scipy's BLAS (gemm), as the factorisation and solves that follow:
            # alternating numpy's pool with scipy's made this product and the
            # Cholesky 2-8x slower (W1)
            part = gemm(Pt.T, R).reshape(Pt.shape[1], len(ks), Pt.shape[1])
        acc = part if acc is None else acc + part
    D = acc.shape[0]
    H = np.zeros((K * D, K * D))
    for q, (k, l) in enumerate(zip(ks, ls)):
        B = acc[:, q, :] / n
        H[k * D : (k + 1) * D, l * D : (l + 1) * D] = B
        if l != k:
            H[l * D : (l + 1) * D, k * D : (k + 1) * D] = B.T
    H[np.diag_indices_from(H)] += penalty
    return H


def _psd_gram_augmented(X, w, intercept, chunk_elements=None):
    """``[X, 1]^T diag(w) [X, 1]`` for dense X and w >= 0, accumulated in place.

    One ``syrk`` per chunk adds into a single upper triangle (``beta=1``), so
    the cost per chunk is the product itself, not a fresh P x P array: this
    matters when the number of features is large.
    """
    d = X.shape[1]
    U = np.zeros((d, d), order="F")
    cross = np.zeros(d)
    total = 0.0
    for rows in row_chunks(X.shape[0], d, chunk_elements):
        Xc, wc = X[rows], w[rows]
        Z = np.asarray(Xc) * np.sqrt(wc)[:, None]
        U = dsyrk(1.0, Z.T, beta=1.0, c=U, trans=0, overwrite_c=1)
        # scipy's gemv too: numpy's right after scipy's syrk meets the other pool's
        # spinning threads (20,000 x 2,000: the whole Hessian took 1.9x the floor)
        cross = dgemv(1.0, np.asarray(Xc).T, wc, beta=1.0, y=cross, overwrite_y=1)
        total += wc.sum()
    # U's lower triangle is still zero: U + U^T doubles only the diagonal
    D = d + int(intercept)
    H = np.empty((D, D))
    np.add(U, U.T, out=H[:d, :d])
    H[np.arange(d), np.arange(d)] -= np.diag(U)
    if intercept:
        H[:d, d] = H[d, :d] = cross
        H[d, d] = total
    return H


def _gram_block(Phi, w, intercept, psd):
    """``Phi~^T diag(w) Phi~`` for one chunk and one weight vector."""
    Wg = _weighted_gram(Phi, w, symmetric_psd=psd and bool(np.all(w >= 0)))
    if not intercept:
        return Wg
    cross = np.asarray(Phi.T @ w).ravel()
    return np.block([[Wg, cross[:, None]], [cross[None, :], np.array([[w.sum()]])]])


def directional_gradients(Phi, G, S, intercept):
    """``grad l_i . S[:, j]`` for every sample ``i`` of a chunk and column ``j``.

    Parameters
    ----------
    Phi : ndarray or sparse matrix of shape (c, d)
        Features of a chunk of samples.
    G : ndarray of shape (c, K)
        Loss derivatives of those samples.
    S : ndarray of shape (K * D, m)
        Directions in parameter space (internal layout).

    Returns
    -------
    ndarray of shape (m, c)
    """
    c, K = G.shape
    m = S.shape[1]
    d = Phi.shape[1]
    D = d + int(intercept)
    S3 = S.reshape(K, D, m)
    SW = S3[:, :d, :].transpose(1, 0, 2).reshape(d, K * m)
    T = _matmul(Phi, SW).reshape(c, K, m)
    if intercept:
        T += S3[:, d, :][None, :, :]
    if K == 1:
        return (T[:, 0, :] * G).T
    return np.einsum("ck,ckm->mc", G, T, optimize=True)


class HessianOperator:
    """The Hessian of ``R`` (plus damping) as a linear operator, formed only on request
    (:meth:`matrix`, or :meth:`densify` when products with it are cheaper).

    ``H V = (1/n) sum_i s_i (A_i (x) phi~_i phi~_i^T) V + (pen + damping) V
    + c N N^T V`` for a block ``V`` of ``m`` vectors in the internal layout, in
    one pass over chunks of rows: two matrix products with the features per
    chunk, so the cost is O(nnz(Phi) K m). With sparse rows the chunks run on a
    thread pool, one per CPU (scipy's sparse products are single-threaded and
    release the GIL; dense ones are BLAS's, threaded already). ``N`` spans
    directions the objective ignores by construction (softmax shift invariance);
    adding ``c N N^T`` makes the operator positive definite without changing any
    solve against a right-hand side orthogonal to ``N``.

    Parameters
    ----------
    Phi : ndarray or sparse matrix of shape (n, d)
    A : ndarray of shape (n, K, K)
    s : ndarray of shape (n,)
    intercept : bool
    pen : ndarray of shape (K * D,)
    damping : float
    null_basis : ndarray of shape (K * D, r) or None
    """

    def __init__(self, Phi, A, s, intercept, pen, damping=0.0, null_basis=None):
        self.Phi, self.A, self.s = Phi, A, s
        self.n = Phi.shape[0]
        self.K = A.shape[1]
        self.d = Phi.shape[1]
        self.intercept = intercept
        self.D = self.d + int(intercept)
        self.P = self.K * self.D
        self.pen = pen
        self.damping = float(damping)
        self.N = null_basis
        self.dense = None  # H formed once (densify), when products with it are cheaper
        self.null_scale = 0.0
        if null_basis is not None:
            self.null_scale = max(float(np.mean(self._data_diagonal() + pen)) + damping,
                                  np.finfo(float).tiny)

    def _data_diagonal(self):
        """Diagonal of ``(1/n) sum_i s_i (A_i (x) phi~_i phi~_i^T)``."""
        K, D, d = self.K, self.D, self.d
        diag = np.zeros((K, D))
        Akk = self.A[:, np.arange(K), np.arange(K)] * self.s[:, None]  # (n, K)
        for rows in row_chunks(self.n, d if not sp.issparse(self.Phi) else K):
            Phi = self.Phi[rows]
            sq = Phi.multiply(Phi) if sp.issparse(Phi) else Phi * Phi
            diag[:, :d] += np.asarray(sq.T @ Akk[rows]).T
            if self.intercept:
                diag[:, d] += Akk[rows].sum(axis=0)
        return diag.ravel() / self.n

    def diagonal(self):
        """Diagonal of the operator (for a Jacobi preconditioner)."""
        out = self._data_diagonal() + self.pen + self.damping
        if self.N is not None:
            out = out + self.null_scale * np.sum(self.N**2, axis=1)
        return out

    def data_pass_cost(self):
        """Flops of one Hessian-vector product over the rows (per right-hand side)."""
        entries = self.Phi.nnz if sp.issparse(self.Phi) else self.n * self.d
        return 4 * entries * self.K + 2 * self.n * self.K * self.K

    def densify(self):
        """Form H (with damping and ``c N N^T``) once; products then cost ``2 P^2``."""
        if self.dense is None:
            self.dense = self.matrix(regularised=True)
        return self.dense

    def block_diagonal(self):
        """The ``K`` diagonal ``D x D`` blocks of the operator (one per output), shape
        ``(K, D, D)``: the coupling between outputs dropped, that between features
        kept (dense; built in one pass, ``K n D^2`` flops)."""
        K, D = self.K, self.D
        if self.dense is not None:
            return np.stack([self.dense[k * D:(k + 1) * D, k * D:(k + 1) * D]
                             for k in range(K)])
        blocks = np.stack([
            hessian(IdentityFeatures(), self.Phi, self.A[:, k:k + 1, k:k + 1], self.s, self.n,
                    self.intercept, np.zeros(D))
            for k in range(K)])
        diag = (self.pen + self.damping).reshape(K, D)
        blocks[:, np.arange(D), np.arange(D)] += diag
        if self.N is not None:
            N3 = self.N.reshape(K, D, -1)
            blocks += self.null_scale * np.einsum("kdr,ker->kde", N3, N3)
        return blocks

    def matvec(self, V, rows=None):
        """``H V`` for ``V`` of shape ``(P,)`` or ``(P, m)``.

        With ``rows`` (an index array) the data term is the average over those
        rows only -- the mini-batch Hessian of stochastic estimation.
        """
        V = np.asarray(V, dtype=np.float64)
        if rows is None and self.dense is not None:
            return self.dense @ V
        vec = V.ndim == 1
        V2 = V.reshape(self.P, -1)
        m = V2.shape[1]
        K, D, d = self.K, self.D, self.d
        V3 = V2.reshape(K, D, m)
        VW = V3[:, :d, :].transpose(1, 0, 2).reshape(d, K * m)
        idx = None if rows is None else np.asarray(rows)
        count = self.n if rows is None else len(idx)

        def chunk(part):
            """The chunk's ``(Phi^T Z, sum Z)``: its share of the data term."""
            sel = part if idx is None else idx[part]
            Phi = self.Phi[sel]
            U = np.asarray(Phi @ VW).reshape(-1, K, m)
            if self.intercept:
                U = U + V3[:, d, :][None, :, :]
            As = self.A[sel] * self.s[sel][:, None, None]
            if K == 1:
                Z = As[:, 0, 0][:, None, None] * U
            else:
                Z = np.einsum("ckl,clm->ckm", As, U, optimize=True)
            return np.asarray(Phi.T @ Z.reshape(-1, K * m)), Z.sum(axis=0)

        # slices of dense rows are views and sparse rows are cheap: only the
        # (c, K m) temporaries bound the chunk; fancy-indexed dense rows are copies
        width = K * m if (rows is None or sp.issparse(self.Phi)) else max(d, K * m)
        parts = list(row_chunks(count, width))
        if sp.issparse(self.Phi) and len(parts) == 1 and count >= 2 * SPARSE_THREAD_ROWS:
            parts = list(row_chunks(count, 1, -(-count // sparse_workers())))
        out = np.zeros((d, K * m))
        out_b = np.zeros((K, m))
        for part_out, part_b in map_chunks(chunk, parts, threads=sp.issparse(self.Phi)):
            out += part_out
            out_b += part_b
        HV = np.empty((K, D, m))
        HV[:, :d, :] = out.reshape(d, K, m).transpose(1, 0, 2)
        if self.intercept:
            HV[:, d, :] = out_b
        HV = HV.reshape(self.P, m) / count
        HV += (self.pen + self.damping)[:, None] * V2
        if self.N is not None:
            HV += self.null_scale * (self.N @ (self.N.T @ V2))
        return HV[:, 0] if vec else HV

    def matrix(self, regularised=True):
        """The dense matrix; with ``regularised``, plus damping and ``c N N^T``."""
        H = hessian(IdentityFeatures(), self.Phi, self.A, self.s, self.n, self.intercept,
                    self.pen)
        if regularised:
            H[np.diag_indices_from(H)] += self.damping
            if self.N is not None:
                H += self.null_scale * (self.N @ self.N.T)
        return H
