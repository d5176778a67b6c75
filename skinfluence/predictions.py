"""Influence on predictions, and approximate out-of-sample predictions from one fit.

Beyond the paper's influence on the loss:

- :func:`influence_on_prediction`: how each training row moves the model's
  output at each test row -- a probability, a decision value or a regression
  prediction -- first order (``"upweight"``, ``"remove"``) or by one Newton
  step without the row (``"newton"``, the output evaluated exactly there).
- :func:`influence_on_function`: the same for any differentiable function of
  the outputs over a set of test rows (a subgroup's mean probability, a gap
  between two groups).
- :func:`loo_outputs`: every training row's output at the parameters refitted
  without it, by one Newton step (exact for least squares) -- the
  leave-one-out predictions that otherwise take ``n`` refits.
- :func:`cross_val_outputs`: ``cross_val_predict``-style predictions from one
  fit, with scikit-learn's folds: per fold, Newton steps from the full fit on
  the objective without the fold (the first one from the full Hessian with the
  fold's curvature removed).

A small module over the fitted state of :class:`~skinfluence.InfluenceMixin`:
it uses the state's solves, the per-row Newton steps and the model's loss, and
nothing else.
"""

import warnings

import autograd.numpy as anp
import numpy as np
from autograd import elementwise_grad, grad
from sklearn.exceptions import ConvergenceWarning

from ._optimize import _outputs as outputs_at
from ._optimize import fit_newton
from ._utils import user_stacklevel, warns_once_per_call
from .exceptions import SingularHessianError
from . import _newton
from .curvature import (
    augment,
    hessian,
    output_derivatives,
    row_chunks,
)
from .features import IdentityFeatures
from .losses import LogLoss, Loss, OneVsRestLogLoss, SoftmaxLoss
from .solvers import AUTO_DIRECT_MAX_PARAMS, DirectSolver

__all__ = [
    "influence_on_prediction",
    "influence_on_function",
    "loo_outputs",
    "cross_val_outputs",
    "RESPONSE_METHODS",
]

RESPONSE_METHODS = ("auto", "predict_proba", "decision_function", "predict")


def _as_argument(method):
    return f"response_method={method!r}"


def check_response_method(method, spell=_as_argument):
    """Refuse an unknown response method, naming the valid ones as the caller spells them."""
    if method not in RESPONSE_METHODS:
        valid = ", ".join(spell(m) for m in RESPONSE_METHODS)
        raise ValueError(f"Unknown response method {method!r}; use one of {valid}.")


def response_function(est, model, response_method, spell=_as_argument):
    """``(r, squeeze)``: the model's response as an autograd function of its outputs.

    ``r`` maps outputs ``F`` of shape ``(m, K)`` to responses ``(m, C)``;
    ``squeeze`` says that ``C == 1`` is reported without its last axis.
    ``spell(method)`` is how the caller's user asks for another method (an
    argument, or another function), for the error messages.
    """
    classifier = hasattr(est, "classes_")
    loss = model.loss
    check_response_method(response_method, spell)
    if response_method == "auto":
        if not classifier:
            response_method = "predict"
        elif loss.probabilities:
            response_method = "predict_proba"
        else:
            response_method = "decision_function"
    if response_method == "predict_proba":
        if classifier and (type(loss) is LogLoss or type(loss) is OneVsRestLogLoss
                           and model.coef.shape[0] == 1):  # P(classes_[1])
            return (lambda F: 1.0 / (1.0 + anp.exp(-F))), True
        if classifier and type(loss) is OneVsRestLogLoss:
            # scikit-learn's one-vs-rest probabilities (SGDClassifier(loss="log_loss")):
            # the classes' sigmoids, normalised to sum to 1
            def ovr(F):
                p = 1.0 / (1.0 + anp.exp(-F))
                return p / anp.sum(p, axis=-1, keepdims=True)
            return ovr, False
        if classifier and type(loss) is SoftmaxLoss:
            return (lambda F: anp.exp(F - anp.max(F, axis=-1, keepdims=True))
                    / anp.sum(anp.exp(F - anp.max(F, axis=-1, keepdims=True)), axis=-1,
                              keepdims=True)), False
        other = "decision_function" if classifier else "predict"
        raise ValueError(
            f"{est._user_name} has no probabilities to differentiate (its loss is "
            f"{type(loss).__name__}); use {spell(other)}."
        )
    if response_method == "predict" and classifier:
        raise ValueError(
            "A classifier's predict returns class labels, which do not change smoothly; use "
            f"{spell('predict_proba')} or {spell('decision_function')}."
        )
    if response_method == "decision_function" and not classifier:
        raise ValueError(f"A regressor has no decision_function; use {spell('predict')}.")
    if response_method == "predict" and not hasattr(loss, "inverse_link"):
        raise ValueError(f"predict is not a smooth output of {est._user_name}.")
    if response_method == "predict":  # the predicted mean, link^-1(f)
        return loss.inverse_link, model.coef.shape[0] == 1
    return (lambda F: F), model.coef.shape[0] == 1


