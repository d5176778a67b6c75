"""The paper's applications as tools (Koh & Liang, 2017, §5).

- :func:`top_training_rows`: the training rows most responsible for some test
  predictions (or most self-influential), as a table indexed by the rows' own
  index -- understanding model behaviour in a notebook.
- :func:`aggregate_influence`, :func:`responsible_features`: influence summed
  over a group of test points (e.g. a group of errors) and the input features
  that drive it -- debugging domain mismatch.
- :func:`training_set_attack`: the paper's training-set attack: perturb one
  or a few training inputs along the perturbation influence until a target
  test prediction flips; also against a set of test points.
- :func:`label_audit`: rank training rows for checking by self-influence, by
  training loss and at random, fix the flipped labels found, and report the
  fraction of flips found and the test accuracy -- fixing mislabelled examples.
"""

from dataclasses import dataclass, field

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.utils import check_random_state
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from ._frames import label_vector, row_labels
from .explain import as_explanation, explain
from .validation import _base_weights, progress_bar
from ._utils import warns_once_per_call

__all__ = [
    "top_training_rows",
    "aggregate_influence",
    "responsible_features",
    "AttackResult",
    "training_set_attack",
    "label_audit",
]


def _check_k(k, name="k"):
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"{name} must be a positive integer; got {k!r}.")
    return int(k)


def aggregate_influence(fitted, X_test, y_test, *, kind="remove", as_frame=False):
    """Influence of every training row on the *total* loss of a group of test points.

    ``influence_on_loss(X_test, y_test, kind=kind).sum(axis=0)``, computed with
    one solve against the summed test gradient (never the full matrix).

    Parameters
    ----------
    fitted : fitted skinfluence estimator, Pipeline, search or Explanation
        Anything :func:`skinfluence.explain` accepts without data.
    X_test, y_test : raw test rows (through the fitted preprocessing) and labels
    kind : {"remove", "upweight"}, default="remove"
    as_frame : bool, default=False
        A Series indexed by the training rows' labels.

    Returns
    -------
    ndarray of shape (n_train,)
        Positional (fit order); a labelled Series with ``as_frame=True``.
    """
    ex = as_explanation(fitted)
    model = ex.model_
    model._check_kind(kind)
    state = model._state()
    if getattr(state, "is_dask", False):  # lazy blocks of the (m, n) matrix, summed: n floats
        out = np.asarray(ex.influence_on_loss(X_test, y_test, kind=kind).sum(axis=0).compute())
    else:
        S = state.solve_many(_summed_test_gradient(ex, state, X_test, y_test)[:, None])
        out = model._train_dot(state, S, kind)[0]
    return label_vector(out, ex.train_index_, f"influence_{kind}") if as_frame else out


def _summed_test_gradient(ex, state, X_test, y_test):
    Xt, Yt = ex.model_._validate_test(ex.transform(X_test), y_test)
    return ex.model_._gradients(state, Xt, Yt).sum(axis=0)


def top_training_rows(fitted, X_test=None, y_test=None, *, k=5, X_train=None):
    """The training rows most responsible for some predictions, as a DataFrame.

    With test rows: the ``k`` most harmful and ``k`` most helpful training rows
    for the total loss of those test rows, scored by the first-order predicted
    change of that loss if the row were removed (``change_if_removed``;
    negative = harmful: removing it lowers the loss). Without test rows: the
    ``k`` rows with the largest self-influence (the rows a label audit checks
    first), scored by ``self_influence``.

    The table is indexed by the training rows' labels (the index of the
    training DataFrame, or of ``y`` when it was a Series; else positions), and
    shows their label and features: the raw rows when they are known
    (``X_train``, or given to :func:`explain`), else the rows as the final model
    sees them, with the preprocessing's feature names (``sex_female``, ``age``).
    A feature named like one of the table's own columns (``label``, ``role``) is
    shown as ``"label (feature)"``.

    Parameters
    ----------
    fitted : fitted skinfluence estimator, Pipeline, search or Explanation
    X_test, y_test : optional raw test rows and labels
    k : int, default=5
    X_train : DataFrame, optional
        The training rows as the user knows them (before a pipeline's
        transformers), shown instead of the model's inputs.

    Returns
    -------
    pandas.DataFrame
    """
    k = _check_k(k)
    if (X_test is None) != (y_test is None):
        raise ValueError("Pass both X_test and y_test (influence on their loss), or neither "
                         "(the self-influence ranking).")
    ex = as_explanation(fitted)
    label = ex.y_train_
    if X_test is None:
        score = ex.self_influence()
        order = np.argsort(score, kind="stable")[:k]
        out = ex.training_rows(order, X_train)
        _insert(out, 0, "self_influence", score[order])
    else:
        score = aggregate_influence(ex, X_test, y_test, kind="remove")
        harmful = np.argsort(score, kind="stable")[:k]
        helpful = np.argsort(-score, kind="stable")[:k]
        order = np.r_[harmful, helpful[~np.isin(helpful, harmful)]]
        out = ex.training_rows(order, X_train)
        _insert(out, 0, "role", np.where(score[order] < 0, "harmful", "helpful"))
        _insert(out, 0, "change_if_removed", score[order])
    if label is not None:
        _insert(out, 1, "label", np.asarray(label)[order])
    return out


