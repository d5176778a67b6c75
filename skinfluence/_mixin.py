"""InfluenceMixin: the one place where loss, features, penalty and solver meet.

An estimator opts in by inheriting from :class:`InfluenceMixin` (before its
scikit-learn base class) and implementing:

``_influence_model()``
    returns an :class:`InfluenceModel` describing its fitted objective: per-sample
    loss, feature map, fitted coefficients and intercept, and the L2 penalty.
``fit``
    calls ``self._remember_training_data(X, y_index_or_targets, s)`` after fitting,
    with the validated training inputs, the encoded targets and the effective
    sample weights ``s_i = sample_weight_i * class_weight[y_i]``.

Optionally ``_influence_targets(y)`` (how to encode test targets; the default
handles classifiers through ``classes_``).

Everything else -- derivatives, Hessian, solves, chunking, the influence
quantities and their validation -- lives here. Conventions are those of
``DESIGN.md`` section 2: the empirical risk is
``R(theta) = (1/n) sum_i s_i l_i(theta) + 1/(2 C n) ||W||^2`` and
``H = grad^2 R(theta_hat) + damping * I``.
"""

import copy
import functools
import warnings
from dataclasses import dataclass

import autograd.numpy as anp
import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils._param_validation import validate_parameter_constraints
from sklearn.utils.validation import (
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from ._utils import OncePerCall, once_per_call, user_stacklevel
from .curvature import (
    CHUNK_ELEMENTS,
    HessianOperator,
    ParameterLayout,
    augment,
    directional_gradients,
    gemm,
    gradients_times,
    objective_gradient,
    output_derivatives,
    penalty_diagonal,
    row_chunks,
    sample_gradients,
)
from .exceptions import DampingWarning, SingularHessianError, StationarityWarning
from ._frames import (
    check_test_rows,
    index_of,
    label_cube,
    label_matrix,
    label_predictions,
    label_vector,
    outputs_of,
    param_names,
    positions_of,
    target_columns,
)
from ._dask import is_dask
from .features import IdentityFeatures
from . import _newton
from ._newton import LEVERAGE_ONE_TOL, NEWTON_CHUNK_ELEMENTS
from ._optimize import _outputs as outputs_at
from .solvers import (
    ConjugateGradient,
    Direct,
    DirectSolver,
    _lanczos_bounds,
    factoring_pays,
    resolve_solver,
)

__all__ = ["InfluenceMixin", "InfluenceModel", "StationarityReport"]

#: Parameters that may change after fit without a refit: the influence settings
#: (read at use) and the optimiser's settings (they do not define the objective).
INFLUENCE_PARAMS = frozenset({"damping", "influence_solver", "influence_t"})
NOT_OBJECTIVE_PARAMS = INFLUENCE_PARAMS | frozenset({
    "estimator", "tol", "max_iter", "warm_start", "verbose", "n_jobs", "copy_X", "dual",
    "random_state",
})


def _same_setting(a, b):
    """Whether two parameter values are the same setting (``1 == 1.0``; arrays and
    objects by value, else by ``repr``)."""
    try:
        if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
            return np.shape(a) == np.shape(b) and bool(np.all(np.asarray(a) == np.asarray(b)))
        same = a == b
        if isinstance(same, (bool, np.bool_)):
            return bool(same)
    except (TypeError, ValueError):
        pass
    return repr(a) == repr(b)


@functools.lru_cache(maxsize=None)
def _param_names(cls, init):
    """scikit-learn's parameter names of ``cls`` (read from ``init``'s signature)."""
    from sklearn.base import BaseEstimator

    return BaseEstimator._get_param_names.__func__(cls)


#: A fit whose objective gradient is below this fraction of one training row's
#: typical contribution ``s_i g_i / n`` is stationary for the refitting tools: the
#: optimisation error is a millionth of what removing one row changes.
REFIT_STATIONARY = 1e-6


def training_features(model, X):
    """The training rows as the model's linear part sees them: ``X`` itself for the
    identity map, else the feature map applied once, over chunks of rows."""
    if getattr(model.features, "is_identity", False):
        return X
    return np.vstack([model.features.transform(X[rows])
                      for rows in row_chunks(X.shape[0], X.shape[1])])


def _stationary(est):
    """Whether a fitted estimator sits at its optimum (``REFIT_STATIONARY``): one pass
    over its rows for the gradient, no Hessian."""
    X, Y, s = est._fit_X, est._fit_Y, est._fit_s
    if is_dask(X):  # a pass over blocks: the optimiser's own word stands
        return False
    try:
        model = est._influence_model()
        layout = ParameterLayout()
        layout._set_layout(model)
        n = X.shape[0]
        Phi = training_features(model, X)
        F = InfluenceMixin._outputs(model, Phi, IdentityFeatures())
        G = output_derivatives(model.loss, Y, F, order=1)  # no curvature needed
        pen = _InfluenceState.penalty_diagonal(model, n)
        grad = objective_gradient(Phi, G, s, n, layout.intercept, pen, layout.Theta)
        sq = Phi.multiply(Phi).sum(axis=1) if sp.issparse(Phi) else np.einsum(
            "ij,ij->i", Phi, Phi)
        rows = s * np.linalg.norm(G, axis=1) * np.sqrt(np.ravel(sq) + layout.intercept)
        typical = np.sqrt(np.mean(rows**2)) / n
    except (ValueError, FloatingPointError):  # out of the loss's domain: no optimum
        return False
    return bool(np.isfinite(grad).all()
                and np.linalg.norm(grad) <= REFIT_STATIONARY * typical)


def refit_judged(fit, result_of=None):
    """``fit()`` (a refit for a tool), then ``result_of`` its result (default: the
    result itself), with the optimiser's ConvergenceWarnings dropped when that
    InfluenceMixin result is stationary all the same: an optimiser warm-started next to
    the optimum often cannot improve on it in floating point and says so ("lbfgs
    failed to converge after 0 iterations: ABNORMAL", once per refit of an attack).
    Other warnings pass on, at the user's line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted = fit()
    result = fitted if result_of is None else result_of(fitted)
    if any(issubclass(w.category, ConvergenceWarning) for w in caught) \
            and _stationary(result):
        caught = [w for w in caught if not issubclass(w.category, ConvergenceWarning)]
    for w in caught:
        warnings.warn(w.message, w.category, stacklevel=user_stacklevel())
    return result


#: Largest per-row second derivative below which an unpenalised fit has run off
#: to infinity (separable classes): influence is refused.
SATURATED_CURVATURE = 1e-10

#: Estimated relative error of influence above which the fit is reported as not
#: stationary (``StationarityReport.relative_error``).
STATIONARITY_ERROR_WARN = 1e-2

#: ``stationarity().ratio`` below which influence is taken as undistorted outright.
STATIONARITY_RATIO_WARN = 0.1

#: Sampled training rows behind the estimate of ``relative_error``.
STATIONARITY_ERROR_ROWS = 200


@dataclass
class InfluenceModel:
    """What an estimator tells the mixin about its fitted objective.

    The objective is ``C * sum_i s_i loss(y_i, f_i) + 1/2 ||W||^2
    + 1/2 * intercept_penalty * ||b||^2`` with ``f = features(x) W^T + b``.

    Attributes
    ----------
    loss : Loss
    features : feature map with ``transform(X)``
    coef : ndarray of shape (K, d)
    intercept : ndarray of shape (K,) or None
        ``None`` when the model has no intercept parameter.
    C : float
        Inverse regularisation strength; ``np.inf`` for no penalty.
    intercept_penalty : float
        L2 weight on the intercept relative to ``W`` (0: unpenalised).
    penalty_share : bool
        The estimator's objective is normalised by the total sample weight
        (scikit-learn's GLMs: ``(1/sum s) sum_i s_i l_i + alpha/2 ||W||^2``), so
        each training row carries the share ``s_i / sum s`` of the penalty:
        removing or up-weighting a row changes the penalty too. The per-row term
        whose weight is perturbed is then ``r_i = l_i + ||W||^2 / (2 C sum s)``
        (see :meth:`_InfluenceState.train_gradients`); the test loss is still
        ``l``. False (the default): the penalty is fixed, as in ``C sum s_i l_i
        + 1/2 ||W||^2``.
    """

    loss: object
    features: object
    coef: np.ndarray
    intercept: object
    C: float
    intercept_penalty: float = 0.0
    penalty_share: bool = False


@dataclass(frozen=True)
class StationarityReport:
    """How close the fitted parameters are to the optimum of the objective.

    Attributes
    ----------
    gradient_norm : float
        ``||grad R(theta_hat)||``, with ``R`` the objective on the paper's scale.
    newton_step_norm : float
        ``||H^{-1} grad R(theta_hat)||``: the estimated distance from
        ``theta_hat`` to the exact optimum.
    removal_step_norm : float
        The root mean square over (up to 32; 16 with an iterative solver; the
        first 32 rows of the first block on a dask array) sampled training
        points of ``(s_i/n) ||H^{-1} grad l_i||``: how far removing one training
        point typically moves the parameters.
    ratio : float
        ``newton_step_norm / removal_step_norm``: the optimisation error against
        the parameter change influence predicts for one removal. At most 0.1,
        influence is taken as undistorted without further work. 0 when the
        Newton step is within rounding of the parameters (64 eps ||theta||):
        the fit is as exact as float64 holds it.
    relative_error : float
        Above that: the estimated relative error of the influence quantities
        due to the optimisation error -- influence on the parameters and
        self-influence of up to 200 sampled rows, recomputed after one Newton
        step towards the optimum. A :class:`~skinfluence.StationarityWarning`
        is issued when it exceeds 1% (e.g. scikit-learn's defaults: 3e-4 on the
        ``fair`` data, no warning; 1.1 on raw breast_cancer, a warning). NaN when
        it was not estimated: ``ratio <= 0.1`` (no estimate needed), or an
        iterative solver (no factor to recompute with).
    """

    gradient_norm: float
    newton_step_norm: float
    removal_step_norm: float
    ratio: float
    relative_error: float = float("nan")

    @property
    def is_stationary(self):
        """True when influence is not distorted by more than 1% (see ``relative_error``).

        When ``ratio <= 0.1`` the fit is taken as stationary outright; otherwise
        the estimated ``relative_error`` decides (for the direct solver; with
        iterative solvers ``ratio`` alone).
        """
        if self.ratio <= STATIONARITY_RATIO_WARN:
            return True
        if np.isfinite(self.relative_error) and self.relative_error > 0:
            return bool(self.relative_error <= STATIONARITY_ERROR_WARN)
        return False


def null_directions(model, pen, K, D):
    """Orthonormal basis (P, r) of the directions the objective ignores."""
    if not (model.loss.shift_invariant and K > 1):
        return None
    cols = []
    for j in range(D):
        # adding one constant to column j of every class's parameters
        if np.all(pen.reshape(K, D)[:, j] == 0):
            v = np.zeros((K, D))
            v[:, j] = 1.0 / np.sqrt(K)
            cols.append(v.ravel())
    return np.array(cols).T if cols else None


def available_memory():
    """Bytes of memory available to this process (Linux ``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    try:  # pragma: no cover - other POSIX systems
        import os

        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return None


#: Largest magnitude accepted in the rows: squares and products of larger values
#: overflow float64 (about 1.3e154 squared).
MAX_MAGNITUDE = 1e150


def check_magnitude(X, what="X"):
    """Refuse values whose squares overflow float64 (NaN is refused by validation)."""
    if is_dask(X):
        return
    largest = max((_largest(v) for v in _float_blocks(X)), default=0.0)
    if largest > MAX_MAGNITUDE:
        raise ValueError(
            f"{what} contains values larger than {MAX_MAGNITUDE:.0e} in magnitude (up to "
            f"{largest:.1e}): their squares overflow float64. Rescale "
            f"{'the features (e.g. StandardScaler)' if what.startswith('X') else what} or "
            "fix the data."
        )


def _float_blocks(X):
    """The float arrays holding ``X``'s numbers, without copying a table into one array."""
    if sp.issparse(X):
        if X.format in ("csr", "csc", "coo", "bsr"):
            yield X.data  # other formats are converted (and checked) after validation
        return
    if isinstance(X, np.ndarray):
        yield X
        return
    if hasattr(X, "columns") and hasattr(X, "iloc"):  # a DataFrame: column by column
        for j in range(X.shape[1]):
            column = np.asarray(X.iloc[:, j])
            if column.dtype.kind == "f":
                yield column
        return
    try:  # lists and the like: validation converts them anyway
        yield np.asarray(X)
    except (TypeError, ValueError):
        return  # ragged: validation refuses it with its own message


def _largest(values):
    if values.dtype.kind != "f" or not values.size:
        return 0.0  # integers cannot overflow here; strings, complex: validation refuses
    with np.errstate(invalid="ignore"):
        return max(abs(float(np.nanmax(values))), abs(float(np.nanmin(values))))


def check_labels(y, what="y"):
    """Refuse missing class labels (None / NaN) before scikit-learn sorts them."""
    if y is None:
        return  # the estimator says that y is required
    values = np.asarray(y)
    if values.dtype == object:
        # None, and NaN (the one value unequal to itself), compared in C, not a loop
        missing = int(np.count_nonzero(np.equal(values, None) | (values != values)))
        if missing:
            raise ValueError(f"{what} contains {missing} missing label(s) (None or NaN); drop "
                             "those rows or give them their class.")


def check_outputs(F, loss=None):
    """The model's outputs on some rows, refused when they overflow float64 or lie
    outside the loss's domain (e.g. a non-positive Tweedie mean)."""
    if not np.all(np.isfinite(F)):
        raise ValueError(
            "The model's outputs on these rows overflow float64 (the features are too large "
            "for its coefficients); rescale the features or fix the data."
        )
    if loss is not None:
        loss.check_outputs(F)
    return F


def _check_newton_finite(out, flat, what="training rows"):
    """Refuse Newton answers that overflowed (NaN is only for leverage-1 rows)."""
    bad = ~np.isfinite(out)
    bad[..., flat] = False
    if bad.any():
        cols = np.flatnonzero(bad.reshape(-1, bad.shape[-1]).any(axis=0))
        raise ValueError(
            f"kind='newton' moves the model's outputs out of float64's range (or out of "
            f"the loss's domain) for {cols.size} {what} (positions {cols[:5].tolist()}...): "
            "one Newton step is not a usable estimate there. Use kind='remove', or "
            "rescale the features."
        )


def _newton_done(state, out):
    """Refuse overflowed Newton answers (training rows last); warn about rows of
    leverage 1, whose answers are NaN."""
    flat = _newton.unidentified(state)
    _check_newton_finite(out, flat)
    _warn_unidentified(flat, "training rows have")


#: Answers up to this size are not checked against the available memory.
SMALL_ANSWER_BYTES = 64 * 2**20


def check_answer_size(shape, what):
    """Refuse, before any work, an answer of float64 ``shape`` that cannot fit in memory."""
    need = 8 * int(np.prod(shape, dtype=np.float64))
    if need <= SMALL_ANSWER_BYTES:  # no need to read the system's memory
        return
    have = available_memory()
    if have is not None and need > have:
        raise MemoryError(
            f"{what} would return an array of shape {tuple(int(v) for v in shape)}: "
            f"{need / 2**30:.1f} GiB, but {have / 2**30:.1f} GiB of memory is available. Ask "
            "for fewer test rows at a time, reduce it as you go (aggregate_influence, "
            "most_influential / top_k keep the k largest), or fit on a dask array (lazy, "
            "blockwise results)."
        )


#: ``damping`` above this share of the smallest curvature is reported.
DAMPING_SHARE_WARN = 0.01


def _check_damping_share(solver, damping, P, op=None):
    """Warn when ``damping`` makes up a material share of H's smallest curvature.

    ``lambda_min(H + damping I)`` from a few inverse power iterations on the
    factor already computed (``P^2`` each); without a factor (CG, LiSSA), from
    Lanczos on the products (``op``), whose smallest Ritz value lies above it, so
    that the share is never overstated.
    """
    if isinstance(solver, DirectSolver):
        v = np.random.default_rng(0).standard_normal(P)
        for _ in range(30):
            w = solver.solve(v / np.linalg.norm(v))
            v = w
        lam_min = 1.0 / np.linalg.norm(solver.solve(v / np.linalg.norm(v)))
    else:
        lam_min = _lanczos_bounds(op.matvec, P)[0]
    share = damping / lam_min
    if share > DAMPING_SHARE_WARN:
        warnings.warn(
            f"damping={damping:g} is {share:.0%} of the smallest curvature of H + damping*I "
            f"({lam_min:.2e}): along that direction influence differs from the undamped "
            "answer by up to that much (and without damping it may not exist). Prefer a "
            "penalty (a smaller C, a larger alpha) if the model should be regularised.",
            DampingWarning,
            stacklevel=user_stacklevel(),
        )


def _warn_unidentified(mask, what):
    if np.any(mask):
        warnings.warn(
            f"{int(mask.sum())} {what} leverage 1: without them the objective is flat along "
            f"some direction, so there is no unique refit and kind='newton' is NaN there "
            f"(positions {np.flatnonzero(mask)[:5].tolist()}...). Add a penalty or damping "
            "if a finite answer is wanted.",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )


def _private(X, X_raw):
    """``X`` itself when validation already copied the caller's data, else a copy.

    Costs one copy of X at fit when the caller's float64 array (or DataFrame
    block, or CSR matrix) was used as it is.
    """
    if X_raw is None:
        return X
    if sp.issparse(X):
        raw = X_raw if sp.issparse(X_raw) else None
        shared = raw is not None and any(
            np.may_share_memory(getattr(X, a), getattr(raw, a, None))
            for a in ("data", "indices", "indptr") if getattr(raw, a, None) is not None)
        return X.copy() if shared else X
    if not (isinstance(X_raw, np.ndarray) or hasattr(X_raw, "iloc")):
        return X  # lists and the like were converted into a new array
    shared = any(np.may_share_memory(X, block) for block in _float_blocks(X_raw)
                 if block.dtype == X.dtype)
    return np.array(X, copy=True) if shared else X


def _group_positions(group, n, index=None):
    """Positions of a non-empty group of training rows (positions, labels or a mask)."""
    g = positions_of(group, index, n, "group rows")
    if g.size == 0:
        raise ValueError("A group of training rows is empty; every group needs at least one row.")
    return np.unique(g)


def _output_blocks(Phi_t, K):
    """``U = [I_K (x) phi~_i]`` for rows ``phi~_i`` of ``Phi_t``: shape (K D, rows * K).

    Column ``(i, k)`` is ``e_k (x) phi~_i``, the parameter direction through
    which output ``k`` of row ``i`` moves (internal layout).
    """
    rows, D = Phi_t.shape
    U = np.zeros((K, D, rows, K))
    for k in range(K):  # a loop over outputs
        U[k, :, :, k] = Phi_t.T
    return U.reshape(K * D, rows * K)


class _InfluenceState(ParameterLayout):
    """Everything derived once per fit (and per influence setting)."""

    def __init__(self, est):
        model = est._influence_model()
        X, Y, s = est._fit_X, est._fit_Y, est._fit_s
        n = X.shape[0]
        self.model = model
        self._set_layout(model)
        Theta = self.Theta
        self.n = n
        self.s = s

        # Training rows as the linear part sees them. A non-trivial feature map
        # (e.g. RBF) is applied once here rather than in every pass below.
        self.Phi = training_features(model, X)
        self.identity = IdentityFeatures()
        F = est._outputs(model, self.Phi, self.identity)
        try:  # a fit that ran out of the family's domain (identity link) is no optimum
            check_outputs(F, model.loss)
        except ValueError as exc:
            raise ValueError(
                f"At the training rows -- the fit itself left the loss's range, so it is no "
                f"optimum to explain (an extreme target, unscaled features or a link that "
                f"allows invalid means): {exc}") from None
        self.F = F  # the training rows' outputs at the fit, (n, K)
        self.G, A = output_derivatives(model.loss, Y, F)
        damping = float(getattr(est, "damping", 0.0))
        kept = s > 0
        if np.isinf(model.C) and damping == 0 and model.loss.separated(Y[kept], F[kept]):
            raise SingularHessianError(
                "The fitted model classifies every training row correctly and there is no "
                "penalty (C=np.inf): the classes are separable, so the objective keeps "
                "falling as the coefficients grow, the fit has no finite optimum and "
                "influence is not defined (the numbers would depend on where the "
                "optimiser stopped). Use a finite C, or set `damping` if you must."
            )
        if np.isinf(model.C) and damping == 0 and n and np.abs(A).max() < SATURATED_CURVATURE:
            # every row's loss is flat at the fit: with no penalty the classes are
            # separated and the parameters ran off towards infinity (no optimum)
            raise SingularHessianError(
                "The loss has no curvature left at any training row (largest second "
                f"derivative {np.abs(A).max():.1e}): with no penalty (C=np.inf) the classes "
                "are separable, the fit has no finite optimum and influence is not defined. "
                "Use a finite C, or set `damping` if you must."
            )
        absent = model.loss.absent_classes(Y[kept]) if kept.any() else []
        if absent and model.intercept is not None and model.intercept_penalty == 0 \
                and damping == 0:
            classes = getattr(est, "classes_", None)
            names = (np.asarray(absent) if classes is None else
                     np.asarray(classes)[absent]).tolist()[:3]
            raise SingularHessianError(
                f"No training row with positive weight has class {', '.join(map(repr, names))}"
                ": with an unpenalised intercept the objective keeps falling as that "
                "class's intercept moves away, so the fit has no finite optimum and "
                "influence is not defined (the numbers would grow as `tol` shrinks). Give "
                "the class some weight, leave it out of y, or set `damping` if you must."
            )
        pen = self.penalty_diagonal(model, n)
        # the gradient of each row's share of the penalty (None: the penalty is fixed)
        self.share = None
        if model.penalty_share and np.any(pen) and s.sum() > 0:
            self.share = self.share_at(pen, Theta)

        # Directions along which the objective is flat by construction
        # (softmax shift invariance): every gradient is orthogonal to them, so the
        # operator adds c N N^T and solves act on their complement (DESIGN.md §2).
        N = self.null_directions(model, pen)
        self.op = HessianOperator(self.Phi, A, s, self.intercept, pen, damping, N)
        spec = getattr(est, "influence_solver", "auto")
        self.auto_solver = isinstance(spec, str) and spec == "auto"
        self.solver = resolve_solver(spec, self.P).build(self.op)
        if damping > 0:
            _check_damping_share(self.solver, damping, self.P, self.op)
        self.grad = objective_gradient(
            self.Phi, self.G, s, n, self.intercept, pen, Theta
        ).ravel()
        self.stationarity = self._stationarity(est)

    def hessian(self):
        """``grad^2 R`` without damping (formed once, on request; read-only)."""
        if getattr(self, "_hessian", None) is None:
            if isinstance(self.solver, DirectSolver):  # from the factor: no pass over rows
                H = self.solver.matrix()
                H[np.diag_indices_from(H)] -= self.op.damping
                if self.op.N is not None:
                    H -= self.op.null_scale * (self.op.N @ self.op.N.T)
            else:
                H = self.op.matrix(regularised=False)
            self._hessian = H
            self._hessian.flags.writeable = False
        return self._hessian

    def share_at(self, pen, Theta):
        """``grad ||W||^2 / (2 C sum s)``: one unit of weight's share of the penalty."""
        return (pen * Theta.ravel()) * (self.n / self.s.sum())

    def train_gradients(self, rows, G=None, share=None):
        """Gradients of the training rows' perturbed terms, ``grad l_i`` plus their
        share of the penalty when the estimator normalises by the total weight
        (:class:`InfluenceModel`), shape ``(len(rows), P)``."""
        G = self.G if G is None else G
        Gi = sample_gradients(self.Phi[rows], G[rows], self.intercept)
        share = self.share if share is None else share
        if share is not None:
            Gi += share[None, :]
        return Gi

    @property
    def share_solved(self):
        """``H^{-1}`` applied to the penalty share (cached)."""
        if "_share_solved" not in self.__dict__:
            self._share_solved = self.solver.solve(self.share[:, None])[:, 0]
        return self._share_solved

    def inverse_theta_columns(self):
        """``-H^{-1}`` with its columns in theta order (direct solver; cached), so that
        ``G @ it`` is ``-(H^{-1} G^T)^T`` already ordered as ``coef_, intercept_`` and
        signed as ``influence_on_params`` (no pass over the n x P answer to negate it)."""
        if getattr(self, "_inverse_theta", None) is None:
            Hinv = self.solver.inverse()
            self._inverse_theta = -(Hinv if self.perm_is_identity else Hinv[:, self.perm])
        return self._inverse_theta

    def solve_output_blocks(self, Phi_t, rows_first=False):
        """``H^{-1} (e_k (x) phi~_i)`` for every row ``i`` of ``Phi_t`` and output
        ``k``: shape ``(K, D, K, rows)`` (the solution's layout, then ``k, i``), or
        ``(rows, K, D, K)`` with ``rows_first`` (each row's ``P x K`` block
        contiguous, for batched products per row).

        With a factored H these are columns of ``H^{-1}`` times the rows: one GEMM
        of ``P K x D x rows`` (``rows P^2`` flops), not solves over ``rows K``
        right-hand sides (``2 rows K P^2``).
        """
        K, D = self.K, self.D
        rows = Phi_t.shape[0]
        if isinstance(self.solver, DirectSolver):
            Hinv = self.solver.inverse().reshape(K * D * K, D)
            if rows_first:
                return gemm(Phi_t, Hinv.T).reshape(rows, K, D, K)
            return gemm(Hinv, Phi_t.T).reshape(K, D, K, rows)
        S = self.solve_many(_output_blocks(Phi_t, K)).reshape(K, D, rows, K)
        if rows_first:
            return np.ascontiguousarray(S.transpose(2, 0, 1, 3))
        return S.transpose(0, 1, 3, 2)

    def solve_many(self, B):
        """``H^{-1} B`` for many right-hand sides, in bounded batches of columns."""
        self.expect_solves(B.shape[1])
        batch = getattr(self.solver, "rhs_batch", None)
        if batch is None or B.shape[1] <= batch:
            return self.solver.solve(B)
        with once_per_call():
            return np.hstack([self.solver.solve(B[:, sl])
                              for sl in row_chunks(B.shape[1], 1, batch)])

    def expect_solves(self, m):
        """Before a call that needs ``m`` solves: under ``influence_solver="auto"``, factor
        H when that is cheaper than ``m`` CG solves (per-row quantities -- self-influence,
        parameter changes, Newton steps, leave-one-out -- beyond 4,000 parameters: on
        1,000 rows, 10 classes, P = 4,110, self_influence took 13.4 s in CG against
        2.2 s factored, loo_predict_proba 136 s against 3.5 s). The factor is kept for
        later calls."""
        if getattr(self, "auto_solver", False) and factoring_pays(self.solver, self.op, m):
            self.solver = Direct().build(self.op)
            if self.op.damping > 0:
                _check_damping_share(self.solver, self.op.damping, self.P)

    @staticmethod
    def penalty_diagonal(model, n):
        K, d = model.coef.shape
        return penalty_diagonal(
            K, d, model.intercept is not None, model.C, n, model.intercept_penalty
        )

    def null_directions(self, model, pen):
        return null_directions(model, pen, self.K, self.D)

    def _stationarity(self, est):
        # exact solves: the direct factorisation when there is one, else CG on a
        # smaller sample of training points (a stochastic solver would blur it)
        # The gate takes 32 rows (a root mean square within about 15%, for a threshold
        # of 0.1); the error estimate behind a failed gate takes 200
        direct = isinstance(self.solver, DirectSolver)
        if direct:
            solver, size = self.solver, 32
        elif hasattr(self.solver, "with_tol"):  # CG: its preconditioner, a gate's accuracy
            solver, size = self.solver.with_tol(1e-4), 16
        else:
            solver, size = ConjugateGradient(tol=1e-4).build(self.op), 16
        n = self.n
        rng = np.random.default_rng(0)
        drawn = rng.choice(n, size=min(n, STATIONARITY_ERROR_ROWS), replace=False)
        idx = np.sort(drawn[:size])
        Gi = self.train_gradients(idx)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an approximate check is still a check
            S = solver.solve(np.column_stack([self.grad, Gi.T]))
        step = S[:, 0]
        steps = np.linalg.norm(S[:, 1:], axis=0) * self.s[idx] / n
        removal = float(np.sqrt(np.mean(steps**2)))
        step_norm = float(np.linalg.norm(step))
        # a Newton step within rounding of the parameters is no optimisation error (an
        # exact least-squares fit: its removal steps are rounding too, and their ratio noise)
        rounding = 64 * np.finfo(np.float64).eps * max(1.0, float(np.linalg.norm(self.Theta)))
        if step_norm <= rounding:
            ratio = 0.0
        else:
            ratio = step_norm / removal if removal > 0 else np.inf
        error = np.nan  # not estimated
        if ratio > STATIONARITY_RATIO_WARN and direct:
            idx = np.sort(drawn)
            error = self._optimisation_error(est, step, idx,
                                             solver.solve(self.train_gradients(idx).T))
        return StationarityReport(
            gradient_norm=float(np.linalg.norm(self.grad)),
            newton_step_norm=step_norm,
            removal_step_norm=removal,
            ratio=float(ratio),
            relative_error=float(error),
        )

    def _optimisation_error(self, est, step, idx, S):
        """Relative change of influence when the fit is moved to the optimum.

        One Newton step ``theta* = theta_hat - H^{-1} grad R`` approximates the
        exact optimum; the influence on the parameters and the self-influence of
        the sampled rows are recomputed there (one more pass for the Hessian) and
        compared. Returns ``nan`` if the step leaves the model undefined.
        """
        model = self.model
        Theta = self.Theta - step.reshape(self.K, self.D)
        try:
            F = outputs_at(self.Phi, Theta, self.intercept)
            G, A = output_derivatives(model.loss, est._fit_Y, F)
            pen = self.op.pen
            op = HessianOperator(self.Phi, A, self.s, self.intercept, pen, self.op.damping,
                                 self.op.N)
            solver = DirectSolver(op.matrix(), overwrite=True)
        except (np.linalg.LinAlgError, ValueError, FloatingPointError):
            return np.nan
        share = None if self.share is None else self.share_at(pen, Theta)
        Gi = self.train_gradients(idx, G, share)
        S_star = solver.solve(Gi.T)
        # self-influence: the row's loss gradient against its perturbed term's solve
        self_hat = np.einsum("pc,cp->c", S, sample_gradients(
            self.Phi[idx], self.G[idx], self.intercept))
        self_star = np.einsum("pc,cp->c", S_star, sample_gradients(
            self.Phi[idx], G[idx], self.intercept))
        params = np.linalg.norm(S_star - S) / max(np.linalg.norm(S_star), np.finfo(float).tiny)
        own = np.linalg.norm(self_star - self_hat) / max(np.linalg.norm(self_star),
                                                         np.finfo(float).tiny)
        return max(params, own)


class InfluenceMixin:
    """Influence functions (Koh & Liang, 2017) for a fitted convex estimator.

    Adds :meth:`influence_on_loss`, :meth:`self_influence`,
    :meth:`influence_on_params`, :meth:`stationarity`, :meth:`hessian` and
    :meth:`loss_gradients` to an estimator that describes its objective through
    ``_influence_model()``; see the module docstring for the contract.

    All quantities refer to the empirical risk
    ``R(theta) = (1/n) sum_i s_i l(z_i, theta) + 1/(2 C n) ||W||^2``
    (scikit-learn's objective divided by ``C n``), its Hessian
    ``H = grad^2 R(theta_hat) + damping * I`` and the *unweighted* per-sample
    loss ``l``. The parameter vector ``theta`` is ``coef_.ravel()`` followed by
    ``intercept_`` (when the model fits one).
    """

    # ------------------------------------------------------------------ hooks
    def _influence_model(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_influence_supported(self):
        """Raise when influence is not defined for the current parameters."""

    def _expects_stationary(self):
        """Whether to warn when the fit is not stationary for the influence loss.

        False where the influence loss deliberately differs from the training
        loss (e.g. a smooth-hinge temperature chosen for explanation only).
        """
        return True

    def _refit(self, sample_weight=None, X=None, y=None):
        """A fitted copy with other sample weights (or rows), warm-started.

        ``X``/``y`` default to the stored training data, ``sample_weight`` to
        the weights of the fit. Everything else -- hyperparameters, the feature
        map's settings -- is as fitted. The retraining tools use this hook.
        """
        from sklearn.base import clone

        self._check_params()
        X = self._fit_X if X is None else X
        y = self._fit_y if y is None else y
        if sample_weight is None:
            sample_weight = self._fit_sample_weight
        refit = clone(self)
        self._keep_fitted_map(refit)
        if "warm_start" in refit.get_params():
            refit.set_params(warm_start=True)
            refit.coef_ = self.coef_.copy()
            refit.intercept_ = np.array(self.intercept_, dtype=float, copy=True)
        refit_judged(lambda: refit.fit(X, y, sample_weight=sample_weight))
        names = getattr(self, "feature_names_in_", None)
        if names is not None and not hasattr(refit, "feature_names_in_") \
                and refit.n_features_in_ == len(names):
            # the kept rows are an array: the refit checks new rows against the
            # table it was first fitted on, as the original does
            refit.feature_names_in_ = names
        return refit

    def _keep_fitted_map(self, refit):
        """Hand the fitted feature map to ``refit`` (an unfitted clone) when its fit
        would draw another one; nothing to hand over here."""

    def _stationarity_advice(self):
        """What to do when the fit is not stationary (one sentence or two)."""
        return "Refit with a smaller `tol` (e.g. tol=1e-10) and a larger `max_iter`."

    def _influence_targets(self, y):
        """Encode targets with the fitted ``classes_``; unseen labels raise."""
        y = column_or_1d(y, warn=True)
        classes = self.classes_
        if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or infinity; pass the true class labels.")
        check_labels(y)
        try:
            idx = np.searchsorted(classes, y)
        except TypeError as exc:  # labels of another type than classes_ (e.g. str vs int)
            kinds = sorted({type(v).__name__ for v in y.tolist()})
            raise ValueError(
                f"y holds labels of type {kinds} that cannot be compared with the classes "
                f"{classes.tolist()}; pass labels from classes_."
            ) from exc
        idx_clipped = np.clip(idx, 0, len(classes) - 1)
        unseen = classes[idx_clipped] != y
        if np.any(unseen):
            raise ValueError(
                f"y contains labels not seen during fit: {np.unique(y[unseen]).tolist()}"
                f"; the model knows the classes {classes.tolist()}. Influence on the "
                "loss needs the loss at the true label, so pass labels from classes_."
            )
        n_classes = len(classes)
        return self._influence_model().loss.encode(idx_clipped, n_classes)

    def _remember_training_data(self, X, Y, s, y=None, sample_weight=None, X_raw=None,
                                y_raw=None):
        """Store the validated training data; called by ``fit``.

        ``y`` and ``sample_weight`` are kept as given (for retraining), and the
        row labels: the index of a pandas ``X_raw``, else of a pandas ``y_raw``
        (inside a pipeline the final step sees transformed arrays, but ``y``
        keeps the training DataFrame's index).
        """
        # A private copy of whatever the caller could still edit: influence must not
        # change behind their back when they modify the arrays they passed to fit.
        check_magnitude(X, "X")
        self._fit_params = self._objective_params()
        self._fit_X = _private(X, X_raw)
        self._fit_Y = Y
        check_magnitude(np.asarray(s, dtype=np.float64), "sample_weight")
        self._fit_s = np.array(s, dtype=np.float64)
        self._fit_y = None if y is None else np.array(y)
        self._fit_sample_weight = (
            None if sample_weight is None else np.array(sample_weight, dtype=np.float64)
        )
        self._fit_index = index_of(X_raw, y_raw, n=X.shape[0])
        columns = target_columns(y_raw, Y.shape[1] if Y.ndim == 2 else 1)
        if columns is not None and not hasattr(self, "classes_"):
            self.target_names_ = columns
        elif hasattr(self, "target_names_"):
            del self.target_names_
        self._influence_cache = {}

    # -------------------------------------------------------------- internals
    @staticmethod
    def _outputs(model, X, features=None):
        """Model outputs ``phi(X) W^T + b``, computed over chunks of rows."""
        features = model.features if features is None else features
        K, d = model.coef.shape
        F = np.empty((X.shape[0], K))
        for rows in row_chunks(X.shape[0], max(X.shape[1], d)):
            F[rows] = np.asarray(features.transform(X[rows]) @ model.coef.T)
        if model.intercept is not None:
            F += np.asarray(model.intercept)[None, :]
        return F

    def _state(self):
        check_is_fitted(self)
        if not hasattr(self, "_fit_X"):
            if not hasattr(self, "coef_"):  # a first fit that failed part-way
                raise NotFittedError(
                    f"This {type(self).__name__} instance is not fitted yet (its fit did "
                    "not finish). Call 'fit' with appropriate arguments before using "
                    "this estimator."
                )
            raise AttributeError(
                f"This {type(self).__name__} was fitted without its training data "
                "being stored; refit it with its own `fit` to compute influence."
            )
        params = self.get_params(deep=False)
        self._check_params(params=params)
        self._check_influence_supported()
        # the objective's settings and the influence settings (damping, solver, a
        # smooth-hinge influence_t...) shape the state: key the cache on them
        key = self._influence_key(params)
        cache = self.__dict__.setdefault("_influence_cache", {})
        coefficients = self._coefficients()
        edited = key in cache and not all(np.array_equal(a, b) for a, b in
                                          zip(cache[key].coefficients, coefficients))
        if edited:
            del cache[key]  # coef_ / intercept_ set by hand since: describe those
        if key not in cache:
            cache.clear()
            state = self._dask_state() if is_dask(self._fit_X) else _InfluenceState(self)
            rep = state.stationarity
            if not np.isnan(rep.ratio) and not rep.is_stationary and self._expects_stationary():
                size = (f"by about {rep.relative_error:.0%}" if not rep.relative_error >= 10
                        else f"beyond recognition (relative error {rep.relative_error:.1e})")
                error = (f"; it distorts influence {size} (relative, estimated by "
                         "recomputing it one Newton step closer to the optimum)"
                         if np.isfinite(rep.relative_error) and rep.relative_error > 0
                         else "")
                warnings.warn(
                    f"The fitted parameters are not stationary enough for exact "
                    f"influence: their distance to the optimum (Newton step "
                    f"{rep.newton_step_norm:.2e}) is {rep.ratio:.2g} times the "
                    f"typical parameter change from removing one training point "
                    f"({rep.removal_step_norm:.2e}){error}. "
                    + ("coef_ or intercept_ changed since the last question: refit, or "
                       "set them back." if edited else self._stationarity_advice()),
                    StationarityWarning,
                    stacklevel=user_stacklevel(),
                )
            if self._class_weight_setting() == "balanced":
                warnings.warn(
                    "class_weight='balanced' is held at its fitted values; a refit without "
                    "a row recomputes it, so kind='remove' and 'newton' miss that part of "
                    "retraining's change (more, the smaller the row's class). Pass the "
                    "weights as a dict (compute_class_weight('balanced', classes=classes, "
                    "y=y)) for influence that matches refits.",
                    UserWarning,
                    stacklevel=user_stacklevel(),
                )
            state.coefficients = [np.array(a, dtype=float, copy=True) for a in coefficients]
            cache[key] = state
        return cache[key]

    def _coefficients(self):
        """The fitted parameters as the estimator holds them (``coef_``, ``intercept_``):
        the kept influence state describes them, and is rebuilt when they change."""
        return [np.asarray(getattr(self, name, 0.0), dtype=float)
                for name in ("coef_", "intercept_")]

    def _class_weight_setting(self):
        """The estimator's ``class_weight`` parameter (None without one)."""
        return getattr(self, "class_weight", None)

    @property
    def _user_name(self):
        """The estimator's name as its user knows it, for messages."""
        return type(self).__name__

    def _validate_rows(self, X):
        """Test rows without labels, validated as ``predict`` does."""
        check_test_rows(X)
        with once_per_call():  # scikit-learn's feature-name warnings: at the user's line
            X = validate_data(self, X, reset=False, accept_sparse="csr", dtype=np.float64)
        check_magnitude(X, "X")
        return X

    def _fitted_model(self):
        """The influence model of a fitted estimator, without building the Hessian
        (losses and outputs: the penalty's settings do not enter)."""
        check_is_fitted(self)
        self._check_params(objective=False)
        self._check_influence_supported()
        return self._influence_model()

    @classmethod
    def _get_param_names(cls):
        # scikit-learn reads ``__init__``'s signature on every ``get_params``; every
        # query reads the parameters, and the signature was half of a warm call's
        # overhead (0.25 of 0.55 ms on a 200 x 5 problem)
        return _param_names(cls, cls.__init__)

    def _check_params(self, objective=True, params=None):
        """Parameters set after fit are checked at use: invalid values
        (``set_params(damping=-1)``) are refused, and so are changes to the fitted
        objective (``set_params(C=2)`` without a refit) -- influence describes the
        fitted model, whose coefficients those settings did not produce.

        Values already checked (the same objects) are not checked again: a
        constraint sees a value's type and, for numbers and strings, which cannot
        change in place, its value.
        """
        if params is None:
            params = self.get_params(deep=False)
        constraints = getattr(self, "_parameter_constraints", None)
        if constraints:
            checked = self.__dict__.get("_checked_params", {})
            new = {k: v for k, v in params.items()
                   if k not in checked or checked[k] is not v}
            if new:
                validate_parameter_constraints(
                    constraints, new, caller_name=type(self).__name__)
            self._checked_params = dict(params)
        if objective:
            self._check_objective_unchanged(params)

    def _check_objective_unchanged(self, params=None):
        fitted = getattr(self, "_fit_params", None)
        if fitted is None:  # fitted by an older version, or not through fit
            return
        now = self.get_params(deep=False) if params is None else params
        changed = [k for k in fitted if not _same_setting(now.get(k), fitted[k])]
        if changed:
            what = ", ".join(f"{k}={now.get(k)!r} (fitted with {fitted[k]!r})" for k in changed)
            raise ValueError(
                f"{type(self).__name__} was changed after fit: {what}. Influence describes "
                "the fitted model, and these settings did not produce its coefficients. "
                "Refit it, or set them back; damping, influence_solver and influence_t "
                "take effect without a refit."
            )

    #: Parameters of this estimator that do not shape its objective, beyond
    #: ``NOT_OBJECTIVE_PARAMS`` (e.g. Ridge's ``solver``).
    _not_objective_params = frozenset()

    def _objective_params(self):
        """A copy of each parameter that shapes the fitted objective."""
        skip = NOT_OBJECTIVE_PARAMS | self._not_objective_params
        return {k: copy.deepcopy(v) for k, v in self.get_params(deep=False).items()
                if k not in skip}

    def _influence_key(self, params):
        """What the influence state depends on: the objective's settings and the
        influence settings, not the optimiser's (``tol``, ``verbose``, ...)."""
        skip = (NOT_OBJECTIVE_PARAMS | self._not_objective_params) - INFLUENCE_PARAMS
        fitted = getattr(self, "_fit_params", None) or {}
        return tuple(sorted(
            (k, repr(fitted[k] if k in fitted and _same_setting(v, fitted[k]) else v))
            for k, v in params.items() if k not in skip))

    def _validate_test(self, X, y):
        check_test_rows(X, y)
        with once_per_call():  # scikit-learn's feature-name warnings: at the user's line
            X = validate_data(self, X, reset=False, accept_sparse="csr", dtype=np.float64)
        check_magnitude(X, "X")
        if y is None:
            raise ValueError("y is required: influence on the loss needs the labels.")
        y = np.asarray(y)
        check_consistent_length(X, y)
        Y = self._influence_targets(y)
        return X, Y

    def _gradients(self, state, X, Y):
        model = state.model
        Phi = model.features.transform(X)
        F = check_outputs(self._outputs(model, Phi, state.identity), model.loss)
        G = output_derivatives(model.loss, Y, F, order=1)
        return sample_gradients(Phi, G, state.intercept)

    @staticmethod
    def _check_kind(kind, allowed=("upweight", "remove")):
        if kind not in allowed:
            raise ValueError(f"kind must be one of {list(allowed)}; got {kind!r}.")

    @staticmethod
    def _in_memory(state, method):
        if getattr(state, "is_dask", False):
            raise NotImplementedError(
                f"{method} is not available for a model fitted on a dask array; use "
                "influence_on_loss or self_influence (lazy), or fit on an in-memory X."
            )
        return state

    @staticmethod
    def _removal_scale(state):
        return -state.s / state.n

    # ---------------------------------------------------------------- public
    def influence_on_loss(self, X_test, y_test, *, kind="upweight", as_frame=False):
        """Influence of every training point on the loss at each test point.

        ``kind="upweight"`` returns the paper's
        ``I_up,loss(z_i, z_test) = -grad l(z_test)^T H^{-1} grad l(z_i)``: the
        derivative of the test loss with respect to the weight ``eps`` of an
        added copy of training point ``z_i`` (objective ``R + eps * l(z_i)``).
        A positive value means up-weighting ``z_i`` raises the test loss
        (harmful); a negative value means it lowers it (helpful).

        ``kind="remove"`` returns the first-order predicted *change* of each test
        loss when training point ``i`` is removed (refit without it), which is
        up-weighting with ``eps = -s_i / n``: ``-(s_i / n) * I_up,loss``.
        Positive means removal raises the test loss (the point was helpful).

        ``kind="newton"`` predicts the same change more accurately: one Newton
        step on the objective without point ``i``, taking the point's own
        curvature out of H (the leverage correction, ``theta_-i ~= theta_hat +
        (s_i/n) (H - (s_i/n) hess l_i)^{-1} grad l_i``, a rank-K update per point,
        never a per-point factorisation), and the test loss evaluated at
        ``theta_-i`` instead of linearised. Exact for a quadratic loss. The first
        ``"newton"`` question of a fit computes every row's K-vector Newton
        coefficient and keeps it (n x K floats); later ones -- other test rows,
        ``influence_on_prediction``, ``loo_*`` -- cost about what the first-order
        kind costs.

        Parameters
        ----------
        X_test : {array-like, sparse matrix} of shape (n_test, n_features)
        y_test : array-like of shape (n_test,)
            True labels; the test loss is the training loss, unweighted.
        kind : {"upweight", "remove", "newton"}, default="upweight"
        as_frame : bool, default=False
            Return a pandas DataFrame indexed by the test rows' labels with one
            column per training row, named by its label (the index of the
            training DataFrame, or of ``y`` when it was a Series; else positions).

        Returns
        -------
        ndarray of shape (n_test, n_train)
            Rows are test points, columns training points in fit order
            (positions); a labelled DataFrame with ``as_frame=True``.
        """
        out = self._influence_on_loss(X_test, y_test, kind)
        return self._labelled(out, test=(X_test, y_test)) if as_frame else out

    def _influence_on_loss(self, X_test, y_test, kind):
        self._check_kind(kind, ("upweight", "remove", "newton"))
        state = self._state()
        X_test, Y_test = self._validate_test(X_test, y_test)
        if getattr(state, "is_dask", False):
            if kind == "newton":
                raise ValueError("kind='newton' is not available for models fitted on dask "
                                 "arrays; use kind='remove'.")
            return state.influence_on_loss(self._gradients(state, X_test, Y_test), kind)
        check_answer_size((X_test.shape[0], state.n), "influence_on_loss")
        if kind == "newton":
            m, K = X_test.shape[0], state.K
            out = np.empty((m, state.n))
            Phi_t = self._test_features(state, X_test)
            loss = state.model.loss
            F0 = check_outputs(Phi_t @ state.Theta.T, loss)
            # per training row: its outputs' changes at the test rows and the loss's
            # temporaries -- bounded like the first-order kind
            with np.errstate(over="ignore", invalid="ignore"):
                for rows, dF in _newton.output_changes(state, Phi_t, 3 * m * K):
                    out[:, rows] = loss.value_change(Y_test, F0, dF)
            _newton_done(state, out)
            return out
        Gt = self._gradients(state, X_test, Y_test)
        S = state.solve_many(Gt.T)
        return self._train_dot(state, S, kind)

    def _train_dot(self, state, S, kind):
        """``-grad l(z_i) . S[:, j]`` for every training point i, as (m, n)."""
        m = S.shape[1]
        out = np.empty((m, state.n))
        width = max(state.Phi.shape[1], state.K * m)
        for rows in row_chunks(state.n, width):
            out[:, rows] = directional_gradients(
                state.Phi[rows], state.G[rows], S, state.intercept
            )
        if state.share is not None:  # every row's share of the penalty
            out += (state.share @ S)[:, None]
        np.negative(out, out=out)
        if kind == "remove":
            out *= self._removal_scale(state)[None, :]
        return out

    def self_influence(self, *, kind="upweight", as_frame=False):
        """Influence of each training point on its own loss.

        ``kind="upweight"`` returns ``I_up,loss(z_i, z_i) =
        -grad l(z_i)^T H^{-1} grad l(z_i)``, which is ``<= 0`` (up-weighting a
        point lowers its own loss). Large magnitudes mark points the model
        bends towards: outliers and mislabelled rows (Koh & Liang, 2017, §5.4).
        ``kind="remove"`` returns ``-(s_i / n) * I_up,loss(z_i, z_i) >= 0``, the
        first-order predicted rise of a point's own loss when it is removed.

        This is the diagonal of ``influence_on_loss(X_train, y_train)``,
        computed without forming that matrix. With the direct solver it is a sum
        of squares of triangular solves (``||L^{-1} grad l_i||^2``). When H is
        not factored (``influence_solver="cg"``, or ``"auto"`` beyond 4,000
        parameters) every training gradient is solved for by conjugate gradients,
        in batches of ``batch_size`` right-hand sides sharing each
        Hessian-vector product: exact to the CG tolerance, at a cost of about
        ``iterations * n / batch_size`` block products. With ``"lissa"`` the
        values are stochastic approximations.

        Parameters
        ----------
        kind : {"upweight", "remove"}, default="upweight"
        as_frame : bool, default=False
            Return a pandas Series indexed by the training rows' labels.

        Returns
        -------
        ndarray of shape (n_train,)
            In fit order (positions); a labelled Series with ``as_frame=True``.
        """
        out = self._self_influence(kind)
        return self._labelled(out, name="self_influence") if as_frame else out

    def _self_influence(self, kind):
        self._check_kind(kind)
        state = self._state()
        if getattr(state, "is_dask", False):
            return state.self_influence(kind)
        state.expect_solves(state.n)
        shortfalls = OncePerCall()  # an iterative solver's warnings: once per call
        out = np.empty(state.n)
        # a triangular solve re-reads L per call: chunks of at least 2 P rows keep it
        # at the one-call speed (20,000 x 2,000: 1,048-row chunks took 1.8x), in
        # at most twice H's memory
        for rows in row_chunks(state.n, state.P, max(CHUNK_ELEMENTS, 2 * state.P**2)):
            if (
                state.K == 1
                and not sp.issparse(state.Phi)
                and hasattr(state.solver, "quad_augmented")
            ):
                # grad l_i = g_i phi~_i: ||L^-1 grad l_i||^2 = g_i^2 ||L^-1 phi~_i||^2,
                # without copying the rows into [phi, 1]
                out[rows] = -state.G[rows, 0] ** 2 * state.solver.quad_augmented(
                    state.Phi[rows], state.intercept
                )
                continue
            Gi = sample_gradients(state.Phi[rows], state.G[rows], state.intercept)
            if hasattr(state.solver, "half_solve"):
                V = state.solver.half_solve(Gi.T)
                out[rows] = -np.einsum("pc,pc->c", V, V)
            else:  # iterative solvers: exact to their tolerance, batched solves
                with shortfalls.hold():
                    out[rows] = -np.einsum("cp,pc->c", Gi, state.solve_many(Gi.T))
        shortfalls.issue()
        if state.share is not None:  # -grad l_i . H^-1 (grad l_i + share)
            for rows in row_chunks(state.n, max(state.Phi.shape[1], state.K)):
                out[rows] -= directional_gradients(state.Phi[rows], state.G[rows],
                                                   state.share_solved[:, None],
                                                   state.intercept)[0]
        if kind == "remove":
            out *= self._removal_scale(state)
        return out

    def influence_on_params(self, *, kind="upweight", as_frame=False):
        """Influence of each training point on the fitted parameters.

        ``kind="upweight"`` returns ``I_up,params(z_i) = -H^{-1} grad l(z_i)``,
        the derivative of the refitted parameters with respect to the weight of
        an added copy of ``z_i``. ``kind="remove"`` returns the first-order
        predicted change of the parameters when ``z_i`` is removed,
        ``-(s_i / n) * I_up,params(z_i)``. ``kind="newton"`` returns the
        one-step change with the row's own curvature taken out of H (the
        leverage correction), ``theta_-i - theta_hat``: statsmodels'
        ``GLMInfluence.d_params`` is its negative (with the constant first), and
        for a quadratic loss it is the exact leave-one-out change.

        Parameters
        ----------
        kind : {"upweight", "remove", "newton"}, default="upweight"
        as_frame : bool, default=False
            Return a DataFrame indexed by the training rows' labels, with the
            parameters' names as columns (``age``, ``intercept``; ``class:age``
            with several outputs).

        Returns
        -------
        ndarray of shape (n_train, n_params)
            Columns follow ``theta = (coef_.ravel(), intercept_)``; the intercept
            columns are present only with ``fit_intercept=True``.
        """
        self._check_kind(kind, ("upweight", "remove", "newton"))
        state = self._in_memory(self._state(), "influence_on_params")
        check_answer_size((state.n, state.P), "influence_on_params")
        state.expect_solves(state.n * (state.K if kind == "newton" else 1))
        out = np.empty((state.n, state.P))
        if kind == "newton":
            # one output: small chunks whose rows stay in cache between the passes
            budget = NEWTON_CHUNK_ELEMENTS if state.K == 1 else None
            for rows, steps in _newton.iter_steps(state, budget):
                state.to_theta(steps, out[rows])
            # an unidentified row is NaN in every column: the first one tells
            _warn_unidentified(np.isnan(out[:, 0]), "training rows have")
            return self._params_frame(out) if as_frame else out
        direct = isinstance(state.solver, DirectSolver)
        shortfalls = OncePerCall()  # an iterative solver's warnings: once per call
        if direct:  # -H^-1 g in theta order: one GEMM with the permuted inverse
            M = state.inverse_theta_columns()
            shared = None if state.share is None else state.share @ M
        for rows in row_chunks(state.n, state.P):
            if direct:
                gradients_times(state.Phi[rows], state.G[rows], M, state.intercept,
                                out=out[rows])
                if shared is not None:
                    out[rows] += shared
            else:
                Gi = state.train_gradients(rows)
                with shortfalls.hold():
                    S = state.solve_many(Gi.T).T
                state.to_theta(S, out[rows])
                np.negative(out[rows], out=out[rows])
        shortfalls.issue()
        if kind == "remove":
            out *= self._removal_scale(state)[:, None]
        return self._params_frame(out) if as_frame else out

    def cooks_distance(self, *, as_frame=False):
        """Cook's distance of every training row.

        ``D_i = n d_i^T H d_i / (P phi)`` with ``d_i`` the Newton parameter change
        of removing row ``i`` (``influence_on_params(kind="newton")``), ``H`` the
        Hessian of ``R``, ``P`` the number of parameters and ``phi`` the family's
        dispersion (1 for logistic and Poisson models, else Pearson's estimate on
        ``n - P`` degrees of freedom). Without a penalty it equals statsmodels'
        ``GLMInfluence.cooks_distance`` (``OLSInfluence`` for least squares); rows
        above about ``4 / n`` are worth a look. See :mod:`skinfluence.diagnostics`.

        Parameters
        ----------
        as_frame : bool, default=False
            Return a pandas Series indexed by the training rows' labels.

        Returns
        -------
        ndarray of shape (n_train,)
        """
        from .diagnostics import cooks_distance

        out = cooks_distance(self)
        return self._labelled(out, name="cooks_distance") if as_frame else out

    def _params_frame(self, out):
        return label_matrix(out, self._fit_index, self.parameter_names(), "train_row",
                            "parameter")

    def parameter_names(self, feature_names=None):
        """Names of the parameters in ``theta`` order (``coef_.ravel()``, ``intercept_``).

        ``age`` and ``intercept`` for one output; ``class:age`` and
        ``class:intercept`` (class labels, or output numbers for multi-target
        regression) for several.
        """
        state = self._layout()  # names need no Hessian
        if feature_names is None:
            feature_names = getattr(self, "feature_names_in_", None)
        if feature_names is None or len(feature_names) != state.d:
            feature_names = [f"x{j}" for j in range(state.d)]
        outputs, _ = outputs_of(self)
        outputs = outputs if outputs is not None and len(outputs) == state.K else None
        return param_names(feature_names, state.K, state.intercept, outputs)

    def _labelled(self, values, *, test=None, name=None):
        """``values`` over training rows (and test rows) as labelled pandas objects."""
        if not isinstance(values, np.ndarray):
            raise ValueError("as_frame=True needs in-memory results; call .compute() on the "
                             "dask array and label it with the training rows instead.")
        if test is None:
            return label_vector(values, self._fit_index, name)
        return label_matrix(values, index_of(*test), self._fit_index)

    # ------------------------------------------------------------------ dask
    def _fit_dask(self, X, y, sample_weight, loss, C, tol, max_iter, continuation=()):
        """Fit on a dask array by blockwise Newton; set the fitted attributes."""
        import dask
        import dask.array as da
        from sklearn.utils import compute_class_weight

        from ._dask import _Targets, fit_dask

        y = da.asarray(y)
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError("y must be 1-D with one label per row of X.")
        classes = np.unique(np.asarray(da.unique(y).compute()))
        if len(classes) < 2:
            raise ValueError("The data contains only one class; need at least two.")
        cw = None
        if self.class_weight is not None:
            w = 1.0 if sample_weight is None else da.asarray(sample_weight)
            counts = np.array(dask.compute(*[((y == c) * w).sum() for c in classes]), float)
            if self.class_weight == "balanced":
                cw = counts.sum() / (len(classes) * counts)
            else:
                cw = compute_class_weight(self.class_weight, classes=classes, y=classes)
        targets = _Targets(loss, classes, cw)
        n, d = X.shape
        K = loss.n_outputs(len(classes))
        D = d + int(self.fit_intercept)
        pen = penalty_diagonal(K, d, self.fit_intercept, C, n)
        Theta, n_iter = np.zeros((K, D)), 0
        for warm_loss in continuation:
            Theta, it = fit_dask(X, y, sample_weight, warm_loss, targets, self.fit_intercept,
                                 pen, Theta, n, max(tol, 1e-6), max_iter)
            n_iter += it
        Theta, it = fit_dask(X, y, sample_weight, loss, targets, self.fit_intercept, pen,
                             Theta, n, tol, max_iter)
        if loss.shift_invariant and K > 1:
            # the softmax ignores a common shift of unpenalised columns: report the
            # centred representative, as scikit-learn does
            flat = np.all(pen.reshape(K, D) == 0, axis=0)
            Theta[:, flat] -= Theta[:, flat].mean(axis=0)
        self.classes_ = classes
        self.n_features_in_ = d
        self.coef_ = Theta[:, :d]
        self.intercept_ = Theta[:, d] if self.fit_intercept else np.zeros(K)
        self._dask_targets = targets
        self._fit_X, self._fit_y, self._fit_sample_weight = X, y, sample_weight
        self._fit_Y = self._fit_s = self._fit_index = None
        self._fit_params = self._objective_params()
        self._influence_cache = {}
        return n_iter + it

    def _dask_state(self):
        from ._dask import DaskState

        model = self._influence_model()
        K, d = model.coef.shape
        intercept = model.intercept is not None
        pen = penalty_diagonal(K, d, intercept, model.C, self._fit_X.shape[0],
                               model.intercept_penalty)
        state = DaskState(self, model, self._dask_targets, pen,
                          lambda pen: null_directions(model, pen, K, d + int(intercept)))
        state.identity = IdentityFeatures()
        g = np.linalg.norm(state.grad)
        step = float(np.linalg.norm(state.solver.solve(state.grad)))
        # judged as in memory, against removal steps (of the first block's rows: one
        # block read) -- coefficients set by hand have no optimiser's word to trust
        removal = state.removal_step_norm()
        ratio = step / removal if removal > 0 else np.nan
        state.stationarity = StationarityReport(float(g), step, removal, ratio)
        return state

    def loss_values(self, X, y):
        """The unweighted per-sample loss ``l(z, theta_hat)`` of each row.

        The loss the influence methods use (for the smooth-hinge SVMs, at
        ``influence_t``).

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        model = self._fitted_model()  # no Hessian: retraining checks call it on every refit
        X, Y = self._validate_test(X, y)
        F = check_outputs(self._outputs(model, model.features.transform(X), IdentityFeatures()),
                          model.loss)
        return np.asarray(model.loss.value(Y, F))

    def perturbation_influence(self, X_test, y_test, *, as_frame=False):
        """Influence of perturbing each training input on each test loss.

        Returns ``I_pert,loss(z_i, z_test) = -grad_theta l(z_test)^T H^{-1}
        grad_x grad_theta l(z_i)``: moving training input ``x_i`` by a small
        ``delta`` (and refitting) changes the test loss by about
        ``(s_i / n) * I_pert,loss . delta``. The derivative with respect to the
        input flows through the feature map (RBF features included), computed
        by autograd in one vectorised pass over the training rows per test point;
        the feature map itself (e.g. the RBF landmarks) is held fixed.

        Parameters
        ----------
        X_test : array-like of shape (n_test, n_features)
        y_test : array-like of shape (n_test,)
        as_frame : bool, default=False
            A DataFrame with one row per (test row, training row) pair and one
            column per feature.

        Returns
        -------
        ndarray of shape (n_test, n_train, n_features)
            Positional: ``[j, i, :]`` is test row ``j``, training row ``i``
            (fit order), features as the model sees them.
        """
        state = self._in_memory(self._state(), "perturbation_influence")
        X_raw = X_test
        X_test, Y_test = self._validate_test(X_test, y_test)
        S = state.solve_many(self._gradients(state, X_test, Y_test).T)  # (P, m)
        out = self._perturbation(state, S)
        if as_frame:
            return label_cube(out, index_of(X_raw, y_test), self._fit_index,
                              (self._input_names(), "feature"))
        return out

    def _input_names(self):
        """The names of the model's input columns (``x0``, ``x1``... without them)."""
        names = getattr(self, "feature_names_in_", None)
        if names is None or len(names) != self.n_features_in_:
            names = [f"x{j}" for j in range(self.n_features_in_)]
        return list(names)

    def _perturbation(self, state, S, train_rows=None):
        """``-grad_x [grad_theta l(z_i) . S[:, j]]`` for every training row (or the
        ``train_rows`` given, in that order): shape (m, n or len(train_rows), p)."""
        from autograd import elementwise_grad

        model, K, d, D = state.model, state.K, state.d, state.D
        X = self._fit_X
        idx = np.arange(state.n) if train_rows is None else np.asarray(train_rows)
        check_answer_size((S.shape[1], len(idx), X.shape[1]), "perturbation_influence")
        W = np.asarray(model.coef)
        b = np.zeros(K) if model.intercept is None else np.asarray(model.intercept)
        out = np.empty((S.shape[1], len(idx), X.shape[1]))

        def first(Y, F):
            return elementwise_grad(lambda F_: anp.sum(model.loss.value(Y, F_)))(F)

        for j in range(S.shape[1]):  # a loop over test points, not training points
            Sj = S[:, j].reshape(K, D)
            SW, Sb = Sj[:, :d], (Sj[:, d] if state.intercept else np.zeros(K))

            def directional(Xc, Yc):
                Phi = model.features.transform(Xc)
                g = first(Yc, anp.dot(Phi, W.T) + b)
                return anp.sum(g * (anp.dot(Phi, SW.T) + Sb))

            for part in row_chunks(len(idx), max(X.shape[1], state.P)):
                rows = idx[part] if train_rows is not None else part
                Xc = X[rows].toarray() if sp.issparse(X) else np.asarray(X[rows])
                out[j, part] = -elementwise_grad(directional)(Xc, self._fit_Y[rows])
        return out

    @staticmethod
    def _test_features(state, X_test):
        """``[phi(x), 1]`` of the test rows, dense: shape (m, D)."""
        return augment(state.model.features.transform(X_test), state.intercept)

    def group_influence_on_loss(self, X_test, y_test, groups, *, kind="remove",
                                as_frame=False):
        """Predicted change of each test loss when a group of training points is removed.

        Parameters
        ----------
        X_test, y_test : test rows and labels
        groups : sequence or dict of row selections
            Each group is integer positions (fit order), a boolean mask of length
            ``n_train`` (a pandas Series is aligned on the training labels), or
            -- when the training rows carry labels -- a list of those labels.
            Integer labels other than ``0 .. n-1`` are read as ``.loc`` and
            ``.iloc`` would: a pandas Index holds labels, a numpy array
            positions, and a list is refused as ambiguous. A dict names the groups (its keys become the columns with ``as_frame``).
        kind : {"remove", "newton"}, default="remove"
            ``"remove"``: the first-order sum over the group of
            ``influence_on_loss(..., kind="remove")``. ``"newton"``: one Newton
            step on the objective without the group, ``Delta theta = (H -
            sum_G (s_i/n) hess l_i)^{-1} sum_G (s_i/n) grad l_i`` (a Woodbury
            update of rank K |G|), with the test loss evaluated at ``theta_hat +
            Delta theta`` rather than linearised.
        as_frame : bool, default=False
            A DataFrame indexed by the test rows' labels, one column per group.

        Returns
        -------
        ndarray of shape (n_test, n_groups)
        """
        names = list(groups) if isinstance(groups, dict) else None
        if names is None and (isinstance(groups, (str, bytes)) or not hasattr(groups, "__iter__")):
            raise TypeError(f"groups must be a list or dict of row selections (positions, "
                            f"masks or labels); got {type(groups).__name__}.")
        groups = list(groups.values()) if names is not None else list(groups)
        out = self._group_influence(X_test, y_test, groups, kind)
        if not as_frame:
            return out
        return label_matrix(out, index_of(X_test, y_test), names, columns_name="group",
                            train_index=self._fit_index)

    def _group_influence(self, X_test, y_test, groups, kind):
        self._check_kind(kind, ("remove", "newton"))
        state = self._in_memory(self._state(), "group_influence_on_loss")
        if len(groups) == 0:
            raise ValueError("groups is empty; pass at least one group of training rows.")
        groups = [_group_positions(g, state.n, self._fit_index) for g in groups]
        if kind == "remove":
            full = self.influence_on_loss(X_test, y_test, kind="remove")
            return np.column_stack([full[:, g].sum(axis=1) for g in groups])
        X_test, Y_test = self._validate_test(X_test, y_test)
        Phi_test = self._test_features(state, X_test)
        F0 = check_outputs(Phi_test @ state.Theta.T, state.model.loss)
        K = state.K
        out, flat = [], []
        for g in groups:  # a loop over groups; each group is one block solve
            Phi_t = augment(state.Phi[g], state.intercept)
            U = _output_blocks(Phi_t, K)  # (P, |G| K)
            S = state.solve_output_blocks(Phi_t).transpose(0, 1, 3, 2).reshape(
                state.P, -1)  # H^-1 U_G, columns (row, output) as U's
            M = U.T @ S  # U^T H^-1 U
            c = state.s[g] / state.n
            Cmat = np.zeros((len(g), K, len(g), K))
            Cmat[np.arange(len(g)), :, np.arange(len(g)), :] = c[:, None, None] * state.op.A[g]
            Cmat = Cmat.reshape(len(g) * K, -1)
            rhs = (c[:, None] * state.G[g]).ravel()
            if state.share is not None:  # as in _newton._fresh, for the group
                u = state.share_solved
                rhs = rhs + c.sum() * (Cmat @ (U.T @ u))
            lhs = np.eye(len(rhs)) - Cmat @ M
            flat.append(np.linalg.svd(lhs, compute_uv=False).min() < LEVERAGE_ONE_TOL)
            if flat[-1]:
                step = np.full(S.shape[0], np.nan)  # the rest leaves the model unidentified
            else:
                step = S @ np.linalg.solve(lhs, rhs)
                if state.share is not None:
                    step += c.sum() * u
            dF = _newton.step_output_changes(Phi_test, step[None, :], K, state.D)
            with np.errstate(over="ignore", invalid="ignore"):
                out.append(state.model.loss.value_change(Y_test, F0, dF)[:, 0])
        out = np.column_stack(out)
        flat = np.array(flat)
        _check_newton_finite(out, flat, "groups")
        _warn_unidentified(flat, "groups have")
        return out

    def loss_gradients(self, X, y, *, as_frame=False):
        """Per-sample gradients ``grad_theta l(z, theta_hat)`` (unweighted).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        as_frame : bool, default=False
            A DataFrame labelled by the rows and :meth:`parameter_names`.

        Returns
        -------
        ndarray of shape (n_samples, n_params)
            Columns in ``theta`` order (``coef_.ravel()``, then ``intercept_``).
        """
        layout = self._layout()
        X_raw = X
        X, Y = self._validate_test(X, y)
        out = self._gradients(layout, X, Y)[:, layout.perm]
        if as_frame:
            return label_matrix(out, index_of(X_raw, y), self.parameter_names(),
                                index_name="row", columns_name="parameter")
        return out

    def _layout(self):
        """The fitted parameters' layout, without the Hessian."""
        layout = ParameterLayout()
        layout.model, layout.identity = self._fitted_model(), IdentityFeatures()
        layout._set_layout(layout.model)
        return layout

    def hessian(self):
        """The Hessian ``grad^2 R(theta_hat)`` of the empirical risk.

        Without ``damping``; rows and columns in ``theta`` order
        (``coef_.ravel()``, then ``intercept_``).

        Returns
        -------
        ndarray of shape (n_params, n_params)
        """
        state = self._state()
        return state.hessian()[np.ix_(state.perm, state.perm)]

    def stationarity(self):
        """How stationary the fitted parameters are; see :class:`StationarityReport`.

        Influence functions assume ``grad R(theta_hat) = 0``. scikit-learn's
        default ``tol=1e-4`` often stops early enough to distort influence; the
        remedy is to refit with a smaller ``tol`` (e.g. ``1e-10``) and a larger
        ``max_iter``, or with ``solver="newton-cholesky"``.

        Returns
        -------
        StationarityReport
        """
        return self._state().stationarity

    # ------------------------------------------------ predictions (beyond the paper)
    def influence_on_prediction(self, X_test, *, kind="upweight", response_method="auto",
                                as_frame=False):
        """Change of the model's output at each test row, for each training row.

        The paper's influence on the loss needs the test labels; this is the
        influence on what the model *says*: ``predict_proba`` (binary: the
        probability of ``classes_[1]``), ``decision_function``, or ``predict``
        for regressors. ``kind`` reads as everywhere: ``"upweight"`` is the
        derivative ``J(x_test) I_up,params(z_i)``, ``"remove"`` the first-order
        change when row ``i`` is removed, ``"newton"`` the change of the output
        evaluated exactly at the one-step Newton parameters without the row
        (exact for least squares, but for a penalised ``TweedieRegressor(power=0)``,
        whose rows carry a share of the penalty: 2.5e-3 relative from its refits).

        Parameters
        ----------
        X_test : array-like of shape (n_test, n_features)
        kind : {"upweight", "remove", "newton"}, default="upweight"
        response_method : {"auto", "predict_proba", "decision_function", "predict"}, \
default="auto"
            ``"auto"``: ``predict_proba`` for logistic models, ``decision_function``
            for other classifiers, ``predict`` (the predicted mean) for regressors.
        as_frame : bool, default=False
            A DataFrame labelled test rows x training rows; for several classes,
            one row per (test row, training row) pair and one column per class.

        Returns
        -------
        ndarray of shape (n_test, n_train), or (n_test, n_train, n_classes) for
        multiclass probabilities and decision values
        """
        from .predictions import influence_on_prediction

        out = influence_on_prediction(self, X_test, kind=kind, response_method=response_method)
        if as_frame and out.ndim == 3:
            return label_cube(out, index_of(X_test), self._fit_index, outputs_of(self))
        return self._labelled(out, test=(X_test,)) if as_frame else out

    def influence_on_function(self, fn, X_test, *, kind="upweight", as_frame=False):
        """Change of any differentiable function of the outputs on ``X_test``, per training row.

        ``fn`` maps the model's outputs on the test rows -- shape ``(n_test, K)``:
        log-odds of ``classes_[1]`` for binary logistic regression, one column
        per class for multinomial, the prediction for least squares, the linear
        predictor (``log`` of the mean for a log link) for a GLM -- to a number,
        written with :mod:`autograd.numpy`. For example the mean predicted
        probability over a subgroup, ``lambda F: anp.mean(1 / (1 + anp.exp(-F[..., 0])),
        axis=-1)``, or the gap between two groups (pass both groups' rows and
        index them). ``kind="newton"`` evaluates ``fn`` on a batch of shape
        ``(rows, n_test, K)``, so write it with reductions over the last two axes.

        Returns
        -------
        ndarray of shape (n_train,)
        """
        from .predictions import influence_on_function

        out = influence_on_function(self, fn, X_test, kind=kind)
        return self._labelled(out, name=f"influence_{kind}") if as_frame else out

    def _loo(self, method, as_frame=False):
        from .predictions import loo_outputs, respond

        out = respond(self, self._influence_model(), loo_outputs(self), method,
                      spell=lambda other: f"loo_{other}()")
        return self._labelled_predictions(out, f"loo_{method}") if as_frame else out

    def _labelled_predictions(self, out, name):
        return label_predictions(out, self._fit_index, name, outputs_of(self))

    def loo_decision_function(self, *, as_frame=False):
        """Every training row's decision value from the model fitted without it.

        One Newton step per row with its own curvature taken out of H (no
        refits); exact for least squares. Rows of leverage 1 are NaN.
        """
        return self._loo("decision_function", as_frame)

    def loo_predict_proba(self, *, as_frame=False):
        """Every training row's class probabilities from the model fitted without it.

        As :meth:`loo_decision_function`; shape (n_train, n_classes), like
        ``predict_proba``.
        """
        return self._loo("predict_proba", as_frame)

    def loo_predict(self, *, as_frame=False):
        """Every training row's prediction from the model fitted without it.

        ``as_frame=True`` labels it by the training rows (a Series; a DataFrame
        with one column per class for probabilities), here and in the other
        out-of-sample methods.
        """
        return self._loo("predict", as_frame)

    def approx_cross_val_predict(self, method="predict", cv=None, *, groups=None,
                                 newton_steps=1, as_frame=False):
        """``cross_val_predict`` from this one fit: Newton steps per fold, no refits.

        For each of scikit-learn's folds (``cv`` as in
        :func:`sklearn.model_selection.cross_val_predict`; default 5, stratified
        for classifiers), the parameters fitted without the fold are estimated
        by ``newton_steps`` Newton steps from the full fit -- the first with the
        fold's curvature removed from H, no pass over the data -- and the fold's
        rows are predicted there. Exact for least squares; for other losses
        each further step brings it to the refits (see the README for the
        measured error).

        Parameters
        ----------
        method : {"predict", "predict_proba", "predict_log_proba", \
"decision_function"}, default="predict"
        cv : int, cross-validation generator or iterable, default=None
        groups : array-like of shape (n_train,), default=None
            Group labels of the training rows (fit order) for a group splitter
            such as :class:`~sklearn.model_selection.GroupKFold`, as in
            ``cross_val_predict``.
        newton_steps : int or "auto", default=1
            Newton steps per fold. One is fastest; ``"auto"`` steps until each
            fold's refit is reached (the refits' predictions, to the floor float64
            allows: 1.3e-13 on breast_cancer). A fixed count warns when the next step would still move the
            outputs by more than 0.05 (breast_cancer at C=1: one step is 0.15 off
            the refits' probabilities, four 7e-9).
        as_frame : bool, default=False
            Label the result by the training rows (a Series, or a DataFrame with
            one column per class).

        Returns
        -------
        ndarray, shaped as ``cross_val_predict(..., method=method)`` returns it
        """
        from .predictions import (check_response_method, cross_val_outputs,
                                  log_probabilities, respond)

        def spell(other):
            return f"method={other!r}"

        log = method == "predict_log_proba"  # as cross_val_predict accepts
        check_response_method("predict_proba" if log else method, spell)  # before the folds
        model = self._influence_model()
        # a method the model has no answer for is refused before the folds' work
        respond(self, model, np.zeros((1, model.coef.shape[0])),
                "predict_proba" if log else method, spell)
        F = cross_val_outputs(self, cv, groups=groups, newton_steps=newton_steps)
        out = log_probabilities(model, F) if log else respond(self, model, F, method, spell)
        return self._labelled_predictions(out, f"cv_{method}") if as_frame else out

    def __getstate__(self):
        state = super().__getstate__()
        state = dict(state)
        state.pop("_influence_cache", None)
        state.pop("_checked_params", None)  # checked again after loading
        return state