def _test_outputs(est, state, X):
    from ._mixin import check_outputs

    Phi_t = est._test_features(state, X)
    return Phi_t, check_outputs(Phi_t @ state.Theta.T, state.model.loss)


def _response_jacobian(r, F0, C):
    """``dr_c / dF_k`` for every test row: shape (m, C, K) (rows are independent)."""
    m, K = F0.shape
    out = np.empty((m, C, K))
    for c in range(C):  # a loop over responses (classes), not rows
        out[:, c, :] = elementwise_grad(lambda F, c=c: anp.sum(r(F)[:, c]))(F0)
    return out


def influence_on_prediction(est, X_test, *, kind="upweight", response_method="auto"):
    """Change of the model's response at each test row, for each training row.

    See :meth:`InfluenceMixin.influence_on_prediction`; ``X_test`` are rows as
    the estimator sees them.
    """
    from ._mixin import check_answer_size

    est._check_kind(kind, ("upweight", "remove", "newton"))
    state = est._in_memory(est._state(), "influence_on_prediction")
    r, squeeze = response_function(est, state.model, response_method)
    X = est._validate_rows(X_test)
    Phi_t, F0 = _test_outputs(est, state, X)
    R0 = np.asarray(r(F0))
    m, C, K, D = len(F0), R0.shape[1], state.K, state.D
    check_answer_size((m, state.n, C), "influence_on_prediction")
    if kind == "newton":
        out = np.empty((m, state.n, C))
        with np.errstate(over="ignore", invalid="ignore"):
            for rows, dF in _newton.output_changes(state, Phi_t, 4 * m * max(K, C)):
                F = (F0.T[:, :, None] + dF).transpose(1, 2, 0).reshape(-1, K)
                out[:, rows, :] = np.asarray(r(F)).reshape(m, -1, C) - R0[:, None, :]
        _newton_done(state, out.transpose(0, 2, 1))
    else:
        # J_(t,c) = sum_k dr_c/df_k (e_k (x) phi~_t): one solve per test row and response
        Dr = _response_jacobian(r, F0, C)
        J = np.einsum("tck,td->kdtc", Dr, Phi_t).reshape(K * D, m * C)
        S = state.solve_many(J)
        out = est._train_dot(state, S, kind).reshape(m, C, state.n).transpose(0, 2, 1)
    return out[:, :, 0] if squeeze else out


def _newton_done(state, out):
    from ._mixin import _newton_done as done

    done(state, out)


