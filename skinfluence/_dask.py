"""Fit and explain on Dask arrays: every quantity is a sum over row blocks.

With ``X`` a ``dask.array`` (rows in chunks; one chunk along the columns) the
estimators fit by Newton's method where each iteration is one pass over the
blocks -- each block returns its loss, gradient and ``P x P`` Hessian
contribution, and only these small sums reach the client -- and the influence
methods return lazy dask arrays chunked like the training rows. Nothing
gathers the data onto one process. Dask is an optional extra
(``pip install 'skinfluence[dask]'``).
"""

import numpy as np

from .curvature import (
    ParameterLayout,
    directional_gradients,
    hessian,
    objective_gradient,
    output_derivatives,
    sample_gradients,
)
from .features import IdentityFeatures
from .solvers import DirectSolver

__all__ = ["is_dask", "fit_dask", "DaskState", "top_k", "most_influential"]


def is_dask(X):
    """True for a dask collection (without importing dask when it is absent)."""
    return type(X).__module__.startswith("dask.") and hasattr(X, "to_delayed")


def _blocks(X, y, sample_weight):
    """Aligned lists of delayed row blocks of X, y and the weights (or None)."""
    import dask.array as da

    if X.ndim != 2:
        raise ValueError(f"X must be 2-D; got {X.ndim} dimensions.")
    if len(X.chunks[1]) != 1:
        X = X.rechunk({1: -1})
    rows = X.chunks[0]
    y = da.asarray(y).rechunk((rows,))
    xb = X.to_delayed()[:, 0].tolist()
    yb = y.to_delayed().tolist()
    if sample_weight is None:
        wb = [None] * len(xb)
    else:
        wb = da.asarray(sample_weight, dtype=float).rechunk((rows,)).to_delayed().tolist()
    return list(zip(xb, yb, wb)), rows


class _Targets:
    """Per-block encoding: targets and effective weights from the raw labels."""

    def __init__(self, loss, classes, class_weight_vector):
        self.loss, self.classes, self.cw = loss, classes, class_weight_vector

    def __call__(self, y, w):
        idx = np.searchsorted(self.classes, y)
        if np.any(idx >= len(self.classes)) or np.any(self.classes[np.minimum(idx, len(self.classes) - 1)] != y):
            raise ValueError("a block contains labels outside classes_")
        Y = self.loss.encode(idx, len(self.classes))
        s = np.ones(len(y)) if w is None else np.asarray(w, dtype=float)
        if self.cw is not None:
            s = s * self.cw[idx]
        return Y, s


def _block_terms(X, y, w, Theta, loss, targets, intercept):
    X = np.asarray(X, dtype=np.float64)
    Y, s = targets(np.asarray(y), w)
    d = X.shape[1]
    F = X @ Theta[:, :d].T + (Theta[:, d] if intercept else 0.0)
    G, A = output_derivatives(loss, Y, F)
    K, D = Theta.shape
    zero = np.zeros(K * D)
    value = float(np.dot(s, loss.value(Y, F)))
    grad = objective_gradient(X, G, s, 1, intercept, zero, Theta)
    H = hessian(IdentityFeatures(), X, A, s, 1, intercept, zero)
    return value, grad, H, float(s.sum())


def _sum_pass(blocks, Theta, loss, targets, intercept):
    import dask

    parts = dask.compute(*[
        dask.delayed(_block_terms)(xb, yb, wb, Theta, loss, targets, intercept)
        for xb, yb, wb in blocks
    ])
    value = sum(p[0] for p in parts)
    grad = sum(p[1] for p in parts)
    H = sum(p[2] for p in parts)
    return value, grad, H


