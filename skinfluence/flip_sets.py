"""How many training rows must go to change a conclusion? (a flip set)

:func:`smallest_flip_set` answers "is this prediction (or the sign of this
coefficient) robust to dropping a few rows of the data?" (Broderick, Giordano &
Meager's question; zaminfluence in R): it removes training rows greedily in the
order of their influence on the quantity, refits (warm-started, the removed
rows' weights set to 0) and re-ranks at the refitted model, until the
quantity changes sign, and reports the set with the refit that confirms it.

The set found is small, not provably the smallest: greedy removal by
first-order influence, re-ranked after every refit, then the shortest prefix of
that removal order that still flips (bisection on refits), is the standard
heuristic (exact search is combinatorial).
"""

from dataclasses import dataclass, field

import numpy as np

from .explain import as_explanation
from ._utils import warns_once_per_call

__all__ = ["FlipSet", "smallest_flip_set"]


@dataclass
class FlipSet:
    """The outcome of :func:`smallest_flip_set`.

    Attributes
    ----------
    rows : ndarray of int
        Positions (fit order) of the removed training rows, in removal order.
    labels : ndarray
        Their labels (the training DataFrame's index, or positions).
    quantity : str
        What was flipped: ``"prediction"`` (the decision value, or for several
        classes the margin of the class predicted at the fitted model over the
        best other class, negative once another class is predicted) or
        ``"coef[<name>]"``.
    value_before, value_after : float
        The quantity at the fitted model and after refitting without ``rows``.
    predicted_after : float
        The first-order prediction of ``value_after`` made before any refit
        (``value_before`` plus the summed removal influence of ``rows``).
    confirmed : bool
        Whether the refit without ``rows`` changed the sign.
    n_refits : int
    history : list of dict
        Per round: rows removed so far, refitted value.
    """

    rows: np.ndarray
    labels: np.ndarray
    quantity: str
    value_before: float
    value_after: float
    predicted_after: float
    confirmed: bool
    n_refits: int
    history: list = field(default_factory=list, repr=False)

    @property
    def size(self):
        return len(self.rows)

    @property
    def fraction(self):
        """The share of the training rows removed."""
        return len(self.rows) / self._n_train if self._n_train else np.nan

    _n_train: int = field(default=0, repr=False)


def _quantity(ex, x_test, coef, predicted=None):
    """``(value, removal influence of every row, name, predicted class)`` at the
    explanation's model. For several classes the value is the margin of the class
    ``predicted`` at the fitted model (its position in ``classes_``) over the best
    other class, so that it turns negative when another class overtakes it."""
    model = ex.model_
    if coef is None:
        if not hasattr(model, "classes_"):
            raise ValueError(
                f"smallest_flip_set(x_test) flips a classifier's predicted class; a "
                f"{type(ex.final_estimator_).__name__}'s prediction has no sign to flip. "
                "Pass coef='<parameter name>' to flip a coefficient's sign, or rank rows "
                "by influence_on_prediction(x_test, kind='newton')."
            )
        F = model.decision_function(ex.transform(x_test))
        F = F.reshape(-1, 1) if F.ndim == 1 else F
        if F.shape[0] != 1:
            raise ValueError(
                f"smallest_flip_set flips one prediction; got {F.shape[0]} test rows. Pass "
                "one row as a one-row DataFrame (X.iloc[[i]] or X.loc[[label]]) or a 2-D "
                "array."
            )
        dF = ex.influence_on_prediction(x_test, kind="remove",
                                        response_method="decision_function")
        if F.shape[1] == 1 and dF.ndim == 2:  # binary: the decision value
            return float(F[0, 0]), dF[0], "prediction", None
        F, dF = F.reshape(-1), dF[0]
        top = int(np.argmax(F)) if predicted is None else predicted
        runner = int(np.argmax(np.where(np.arange(F.size) == top, -np.inf, F)))
        return float(F[top] - F[runner]), dF[:, top] - dF[:, runner], "prediction", top
    names = list(ex.parameter_names())
    if isinstance(coef, str) and coef not in names:
        raise ValueError(f"coef {coef!r} is not a parameter; the parameters are {names}.")
    if not isinstance(coef, (str, int, np.integer)) or isinstance(coef, bool):
        raise ValueError(f"coef must be a parameter name or an integer position; got "
                         f"{coef!r}.")
    j = names.index(coef) if isinstance(coef, str) else int(coef)
    if not 0 <= j < len(names):
        raise ValueError(f"coef must be a parameter name or position 0 .. {len(names) - 1}.")
    state = model._state()
    e = np.zeros(state.P)
    e[state.perm[j]] = 1.0
    S = state.solve_many(e[:, None])
    theta = np.r_[np.ravel(state.Theta[:, :state.d]),
                  state.Theta[:, state.d] if state.intercept else []]
    return (float(theta[j]), model._train_dot(state, S, "remove")[0], f"coef[{names[j]}]",
            None)