def influence_on_function(est, fn, X_test, *, kind="upweight"):
    """Change of ``fn(outputs on X_test)`` for each training row.

    See :meth:`InfluenceMixin.influence_on_function`.
    """
    est._check_kind(kind, ("upweight", "remove", "newton"))
    state = est._in_memory(est._state(), "influence_on_function")
    X = est._validate_rows(X_test)
    Phi_t, F0 = _test_outputs(est, state, X)
    K, D = state.K, state.D
    value = float(fn(F0))
    if not np.isfinite(value):
        raise ValueError(f"fn(outputs) is {value}; it must be a finite number.")
    if kind == "newton":
        out = np.empty(state.n)
        m = len(F0)
        for rows, dF in _newton.output_changes(state, Phi_t, 2 * m * K):
            batch = np.asarray(fn(F0[None, :, :] + dF.transpose(2, 1, 0)), dtype=float)
            if batch.shape != (dF.shape[2],):
                raise ValueError(
                    "kind='newton' calls fn on a batch of outputs of shape (rows, m, K) and "
                    f"needs one value per row; it returned shape {batch.shape}. Write fn with "
                    "reductions over the last two axes (e.g. anp.mean(F[..., 0], axis=-1))."
                )
            out[rows] = batch - value
        _newton_done(state, out)
        return out
    dfn = np.asarray(grad(fn)(F0))  # (m, K)
    S = state.solve_many(np.einsum("tk,td->kd", dfn, Phi_t).reshape(K * D, 1))
    return est._train_dot(state, S, kind)[0]


def loo_outputs(est):
    """Every training row's outputs ``f(x_i)`` at the parameters fitted without it.

    One Newton step per row with its own curvature taken out (exact for least
    squares); NaN for rows of leverage 1. Shape (n_train, K).
    """
    from ._mixin import _warn_unidentified

    state = est._in_memory(est._state(), "leave-one-out predictions")
    K, D = state.K, state.D
    out = np.empty((state.n, K))
    if _newton.has_one_output_newton(state):
        # the row's own output moves by phi~^T step = coef q (+ c phi~^T u)
        coef, c, q = _newton.one_output(state)
        out[:, 0] = state.F[:, 0] + coef * q
        if state.share is not None:
            out[:, 0] += c * _newton.linear(state.Phi, state.share_solved, state)
        _warn_unidentified(np.isnan(out[:, 0]), "training rows have")
        _no_refit_without_lonely_rows(est, state, out)
        _warn_penalty_held(est, "leave-one-out predictions")
        return out
    cache = _newton._cache(state)
    if "loo_outputs" in cache:  # n x K floats, kept with the Newton coefficients
        out[...] = cache["loo_outputs"]
    else:
        for rows, steps in _newton.iter_steps(state):
            Phi_t = augment(state.Phi[rows], state.intercept)
            out[rows] = state.F[rows] + np.einsum("ikd,id->ik", steps.reshape(-1, K, D),
                                                  Phi_t)
        if "coef" in cache:  # not from a short-stopped solver: kept
            cache["loo_outputs"] = out.copy()
    _warn_unidentified(np.isnan(out).any(axis=1), "training rows have")
    _no_refit_without_lonely_rows(est, state, out)
    _warn_penalty_held(est, "leave-one-out predictions")
    return out


def _warn_penalty_held(est, what):
    """SGD's penalty is weighed against the mean loss of the rows it is fitted on: a
    refit on fewer rows (cross_val_predict's) weighs it more, while these predictions,
    as refits with the rows' weights set to 0, hold ``C = 1 / (alpha n)``."""
    if getattr(getattr(est, "_reading", None), "C_per_row", False):
        warnings.warn(
            f"{est._user_name}'s penalty alpha is weighed against the mean loss of the rows "
            f"it is fitted on; {what} hold C = 1/(alpha n) as refits with the left-out "
            "rows' weights set to 0 do, while refits on fewer rows (cross_val_predict's) "
            "weigh the penalty more (SGDClassifier at alpha=0.05, n=80, 5 folds: 0.019 "
            "apart in probability).",
            UserWarning,
            stacklevel=user_stacklevel(),
        )


