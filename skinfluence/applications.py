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
from sklearn.base import clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .validation import _base_weights, progress_bar, refit_with_weights

__all__ = [
    "top_training_rows",
    "aggregate_influence",
    "responsible_features",
    "AttackResult",
    "training_set_attack",
    "label_audit",
]


def _training_frame(estimator, X_train=None):
    import pandas as pd

    X = estimator._fit_X if X_train is None else X_train
    if isinstance(X, pd.DataFrame):
        return X
    X = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
    names = getattr(estimator, "feature_names_in_", None)
    columns = list(names) if names is not None else [f"x{j}" for j in range(X.shape[1])]
    index = estimator._fit_index if estimator._fit_index is not None else None
    return pd.DataFrame(X, columns=columns, index=index)


def aggregate_influence(estimator, X_test, y_test, *, kind="remove"):
    """Influence of every training row on the *total* loss of a group of test points.

    ``influence_on_loss(X_test, y_test, kind=kind).sum(axis=0)``, computed with
    one solve against the summed test gradient (never the full matrix).

    Returns
    -------
    ndarray of shape (n_train,)
    """
    estimator._check_kind(kind)
    state = estimator._state()
    X_test, Y_test = estimator._validate_test(X_test, y_test)
    g = estimator._gradients(state, X_test, Y_test).sum(axis=0)
    S = state.solve_many(g[:, None])
    return estimator._train_dot(state, S, kind)[0]


def top_training_rows(estimator, X_test=None, y_test=None, *, k=5, X_train=None):
    """The training rows most responsible for some predictions, as a DataFrame.

    With test rows: the ``k`` most harmful and ``k`` most helpful training rows
    for the total loss of those test rows, scored by the first-order predicted
    change of that loss if the row were removed (``change_if_removed``;
    negative = harmful: removing it lowers the loss). Without test rows: the
    ``k`` rows with the largest self-influence (the rows a label audit checks
    first), scored by ``self_influence``.

    The table is indexed by the training rows' own index when the model was
    fitted on a DataFrame (else by position), and shows their label and
    features.

    Parameters
    ----------
    estimator : fitted InfluenceMixin estimator
    X_test, y_test : optional test rows and labels
    k : int, default=5
    X_train : DataFrame, optional
        The training rows as the user knows them (e.g. before a pipeline's
        transformers), shown instead of the stored model inputs.

    Returns
    -------
    pandas.DataFrame
    """
    check_is_fitted(estimator)
    frame = _training_frame(estimator, X_train)
    label = estimator._fit_y
    if X_test is None:
        score = estimator.self_influence()
        order = np.argsort(score)[:k]
        out = frame.iloc[order].copy()
        out.insert(0, "self_influence", score[order])
    else:
        score = aggregate_influence(estimator, X_test, y_test, kind="remove")
        order = np.r_[np.argsort(score)[:k], np.argsort(score)[::-1][:k]]
        out = frame.iloc[order].copy()
        out.insert(0, "role", np.where(score[order] < 0, "harmful", "helpful"))
        out.insert(0, "change_if_removed", score[order])
    if label is not None:
        out.insert(1, "label", label[order])
    return out


def responsible_features(estimator, X_test, y_test, *, top=20):
    """Which input features of the most responsible training rows drive a group's loss.

    Takes the ``top`` training rows with the largest ``|aggregate_influence|``
    on the group ``(X_test, y_test)`` and averages over them the magnitude of
    the perturbation influence on the group's total loss, feature by feature.

    Returns
    -------
    pandas.Series or ndarray of shape (n_features,)
        Indexed by feature name when the model knows them, largest first.
    """
    infl = aggregate_influence(estimator, X_test, y_test)
    rows = np.argsort(-np.abs(infl))[:top]
    pert = estimator.perturbation_influence(X_test, y_test).sum(axis=0)[rows]
    values = np.abs(pert).mean(axis=0)
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - optional
        return values
    names = getattr(estimator, "feature_names_in_", None)
    index = list(names) if names is not None else [f"x{j}" for j in range(len(values))]
    return pd.Series(values, index=index, name="responsibility").sort_values(ascending=False)


# -------------------------------------------------------------------- attack
@dataclass
class AttackResult:
    """Outcome of :func:`training_set_attack`.

    Attributes
    ----------
    X_poisoned : ndarray
        Training inputs after the attack (only the attacked rows differ).
    rows : list of int
        The training rows that were perturbed in the successful (or last) attempt.
    flipped : ndarray of bool
        For each target, whether its prediction ended up wrong.
    history : list of dict
        One record per step: attempt, step, rows, mean target loss, number of
        targets flipped.
    estimator : fitted estimator
        The model retrained on ``X_poisoned``.
    """

    X_poisoned: np.ndarray
    rows: list
    flipped: np.ndarray
    history: list = field(default_factory=list)
    estimator: object = None

    @property
    def success(self):
        return bool(self.flipped.all())

    @property
    def fraction_flipped(self):
        return float(self.flipped.mean())