@warns_once_per_call
def smallest_flip_set(fitted, x_test=None, *, coef=None, max_fraction=0.1, max_refits=20):
    """A small set of training rows whose removal flips a prediction or a coefficient's sign.

    Parameters
    ----------
    fitted : fitted skinfluence classifier (or regressor for ``coef``), Pipeline,
        search or Explanation -- anything :func:`skinfluence.explain` accepts
    x_test : one raw test row (a one-row DataFrame or 2-D array)
        Flip its predicted class (the sign of the binary decision value, or
        the margin of the predicted class over the runner-up). Ignored with
        ``coef``.
    coef : str or int, optional
        Instead, flip the sign of this parameter (a name from
        ``parameter_names()``, e.g. ``"age"``, or its position in ``theta``).
    max_fraction : float, default=0.1
        Give up beyond this share of the training rows.
    max_refits : int, default=20

    Returns
    -------
    FlipSet
        ``confirmed`` says whether the last refit flipped the sign; when it is
        False the rows are the best attempt within the limits.
    """
    ex = as_explanation(fitted)
    if coef is None and x_test is None:
        raise ValueError("Pass x_test (flip its prediction) or coef (flip that sign).")
    if not 0 < max_fraction <= 1:
        raise ValueError(f"max_fraction must lie in (0, 1]; got {max_fraction!r}.")
    if isinstance(max_refits, bool) or not isinstance(max_refits, (int, np.integer)) \
            or max_refits < 1:
        raise ValueError(f"max_refits must be a positive integer; got {max_refits!r}.")
    n = ex.n_train_
    limit = max(1, int(np.floor(max_fraction * n)))
    value0, change0, name, predicted = _quantity(ex, x_test, coef)
    if value0 == 0:
        raise ValueError(f"The {name} is exactly 0: there is no sign to flip.")
    sign = np.sign(value0)
    weights = np.ones(n) if ex.model_._fit_sample_weight is None \
        else ex.model_._fit_sample_weight.copy()
    removed, history = [], []
    model, value, change = ex, value0, change0
    for _ in range(max_refits):
        # rows not yet removed, most sign-reducing first; take as many as the first
        # order says are needed to reach the other side (at least one)
        candidates = np.setdiff1d(np.flatnonzero(sign * change < 0), removed)
        candidates = candidates[np.argsort(sign * change[candidates], kind="stable")]
        if len(candidates) == 0:
            break
        reach = sign * value + np.cumsum(sign * change[candidates])
        k = int(np.searchsorted(-reach, 0.0, side="right")) + 1  # first index with reach < 0
        k = min(k, len(candidates), limit - len(removed))
        if k <= 0:
            break
        removed.extend(int(i) for i in candidates[:k])
        weights[candidates[:k]] = 0.0
        model = ex._refit(weights)
        value, change, _, _ = _quantity(model, x_test, coef, predicted)
        history.append({"removed": len(removed), "value": value})
        if np.sign(value) != sign or len(removed) >= limit:
            break
    rows = np.asarray(removed, dtype=int)
    flipped = bool(np.sign(value) != sign)
    if flipped and len(rows) > 1:
        # the greedy batch may overshoot: the shortest prefix of the removal order
        # that still flips, by bisection on actual refits
        lo, hi = 0, len(rows)
        while hi - lo > 1 and len(history) < max_refits + 12:
            mid = (lo + hi) // 2
            w = weights.copy()
            w[rows[mid:]] = 1.0 if ex.model_._fit_sample_weight is None \
                else ex.model_._fit_sample_weight[rows[mid:]]
            trial, _, _, _ = _quantity(ex._refit(w), x_test, coef, predicted)
            history.append({"removed": mid, "value": trial})
            if np.sign(trial) != sign:
                hi, value = mid, trial
            else:
                lo = mid
        rows = rows[:hi]
    out = FlipSet(
        rows=rows, labels=ex.training_labels(rows), quantity=name, value_before=value0,
        value_after=float(value), predicted_after=float(value0 + change0[rows].sum()),
        confirmed=flipped, n_refits=len(history), history=history,
    )
    out._n_train = n
    return out