def _insert(table, at, name, values):
    """Insert the library's column ``name``; a feature of that name (a column called
    ``label`` or ``role``) is shown as ``"label (feature)"``."""
    if name in table.columns:
        new = f"{name} (feature)"
        while new in table.columns:
            new += "'"
        table.columns = [new if c == name else c for c in table.columns]
    table.insert(at, name, values)


def responsible_features(fitted, X_test, y_test, *, top=20):
    """Which input features of the most responsible training rows drive a group's loss.

    Takes the ``top`` training rows with the largest ``|aggregate_influence|``
    on the group ``(X_test, y_test)`` and averages over them the magnitude of
    the perturbation influence on the group's total loss, feature by feature.
    Features are the final model's inputs, named after the preprocessing
    (``sex_female``, ``age``).

    Returns
    -------
    pandas.Series or ndarray of shape (n_features,)
        Indexed by feature name, largest first.
    """
    top = _check_k(top, "top")
    ex = as_explanation(fitted)
    model = ex.model_
    state = model._in_memory(model._state(), "responsible_features")
    S = state.solve_many(_summed_test_gradient(ex, state, X_test, y_test)[:, None])
    infl = model._train_dot(state, S, "remove")[0]
    rows = np.argsort(-np.abs(infl), kind="stable")[:top]
    pert = model._perturbation(state, S, rows)[0]  # only the rows it ranks
    values = np.abs(pert).mean(axis=0)
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - optional
        return values
    return pd.Series(values, index=list(ex.feature_names_), name="responsibility").sort_values(
        ascending=False, kind="stable")


# -------------------------------------------------------------------- attack
@dataclass
class AttackResult:
    """Outcome of :func:`training_set_attack`.

    Attributes
    ----------
    X_poisoned : ndarray
        Training inputs, as the final model sees them, after the attack (only
        the attacked rows differ).
    rows : list of int
        Positions (fit order) of the training rows perturbed in the successful
        (or last) attempt.
    labels : list
        The same rows by their labels (see :func:`top_training_rows`).
    flipped : ndarray of bool
        For each target, whether its prediction ended up wrong.
    history : list of dict
        One record per step: attempt, step, rows, mean target loss, number of
        targets flipped.
    estimator : Explanation
        The model retrained on ``X_poisoned`` (preprocessing unchanged); it
        predicts and explains raw rows.
    """

    X_poisoned: np.ndarray = field(repr=False)
    rows: list
    flipped: np.ndarray
    history: list = field(default_factory=list, repr=False)
    estimator: object = field(default=None, repr=False)
    labels: list = field(default_factory=list)

    @property
    def success(self):
        return bool(self.flipped.all())

    @property
    def fraction_flipped(self):
        return float(self.flipped.mean())


DEFAULT_SCHEDULE = ([0], [1], [0, 1], [0, 1, 2], [0, 1, 2, 3, 4], list(range(10)))