DEFAULT_SCHEDULE = ([0], [1], [0, 1], [0, 1, 2], [0, 1, 2, 3, 4], list(range(10)))


def training_set_attack(
    estimator, X_target, y_target, *, step=0.02, box=0.5, max_steps=100,
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

    Parameters
    ----------
    estimator : fitted InfluenceMixin estimator
    X_target, y_target : the test point(s) to flip, with their true labels
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
    check_is_fitted(estimator)
    X0 = estimator._fit_X
    X0 = X0.toarray() if hasattr(X0, "toarray") else np.array(X0, dtype=float)
    y = estimator._fit_y
    weights = _base_weights(estimator)
    y_target = np.asarray(y_target)
    pert = estimator.perturbation_influence(X_target, y_target).sum(axis=0)
    ranking = np.argsort(-np.linalg.norm(pert, axis=1))
    lo, hi = bounds
    history = []
    result = None
    for attempt, ranks in enumerate(schedule):
        rows = [int(ranking[r]) for r in ranks if r < len(ranking)]
        X = X0.copy()
        model = estimator
        for it in progress_bar(range(1, max_steps + 1), progress, f"attack {attempt}"):
            direction = model.perturbation_influence(X_target, y_target).sum(axis=0)[rows]
            X[rows] += step * np.sign(direction)
            X[rows] = np.clip(X[rows], X0[rows] - box, X0[rows] + box)
            if lo is not None or hi is not None:
                X[rows] = np.clip(X[rows], lo, hi)
            model = refit_with_weights(model, weights, X=X, y=y)
            flipped = model.predict(X_target) != y_target
            history.append({
                "attempt": attempt, "step": it, "rows": tuple(rows),
                "target_loss": float(model.loss_values(X_target, y_target).mean()),
                "n_flipped": int(flipped.sum()),
            })
            if flipped.all():
                break
        result = AttackResult(X, rows, flipped, history, model)
        if result.success:
            break
    return result


# --------------------------------------------------------------- label audit
def label_audit(
    estimator, X, y, X_test, y_test, *, flip_fraction=0.1,
    check_fractions=(0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3),
    rankings=("self_influence", "train_loss", "random"), n_repeats=3, random_state=None,
    progress=False,
):
    """Find flipped labels by checking training rows in three orders (paper §5.4).

    For each repeat: flip the labels of a random ``flip_fraction`` of the
    training rows (to another class), fit a clone of ``estimator``, rank the rows
    for checking by self-influence (most negative ``I_up,loss(z_i, z_i)``
    first), by training loss (largest first) and at random; then for each
    fraction of rows checked, fix the flipped labels found among them, refit
    and measure the test accuracy.

    Returns
    -------
    pandas.DataFrame
        Columns ``repeat, ranking, fraction_checked, flips_found,
        test_accuracy``.
    """
    import pandas as pd

    rng = check_random_state(random_state)
    y = np.asarray(y)
    classes = np.unique(y)
    n = len(y)
    records = []
    for rep in progress_bar(range(n_repeats), progress, "label audit"):
        flipped = np.sort(rng.choice(n, size=int(round(flip_fraction * n)), replace=False))
        noisy = y.copy()
        for i in flipped:
            noisy[i] = rng.choice(classes[classes != y[i]])
        model = clone(estimator).fit(X, noisy)
        scores = {
            "self_influence": model.self_influence(),  # most negative first
            "train_loss": -model.loss_values(X, noisy),
            "random": rng.permutation(n).astype(float),
        }
        is_flipped = np.zeros(n, bool)
        is_flipped[flipped] = True
        for name in rankings:
            order = np.argsort(scores[name], kind="stable")
            for frac in check_fractions:
                checked = order[: int(round(frac * n))]
                found = checked[is_flipped[checked]]
                fixed = noisy.copy()
                fixed[found] = y[found]
                acc = model.score(X_test, y_test) if len(found) == 0 else clone(
                    estimator).fit(X, fixed).score(X_test, y_test)
                records.append({
                    "repeat": rep, "ranking": name, "fraction_checked": frac,
                    "flips_found": len(found) / max(len(flipped), 1), "test_accuracy": acc,
                })
    return pd.DataFrame(records)