def _no_refit_without_lonely_rows(est, state, out):
    """NaN, with a warning, for the rows that alone carry their class's weight: without
    them the class is absent and an unpenalised intercept has no optimum (the refit's
    probability of that class runs to 0; one Newton step gave a finite number)."""
    model = state.model
    classes = getattr(est, "classes_", None)
    y = getattr(est, "_fit_y", None)
    if classes is None or y is None or model.intercept is None or \
            model.intercept_penalty != 0 or float(getattr(est, "damping", 0.0)) != 0 or \
            type(model.loss).absent_classes is Loss.absent_classes:
        return
    index = np.searchsorted(classes, np.asarray(y).ravel())
    carried = np.bincount(index[state.s > 0], minlength=len(classes))
    lonely = (state.s > 0) & (carried[index] == 1)
    if lonely.any():
        out[lonely] = np.nan
        warnings.warn(
            f"{int(lonely.sum())} training row(s) alone carry their class (positions "
            f"{np.flatnonzero(lonely)[:5].tolist()}): fitted without them the class is "
            "absent and has no finite intercept, so their leave-one-out predictions are "
            "NaN. Add rows of that class, or a penalised intercept / damping.",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )


#: ``newton_steps="auto"`` steps until the fold objective's gradient stops decreasing
#: at floating-point precision, at most this many steps (then a ConvergenceWarning).
CV_MAX_NEWTON_STEPS = 50

#: A fixed number of Newton steps warns when the next step would still move some
#: fold's outputs (decision values) by more than this (a logit: at most 1.25% in a
#: probability; a log-mean: 5% of a mean).
CV_STEP_WARN = 0.05