@warns_once_per_call
def training_set_attack(
    fitted, X_target, y_target, *, step=0.02, box=0.5, max_steps=100,
    bounds=(None, None), schedule=DEFAULT_SCHEDULE, progress=False,
):
    """Perturb training inputs to flip test predictions (Koh & Liang, 2017, §5.2).

    Training points are ranked by the size of their perturbation influence on the
    targets' total loss. For each attempt of the ``schedule`` (by default the top
    point, then the 2nd, then the top 2, 3, 5 and 10), starting from the clean
    data, the chosen rows take signed-gradient steps of size ``step`` along
    ``I_pert,loss`` (raising the targets' loss), are projected onto an L-inf box
    of half-width ``box`` around their original values and onto ``bounds``, and
    the model is refitted after every step (warm-started), until every target's
    prediction is wrong or ``max_steps`` is reached.

    With one target this is the paper's single-image attack; with several it is
    the variant that attacks a set of test points through the same training
    rows (the paper flipped 16 of 30 test images with one training image).

    For a pipeline the perturbed inputs are the final model's inputs (after the
    preprocessing, which stays as fitted); the targets are given raw.

    Parameters
    ----------
    fitted : fitted skinfluence estimator, Pipeline, search or Explanation
    X_target, y_target : the test point(s) to flip (raw rows), with their true labels
    step : float, default=0.02
    box : float, default=0.5
    max_steps : int, default=100
    bounds : (float or None, float or None), default=(None, None)
        Valid range of every input feature (e.g. pixel levels).
    schedule : sequence of lists of ranks
    progress : bool, default=False

    Returns
    -------
    AttackResult
    """
    max_steps = _check_k(max_steps, "max_steps")
    if not step > 0 or not box > 0:
        raise ValueError(f"step and box must be positive; got step={step!r}, box={box!r}.")
    if len(schedule) == 0:
        raise ValueError("schedule is empty; pass at least one list of ranks to attack.")
    ex = as_explanation(fitted)
    if schedule is DEFAULT_SCHEDULE:  # fewer than 10 training rows: the ranks there are
        schedule = [[r for r in ranks if r < ex.n_train_] for ranks in schedule]
    ranks_given = [r for ranks in schedule for r in np.atleast_1d(ranks)]
    not_integer = [r for r in ranks_given
                   if isinstance(r, (bool, np.bool_)) or not isinstance(r, (int, np.integer))]
    if not_integer:
        raise ValueError(f"schedule ranks are integers 0 .. {ex.n_train_ - 1}; got "
                         f"{not_integer[0]!r}.")
    outside = [r for r in ranks_given if not 0 <= r < ex.n_train_]
    if outside:
        shown = [r.item() if hasattr(r, "item") else r for r in outside[:3]]
        raise ValueError(
            f"schedule holds ranks {shown} outside 0 .. {ex.n_train_ - 1}: a rank "
            f"names the training row with that place in the ranking of the "
            f"{ex.n_train_} rows (0: the most influential).")
    if not hasattr(ex, "classes_"):
        raise ValueError(
            f"training_set_attack flips predicted classes; this "
            f"{type(ex.final_estimator_).__name__} is a regressor. Use "
            "perturbation_influence(X_target, y_target) to see how training inputs move "
            "its loss."
        )
    X0 = ex.model_._fit_X
    X0 = X0.toarray() if hasattr(X0, "toarray") else np.array(X0, dtype=float)
    y = ex.y_train_
    weights = _base_weights(ex.model_)
    y_target = np.atleast_1d(np.asarray(y_target))
    pert = ex.perturbation_influence(X_target, y_target).sum(axis=0)
    wrong = np.flatnonzero(ex.predict(X_target) != y_target)
    if wrong.size:
        raise ValueError(
            f"The model already predicts target(s) at position(s) {wrong[:5].tolist()} "
            "wrongly: the attack flips correct predictions. Pass only targets it "
            "classifies correctly."
        )
    ranking = np.argsort(-np.linalg.norm(pert, axis=1), kind="stable")
    lo, hi = bounds
    history = []
    result = None
    for attempt, ranks in enumerate(schedule):
        rows = [int(ranking[r]) for r in np.atleast_1d(ranks)]
        X = X0.copy()
        model = ex
        for it in progress_bar(range(1, max_steps + 1), progress, f"attack {attempt}"):
            direction = model.perturbation_influence(X_target, y_target).sum(axis=0)[rows]
            X[rows] += step * np.sign(direction)
            X[rows] = np.clip(X[rows], X0[rows] - box, X0[rows] + box)
            if lo is not None or hi is not None:
                X[rows] = np.clip(X[rows], lo, hi)
            model = model._refit(weights, X=X, y=y)
            flipped = model.predict(X_target) != y_target
            history.append({
                "attempt": attempt, "step": it, "rows": tuple(rows),
                "target_loss": float(model.loss_values(X_target, y_target).mean()),
                "n_flipped": int(flipped.sum()),
            })
            if flipped.all():
                break
        result = AttackResult(X, rows, flipped, history, model,
                              row_labels(ex.train_index_, rows).tolist())
        if result.success:
            break
    return result


# --------------------------------------------------------------- label audit
def _is_fitted(estimator):
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        return False
    return True