def fit_dask(X, y, sample_weight, loss, targets, intercept, pen, Theta0, n, tol, max_iter):
    """Newton's method where each evaluation is one blockwise pass (value, grad, H)."""
    from ._optimize import newton_minimize

    blocks, _ = _blocks(X, y, sample_weight)

    def evaluate(Theta):
        with np.errstate(invalid="ignore"):  # a NaN in the data: said below, once
            value, grad, H = _sum_pass(blocks, Theta, loss, targets, intercept)
        if not (np.isfinite(value) and np.all(np.isfinite(grad)) and np.all(np.isfinite(H))):
            # read in the same pass: a NaN or inf in X, y or sample_weight (in memory,
            # scikit-learn's check_array says so before the fit)
            raise ValueError(
                "Input X (or y, or sample_weight) contains NaN or infinity: the blockwise "
                "pass over the dask array met a non-finite value. Impute or drop those "
                "rows first, e.g. X[da.isfinite(X).all(axis=1)].")
        value = value / n + 0.5 * np.dot(pen, Theta.ravel() ** 2)
        grad = grad / n + pen.reshape(Theta.shape) * Theta
        H = H / n
        H[np.diag_indices_from(H)] += pen
        return value, grad, (lambda H=H: H)

    return newton_minimize(evaluate, Theta0, tol=tol, max_iter=max_iter)


class DaskState(ParameterLayout):
    """What the influence methods need for a model fitted on a dask array."""

    is_dask = True

    def __init__(self, est, model, targets, pen, null_basis_fn):
        self.model = model
        self._set_layout(model)
        Theta = self.Theta
        self.targets = targets
        self.blocks, self.rows = _blocks(est._fit_X, est._fit_y, est._fit_sample_weight)
        self.n = est._fit_X.shape[0]
        _, grad, H = _sum_pass(self.blocks, Theta, model.loss, targets, self.intercept)
        H = H / self.n
        H[np.diag_indices_from(H)] += pen
        self.H = H
        self.grad = (grad / self.n + pen.reshape(Theta.shape) * Theta).ravel()
        Hs = H.copy()
        damping = float(getattr(est, "damping", 0.0))
        Hs[np.diag_indices_from(Hs)] += damping
        N = null_basis_fn(pen)
        if N is not None:
            Hs += max(float(np.mean(np.diag(Hs))), np.finfo(float).tiny) * (N @ N.T)
        self.solver = DirectSolver(Hs, overwrite=True)

    def hessian(self):
        return self.H

    def removal_step_norm(self, rows=32):
        """The root mean square of ``(s_i / n) ||H^-1 grad l_i||`` over the first rows
        of the first block: the scale a fit's Newton step is judged against."""
        import dask

        xb, yb, wb = dask.compute(*self.blocks[0])
        Xb = np.asarray(xb, dtype=np.float64)[:rows]
        Y, s = self.targets(np.asarray(yb)[:rows], None if wb is None else wb[:rows])
        d = self.d
        F = Xb @ self.Theta[:, :d].T + (self.Theta[:, d] if self.intercept else 0.0)
        G = output_derivatives(self.model.loss, Y, F, order=1)
        S = self.solver.solve(sample_gradients(Xb, G, self.intercept).T)
        steps = np.linalg.norm(S, axis=0) * s / self.n
        return float(np.sqrt(np.mean(steps**2))) if steps.size else np.nan

    def _per_block(self, fn, out_shape, dtype=float):
        """A dask array concatenated from ``fn(X_b, G_b, s_b)`` for every block."""
        import dask
        import dask.array as da

        model, intercept, Theta, d = self.model, self.intercept, self.Theta, self.d
        targets = self.targets

        def run(Xb, yb, wb):
            Xb = np.asarray(Xb, dtype=np.float64)
            Y, s = targets(np.asarray(yb), wb)
            F = Xb @ Theta[:, :d].T + (Theta[:, d] if intercept else 0.0)
            G = output_derivatives(model.loss, Y, F, order=1)
            return fn(Xb, G, s)

        parts = [
            da.from_delayed(dask.delayed(run)(xb, yb, wb), shape=out_shape(r), dtype=dtype)
            for (xb, yb, wb), r in zip(self.blocks, self.rows)
        ]
        return parts

    def influence_on_loss(self, Gt, kind):
        import dask.array as da

        S = self.solver.solve(Gt.T)
        m, n, intercept = S.shape[1], self.n, self.intercept

        def fn(Xb, G, s):
            out = -directional_gradients(Xb, G, S, intercept)
            return out * (-s / n)[None, :] if kind == "remove" else out

        return da.concatenate(self._per_block(fn, lambda r: (m, r)), axis=1)

    def self_influence(self, kind):
        import dask.array as da

        solver, intercept, n, K = self.solver, self.intercept, self.n, self.K

        def fn(Xb, G, s):
            if K == 1:
                out = -G[:, 0] ** 2 * solver.quad_augmented(Xb, intercept)
            else:
                V = solver.half_solve(sample_gradients(Xb, G, intercept).T)
                out = -np.einsum("pc,pc->c", V, V)
            return out * (-s / n) if kind == "remove" else out

        return da.concatenate(self._per_block(fn, lambda r: (r,)), axis=0)