@warns_once_per_call  # "auto" steps that stop short warn once, not once per fold
def cross_val_outputs(est, cv=None, *, groups=None, newton_steps=1):
    """Outputs of every training row from the model fitted without its fold.

    Parameters
    ----------
    est : fitted InfluenceMixin estimator
    cv : int, cross-validation generator or iterable, default=None
        As in :func:`sklearn.model_selection.cross_val_predict` (``None``: 5
        folds, stratified for classifiers, not shuffled), so the folds are
        scikit-learn's.
    groups : array-like of shape (n_train,), default=None
        Group labels for a group splitter, as in ``cross_val_predict``.
    newton_steps : int or "auto", default=1
        Newton steps per fold from the full fit. The first uses the full
        Hessian with the fold's curvature removed (no pass over the data);
        each further step re-evaluates the loss on the fold's complement, so
        enough steps reproduce the refits to the Newton tolerance. ``"auto"``
        steps until the fold objective's gradient stops decreasing at
        floating-point precision (at most ``CV_MAX_NEWTON_STEPS``, else one
        ConvergenceWarning naming the folds): the refits' predictions. After a fixed number of steps the next step is estimated
        for every fold at once (two passes over the rows, a solve with one
        fold's factor) and, when it would still move a fold's outputs by more
        than ``CV_STEP_WARN``, a UserWarning says by how much.

    Returns
    -------
    ndarray of shape (n_train, K)
    """
    from sklearn.model_selection import check_cv

    auto = isinstance(newton_steps, str) and newton_steps == "auto"
    if not auto and (isinstance(newton_steps, bool)
                     or not isinstance(newton_steps, (int, np.integer)) or newton_steps < 1):
        raise ValueError(f"newton_steps must be a positive integer or 'auto'; got "
                         f"{newton_steps!r}.")
    surrogate = not est._expects_stationary()  # e.g. a smooth hinge's influence_t
    if surrogate and (auto or newton_steps > 1):
        raise ValueError(
            "Further Newton steps converge to the fold refits of the influence objective "
            f"(influence_t={getattr(est, 'influence_t', None)!r}), not of the fitted model; "
            "use newton_steps=1, or influence_t=None."
        )
    state = est._in_memory(est._state(), "cross_val_outputs")
    _warn_penalty_held(est, "approximate K-fold predictions")
    if state.P > AUTO_DIRECT_MAX_PARAMS:
        raise ValueError(
            f"Approximate cross-validation factors one {state.P} x {state.P} Hessian per "
            f"fold; above {AUTO_DIRECT_MAX_PARAMS} parameters use leave-one-out "
            "predictions from the one factorisation (loo_predict_proba(); "
            "find_label_issues(..., method='loo')) or "
            "sklearn.model_selection.cross_val_predict."
        )
    y = est._fit_y
    # a scikit-learn classifier read by explain() is wrapped: its classes_ say what it is
    splitter = check_cv(5 if cv is None else cv, y, classifier=hasattr(est, "classes_"))
    n, K, D, P = state.n, state.K, state.D, state.P
    model, op, ident = state.model, state.op, IdentityFeatures()
    H_full = state.hessian()
    flat = np.zeros((P, P)) if op.N is None else op.null_scale * (op.N @ op.N.T)
    scale = np.diag(H_full) + np.diag(flat)
    undefined = []  # rows of folds whose refit is not unique where they are predicted
    left = 0.0  # the largest change of a fold's outputs the next step would still make
    checked, chord = [], None  # (fold, its parameters, its penalty) after fixed steps
    unconverged = []  # folds "auto" left at its step budget
    zeros = np.zeros(P)
    out = np.empty((n, K))
    if groups is not None:
        groups = np.atleast_1d(np.asarray(groups))
        if groups.shape[:1] != (n,):
            raise ValueError(f"groups has {len(groups)} entries for {n} training rows; "
                             "pass one group label per training row, in fit order.")
    pairs = [(np.asarray(train), np.asarray(fold))
             for train, fold in splitter.split(np.zeros((n, 1)), y, groups)]
    folds = [fold for _, fold in pairs]
    for j, (train, fold) in enumerate(pairs):
        for name, idx in (("test", fold), ("training", train)):
            if idx.dtype == bool:
                raise ValueError(
                    f"Fold {j}'s {name} rows are a boolean mask; pass positions, e.g. "
                    "np.flatnonzero(mask), as cross_val_predict takes them.")
            integer = idx.dtype.kind in "iu"
            bad = idx[(idx < 0) | (idx >= n)] if integer else idx
            if bad.size:
                raise ValueError(
                    f"Fold {j}'s {name} rows are not positions 0 .. {n - 1} of the "
                    f"{n} training rows: {bad[:3].tolist()}.")
        if train.size + fold.size != n or np.intersect1d(train, fold).size \
                or np.unique(train).size != train.size:
            raise ValueError(
                f"Fold {j} trains on {train.size} rows, not on the {n - fold.size} outside "
                "its test fold: approx_cross_val_predict steps from the full fit to each "
                "fold's refit on all the other rows (KFold-like splitters); use such a "
                "splitter, or sklearn's cross_val_predict for other training sets.")
    covered = np.bincount(np.concatenate(folds).astype(np.intp), minlength=n) if folds else \
        np.zeros(n, dtype=np.intp)
    if covered.shape[0] != n or np.any(covered != 1):
        missing, repeated = int(np.sum(covered[:n] == 0)), int(np.sum(covered[:n] > 1))
        raise ValueError(
            "approx_cross_val_predict needs test folds that partition the training rows, "
            f"as cross_val_predict does: here {missing} row(s) are in no test fold and "
            f"{repeated} in several (a ShuffleSplit-like or LeavePGroupsOut splitter); use "
            "KFold, StratifiedKFold, GroupKFold or LeaveOneGroupOut.")
    if hasattr(est, "classes_"):
        _check_folds_keep_every_class(est, state.s, folds)
    for j, fold in enumerate(folds):
        # the fold's part of H and of the gradient at theta_hat, over bounded chunks
        H_fold, g_fold = np.zeros((P, P)), np.zeros(P)
        for part in row_chunks(len(fold), P):
            rows = fold[part]
            H_fold += hessian(ident, state.Phi[rows], op.A[rows], state.s[rows], n,
                              state.intercept, zeros)
            g_fold += np.einsum("i,ip->p", state.s[rows], state.train_gradients(rows)) / n
        pen = op.pen
        if state.share is not None:
            # the fold takes its share of the penalty with it (GLMs normalise by sum s)
            kept = 1.0 - state.s[fold].sum() / state.s.sum()
            H_fold += np.diag((1.0 - kept) * pen)
            pen = kept * pen
        # the gradient at the fit corrects for a fit short of the optimum; a surrogate
        # objective's gradient there (influence_t) is not an optimisation error
        g_fit = zeros if surrogate else state.grad
        H_rest = H_full - H_fold + flat
        null = solver = None
        try:  # judged against the full Hessian's curvature, parameter by parameter
            solver = DirectSolver(H_rest, scale=scale)
            step = solver.solve(g_fit - g_fold)
        except SingularHessianError:
            # without the fold some direction has no curvature left (e.g. a feature
            # seen only in the fold, with no penalty): the refits differ along it, so
            # only the rows whose outputs it moves have no answer (NaN, as rows of
            # leverage 1 in leave-one-out); the rest are predicted from the step on
            # its complement
            step, null = _step_off_null(H_rest, scale, g_fit - g_fold)
        Theta = state.Theta - step.reshape(K, D)
        s = state.s.copy()
        s[fold] = 0.0  # the objective without the fold: its rows weigh nothing
        if auto or newton_steps > 1:
            # damped steps (a backtracking line search): undamped ones diverged on
            # smooth hinges, whose curvature changes fast
            # "auto": to the floor float64 allows (a fixed gradient size stopped short
            # of the refits of ill-conditioned fits: C=1000 was 1e-5 off)
            Theta, steps_taken = fit_newton(
                model.loss, state.Phi, est._fit_Y, s, state.intercept, pen, Theta,
                tol=0.0, max_iter=CV_MAX_NEWTON_STEPS if auto else newton_steps - 1,
                warn=False, flat=flat)
            if auto and steps_taken >= CV_MAX_NEWTON_STEPS:
                unconverged.append(j)
        if not auto and not surrogate and solver is not None:
            checked.append((fold, Theta, pen))
            chord = solver
        for part in row_chunks(len(fold), D):
            rows = fold[part]
            out[rows] = outputs_at(state.Phi[rows], Theta, state.intercept)
            if null is not None:  # rows whose outputs move along a flat direction
                moved = _moved_by(augment(state.Phi[rows], state.intercept), null, K)
                out[rows[moved]] = np.nan
                undefined.append(rows[moved])
    if checked:
        # how far the next step would still move the folds' outputs: about the error
        # left (Newton's error shrinks quadratically)
        left = _next_step_moves(state, est._fit_Y, checked, chord)
    if surrogate:
        warnings.warn(
            f"With influence_t={getattr(est, 'influence_t', None)!r} the folds' step is "
            "one Newton step of the smoothed objective, and how far it lands from refits "
            f"of the fitted model (t={getattr(est, 't', None)!r}) is not estimated: on "
            "breast_cancer at t=0.01, influence_t=0.1 it was 7.4 off in decision values. "
            "Check it against sklearn's cross_val_predict, or use influence_t=None (steps "
            "checked against the refits).",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    if unconverged:
        warnings.warn(
            f"newton_steps='auto' used all {CV_MAX_NEWTON_STEPS} Newton steps in "
            f"{len(unconverged)} of {len(folds)} folds (folds {unconverged}) without "
            "settling at the refit's optimum: their predictions may be far from the "
            "refits' (a smooth hinge with a small t changes curvature too fast for Newton's "
            "method; an unpenalised fit may have no optimum). Check them with sklearn's "
            "cross_val_predict.",
            ConvergenceWarning,
            stacklevel=user_stacklevel(),
        )
    if left > CV_STEP_WARN:
        warnings.warn(
            f"{newton_steps} Newton step{'s' if newton_steps > 1 else ''} per fold "
            f"leave{'' if newton_steps > 1 else 's'} the predictions short of the refits: "
            "the next step would still move a "
            f"fold's outputs by up to {left:.2g} (decision values). Use newton_steps='auto' "
            "(steps until the refits), or sklearn's cross_val_predict.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    if undefined and sum(r.size for r in undefined):
        rows = np.sort(np.concatenate(undefined))
        warnings.warn(
            f"{rows.size} training row{'s are' if rows.size > 1 else ' is'} predicted by a "
            "direction of the parameters that no row outside their fold constrains (e.g. "
            "a feature or category seen only in the fold, with no penalty): the refit "
            "without the fold is not unique there, so their cross-validated predictions "
            "are NaN (positions "
            f"{rows[:5].tolist()}{'...' if rows.size > 5 else ''}). Add a penalty (a "
            "finite C, alpha > 0) if finite predictions are wanted.",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    return out


def _next_step_moves(state, Y, checked, chord):
    """The largest change of a fold's outputs that one more Newton step would make,
    for every fold in ``checked`` at once: two passes over the rows for all folds'
    objective gradients (outputs, then gradients, by one product each), and steps by
    ``chord``, one fold's factor (the Hessian without one fold is about the same for
    every fold: an estimate within about 25%, for a warning)."""
    model, n, K, D, d = state.model, state.n, state.K, state.D, state.d
    f = len(checked)
    Thetas = np.stack([Theta for _, Theta, _ in checked])  # (f, K, D)
    W = Thetas[:, :, :d].reshape(f * K, d)
    b = Thetas[:, :, d].reshape(f * K) if state.intercept else 0.0
    fold_of = np.full(n, -1)
    for j, (fold, _, _) in enumerate(checked):
        fold_of[fold] = j
    grads = np.zeros((f, K, D))
    for rows in row_chunks(n, d + 2 * f * K):
        Phi = state.Phi[rows]
        F = (np.asarray(Phi @ W.T) + b).reshape(-1, f, K)
        Z = np.empty_like(F)
        for j in range(f):  # a loop over folds
            weight = np.where(fold_of[rows] == j, 0.0, state.s[rows])
            Z[:, j, :] = output_derivatives(model.loss, Y[rows], F[:, j, :], order=1) \
                * weight[:, None]
        Z = Z.reshape(-1, f * K)
        grads[:, :, :d] += np.asarray(Phi.T @ Z).T.reshape(f, K, d)
        if state.intercept:
            grads[:, :, d] += Z.sum(axis=0).reshape(f, K)
    grads /= n
    grads += np.stack([pen.reshape(K, D) * Theta for _, Theta, pen in checked])
    steps = chord.solve(grads.reshape(f, K * D).T).T.reshape(f, K, D)
    left = 0.0
    for j, (fold, _, _) in enumerate(checked):
        for part in row_chunks(len(fold), D):
            moved = outputs_at(state.Phi[fold[part]], steps[j], state.intercept)
            if state.op.N is not None:  # softmax: a shift common to a row's outputs is none
                moved -= moved.mean(axis=1, keepdims=True)
            left = max(left, float(np.abs(moved).max(initial=0.0)))
    return left


def _check_folds_keep_every_class(est, s, folds):
    """Refuse folds without which some class has no (weighted) row left: the refit
    would have no optimum (that class's outputs run off to minus infinity), and
    ``cross_val_predict``'s refit would not know the class."""
    classes = est.classes_
    y = np.searchsorted(classes, est._fit_y)
    total = np.bincount(y, weights=s > 0, minlength=len(classes))
    for j, fold in enumerate(folds):
        left = total - np.bincount(y[fold], weights=s[fold] > 0, minlength=len(classes))
        if np.any(left == 0):
            missing = classes[left == 0].tolist()
            raise ValueError(
                f"The training rows outside test fold {j} hold no row of class "
                f"{missing[0] if len(missing) == 1 else missing!r}: the refit without the "
                "fold would not know it (its outputs run off to minus infinity, no "
                "optimum). Use folds that keep every class in training, e.g. "
                "StratifiedKFold (the default for classifiers), or fewer folds.")


def _step_off_null(H, scale, b):
    """``H^+ b`` on the complement of ``H``'s null space, judged and solved after
    equilibration by ``scale`` (the full Hessian's diagonal), and that null space
    (``(P, r)``, orthonormal in the equilibrated coordinates, mapped back)."""
    from .solvers import RCOND_SINGULAR

    e = 1.0 / np.sqrt(scale)
    lam, V = np.linalg.eigh(H * e[:, None] * e[None, :])
    # the factorisation's verdict came from a 1-norm condition estimate, up to P times
    # the 2-norm one: as loose here, and at least the direction that failed it
    flat = lam <= RCOND_SINGULAR * len(lam) * max(lam[-1], np.finfo(float).tiny)
    flat[0] = True
    Vk, lk = V[:, ~flat], lam[~flat]
    step = e * (Vk @ ((Vk.T @ (e * b)) / lk))
    null = e[:, None] * V[:, flat]
    return step, null / np.linalg.norm(null, axis=0)


def _moved_by(Phi_t, null, K):
    """Rows whose outputs change along some column of ``null`` (beyond rounding)."""
    D = Phi_t.shape[1]
    N3 = null.reshape(K, D, -1)
    change = np.abs(np.einsum("id,kdr->ikr", Phi_t, N3)).max(axis=(1, 2))
    size = np.linalg.norm(Phi_t, axis=1) * np.abs(N3).max(axis=(0, 1)).max()
    return change > 1e-8 * np.maximum(size, np.finfo(float).tiny)


def log_probabilities(model, F):
    """``log predict_proba`` from the outputs ``F`` (n, K) without rounding the small
    probabilities to 0 first: ``-log(1 + e^-f)`` / log-softmax."""
    from scipy.special import logsumexp

    with np.errstate(invalid="ignore"):  # rows without an answer stay NaN, said once
        if F.shape[1] == 1:  # one output: the log-odds of classes_[1]
            return np.column_stack([-np.logaddexp(0.0, F[:, 0]),
                                    -np.logaddexp(0.0, -F[:, 0])])
        if type(model.loss) is OneVsRestLogLoss:  # normalised one-vs-rest sigmoids
            log_p = -np.logaddexp(0.0, -F)
            return log_p - logsumexp(log_p, axis=1, keepdims=True)
        return F - logsumexp(F, axis=1, keepdims=True)


def predicted_labels(classes, F):
    """The classes that outputs (or probabilities) ``F`` (n, K) predict: the sign of
    one output, else the largest; None for rows without an answer (NaN), not a
    class."""
    if F.shape[1] == 1:
        labels = classes[(F[:, 0] > 0).astype(int)]
    else:
        labels = classes[np.argmax(np.where(np.isnan(F), -np.inf, F), axis=1)]
    known = ~np.isnan(F).any(axis=1)
    if known.all():
        return labels
    labels = labels.astype(object)
    labels[~known] = None
    return labels


def respond(est, model, F, method, spell=_as_argument):
    """Outputs ``F`` (n, K) as scikit-learn's ``predict_proba`` / ``decision_function`` /
    ``predict`` would return them (``spell``: see :func:`response_function`)."""
    if method == "predict" and hasattr(est, "classes_"):
        return predicted_labels(est.classes_, F)
    r, squeeze = response_function(est, model, method, spell)
    R = np.asarray(r(F))
    if method == "predict_proba" and squeeze:
        return np.column_stack([1.0 - R[:, 0], R[:, 0]])
    # as the estimator's own predict: LinearRegression fitted on y of shape (n, 1) keeps
    # coef_ of shape (1, d) and predicts (n, 1); Ridge keeps (d,) and predicts (n,)
    coef = getattr(getattr(est, "estimator", est), "coef_", None)
    if squeeze and method == "predict" and np.ndim(coef) == 2:
        return R
    return R[:, 0] if squeeze else R