@warns_once_per_call
def label_audit(
    estimator, X, y, X_test, y_test, *, flip_fraction=0.1,
    check_fractions=(0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3),
    rankings=("self_influence", "cv_self_confidence", "train_loss", "random"), n_repeats=3,
    random_state=None, progress=False,
):
    """Find flipped labels by checking training rows in several orders (paper §5.4).

    For each repeat: flip the labels of a random ``flip_fraction`` of the
    training rows (to another class), fit the model on them, rank the rows for
    checking by self-influence (most negative ``I_up,loss(z_i, z_i)`` first), by
    out-of-sample self-confidence (the approximate 5-fold probability of the
    row's own label, lowest first: confident learning's ranking, from the same
    fit -- see :func:`skinfluence.find_label_issues`), by training loss (largest
    first) and at random; then for each fraction of rows checked, fix the
    flipped labels found among them, refit and measure the test accuracy (one
    refit per distinct set of fixed rows: rankings and fractions that find the
    same flips share it).

    Parameters
    ----------
    estimator : estimator, Pipeline, search or Explanation
        Unfitted: a clone is fitted on every label set. Fitted (anything
        :func:`skinfluence.explain` accepts): its preprocessing stays as fitted
        and only the final step is refitted, on ``X`` through that preprocessing.
    X, y : raw training rows and their true labels
    X_test, y_test : raw test rows and labels
    flip_fraction : float in (0, 1), default=0.1
    check_fractions : fractions of the training rows checked, each in [0, 1]
    rankings : subset of {"self_influence", "cv_self_confidence", "train_loss", "random"}
    n_repeats : int, default=3
    random_state : int, RandomState or None
    progress : bool, default=False

    Returns
    -------
    pandas.DataFrame
        Columns ``repeat, ranking, fraction_checked, flips_found,
        test_accuracy``.
    """
    import pandas as pd

    if not 0 < flip_fraction < 1:
        raise ValueError(f"flip_fraction must lie strictly between 0 and 1; got {flip_fraction!r}.")
    check_fractions = np.asarray(check_fractions, dtype=float)
    if check_fractions.ndim != 1 or np.any(~(check_fractions >= 0) | (check_fractions > 1)):
        raise ValueError("check_fractions must be fractions in [0, 1].")
    known = {"self_influence", "cv_self_confidence", "train_loss", "random"}
    unknown = set(rankings) - known
    if unknown:
        raise ValueError(f"Unknown rankings {sorted(unknown)}; choose from {sorted(known)}.")
    n_repeats = _check_k(n_repeats, "n_repeats")
    fitted = _is_fitted(estimator)
    final = as_explanation(estimator) if fitted else estimator
    if not (hasattr(final, "classes_") if fitted else is_classifier(estimator)):
        raise ValueError(
            "label_audit flips class labels to find them again; this "
            f"{type(estimator).__name__} is not a classifier. For a regressor, rank rows "
            "by self_influence() or retrain_without(...) instead."
        )
    if "cv_self_confidence" in rankings and not (
            final.model_._fitted_model().loss.probabilities
            if fitted else hasattr(estimator, "predict_proba")):
        raise ValueError(
            "The 'cv_self_confidence' ranking needs class probabilities, which this model "
            "does not give; pass rankings=('self_influence', 'train_loss', 'random')."
        )
    rng = check_random_state(random_state)
    y = np.asarray(y)
    classes = np.unique(y)
    if len(classes) < 2:
        raise ValueError("y has a single class; a label audit needs at least two.")
    n = len(y)
    if fitted:
        ex = final
        # the rows it was fitted on keep the weights it was fitted with
        Xt = ex.transform(X)
        weights = _base_weights(ex.model_) if n == ex.n_train_ else np.ones(n)

        def fit(labels):
            return ex._refit(weights, X=Xt, y=labels)
    else:
        def fit(labels):
            return explain(clone(estimator).fit(X, labels), X, labels)

    records = []
    for rep in progress_bar(range(n_repeats), progress, "label audit"):
        flipped = np.sort(rng.choice(n, size=max(1, int(round(flip_fraction * n))),
                                     replace=False))
        noisy = y.copy()
        for i in flipped:
            noisy[i] = rng.choice(classes[classes != y[i]])
        model = fit(noisy)
        scores = {
            "self_influence": model.self_influence,  # most negative first
            "cv_self_confidence": lambda: model.approx_cross_val_predict(
                "predict_proba", newton_steps="auto")[
                np.arange(n), np.searchsorted(model.classes_, noisy)],
            "train_loss": lambda: -model.loss_values(X, noisy),
        }
        scores = {name: scores[name]() for name in rankings if name in scores}
        scores["random"] = rng.permutation(n).astype(float)
        is_flipped = np.zeros(n, bool)
        is_flipped[flipped] = True
        accuracy = {(): model.score(X_test, y_test)}  # one refit per distinct set of fixes
        for name in rankings:
            order = np.argsort(scores[name], kind="stable")
            for frac in check_fractions:
                checked = order[: int(round(frac * n))]
                found = checked[is_flipped[checked]]
                fixed = noisy.copy()
                fixed[found] = y[found]
                key = tuple(np.sort(found).tolist())
                if key not in accuracy:
                    accuracy[key] = fit(fixed).score(X_test, y_test)
                acc = accuracy[key]
                records.append({
                    "repeat": rep, "ranking": name, "fraction_checked": float(frac),
                    "flips_found": len(found) / max(len(flipped), 1), "test_accuracy": acc,
                })
    return pd.DataFrame(records)