def top_k(values, k=100, *, largest=True):
    """Indices and values of the ``k`` largest (or smallest) entries of a 1-D array.

    Works blockwise on a dask array (``dask.array.argtopk``: each block keeps its
    own top ``k``, never the whole result); plain numpy arrays work too.

    Returns
    -------
    indices, values : ndarrays of shape (k,), best first
    """
    if getattr(values, "ndim", np.ndim(values)) != 1:
        raise ValueError(f"top_k takes a 1-D array (one value per row); got shape "
                         f"{getattr(values, 'shape', np.shape(values))}. Sum or pick a row "
                         "first, e.g. influence.sum(axis=0).")
    if is_dask(values):
        import dask
        import dask.array as da

        idx = da.argtopk(values, k if largest else -k)
        idx = np.asarray(idx.compute())
        vals = np.asarray(dask.compute(values[np.sort(idx)])[0])
        vals = vals[np.argsort(np.argsort(idx))]
    else:
        values = np.asarray(values)
        idx = np.argsort(-values if largest else values, kind="stable")[:k]
        vals = values[idx]
    order = np.argsort(-vals if largest else vals, kind="stable")
    return idx[order], vals[order]


def most_influential(fitted, X_test=None, y_test=None, *, k=100, which=None,
                     as_frame=False):
    """The ``k`` most self-influential, harmful or helpful training rows.

    ``which="self_influence"``: most negative ``self_influence()`` first (the
    rows a label audit checks first). ``"harmful"`` / ``"helpful"``: by the
    first-order change of the total loss of ``(X_test, y_test)`` when the row is
    removed (most negative = most harmful). On a model fitted on a dask array
    everything stays blockwise: only ``k`` candidates per block reach the client.

    Parameters
    ----------
    fitted : fitted skinfluence estimator, Pipeline, search or Explanation
    X_test, y_test : raw test rows and labels, for ``"harmful"`` / ``"helpful"``
    k : int, default=100
    which : {"self_influence", "harmful", "helpful"} or None, default=None
        ``None``: ``"harmful"`` when test rows are given, else ``"self_influence"``.
    as_frame : bool, default=False
        Return a pandas Series of the values, indexed by the rows' labels (the
        training DataFrame's index, or ``y``'s; else positions), best first.

    Returns
    -------
    indices : ndarray of shape (k,)
        Training row positions (fit order), best first.
    values : ndarray of shape (k,)
    """
    from ._frames import label_vector, take_index
    from .explain import as_explanation

    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}.")
    if which is None:
        which = "self_influence" if X_test is None and y_test is None else "harmful"
    if which not in ("self_influence", "harmful", "helpful"):
        raise ValueError(f"which must be 'self_influence', 'harmful' or 'helpful'; got {which!r}.")
    ex = as_explanation(fitted)
    k = min(int(k), ex.n_train_)
    if which == "self_influence":
        if X_test is not None or y_test is not None:
            raise ValueError("which='self_influence' ranks the training rows by themselves; "
                             "drop X_test and y_test, or ask for which='harmful' / 'helpful'.")
        idx, vals = top_k(ex.self_influence(), k, largest=False)
    else:
        if X_test is None or y_test is None:
            raise ValueError(f"which={which!r} needs X_test and y_test.")
        change = ex.influence_on_loss(X_test, y_test, kind="remove").sum(axis=0)
        idx, vals = top_k(change, k, largest=(which == "helpful"))
    if not as_frame:
        return idx, vals
    name = which if which == "self_influence" else "change_if_removed"
    series = label_vector(vals, None, name)
    series.index = take_index(ex.train_index_, idx)
    return series
