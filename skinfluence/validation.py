"""Check influence against the truth: retrain without training points.

:func:`retrain_without` refits a fitted influence estimator without each of
some training points (their ``sample_weight`` set to 0, warm-started from the
fitted parameters, so the feature map stays fixed exactly as influence assumes)
and reports the actual change of each test loss next to the predictions
(first order and, optionally, the Newton estimate).
"""

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import pearsonr

from ._dask import is_dask
from ._utils import warns_once_per_call

__all__ = ["RetrainingResult", "retrain_without", "refit_with_weights", "progress_bar"]


def progress_bar(iterable, enabled, desc=None, total=None):
    """``tqdm`` around ``iterable`` when ``enabled`` (tqdm is an optional extra)."""
    if not enabled:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError as exc:  # pragma: no cover - optional
        raise ImportError("progress=True needs tqdm: pip install tqdm") from exc
    return tqdm(iterable, desc=desc, total=total, leave=False)


def refit_with_weights(estimator, sample_weight, X=None, y=None):
    """Refit a fitted influence estimator (or explanation) with other sample weights.

    Warm-started from the fitted parameters when the estimator supports it.
    ``X``/``y`` default to the stored training data (as the final model sees it).
    """
    return estimator._refit(sample_weight, X=X, y=y)


def _base_weights(estimator):
    sw = estimator._fit_sample_weight
    return np.ones(estimator._fit_X.shape[0]) if sw is None else sw.copy()


@dataclass
class RetrainingResult:
    """Predicted and actual test-loss changes when training points are removed.

    Attributes
    ----------
    indices : ndarray of shape (k,)
        Positions (fit order) of the training rows removed, one at a time.
    actual : ndarray of shape (n_test, k)
        Actual change of each test loss after retraining without the row.
    predicted : dict of str -> ndarray of shape (n_test, k)
        Predictions by kind (``"remove"``: first order, ``"newton"``).
    labels : ndarray of shape (k,)
        The removed rows' labels: the index of the training DataFrame (or of
        ``y`` when it was a Series), else their positions -- as in every table.
    test_labels : ndarray of shape (n_test,)
        The test rows' labels (their index, else positions).
    """

    indices: np.ndarray
    actual: np.ndarray
    predicted: dict = field(default_factory=dict)
    labels: np.ndarray = None
    test_labels: np.ndarray = None

    def pearson(self, kind="remove"):
        """Pearson R between predicted and actual changes, pooled over test points."""
        return float(pearsonr(self.predicted[kind].ravel(), self.actual.ravel())[0])

    def to_frame(self):
        """A long pandas DataFrame: test row, training row (both by label), actual, predictions.

        ``train_row`` holds the training rows' labels, the same labels that index
        :func:`~skinfluence.top_training_rows`; ``position`` their positions.
        """
        import pandas as pd

        n_test, k = self.actual.shape
        labels = self.indices if self.labels is None else self.labels
        tests = np.arange(n_test) if self.test_labels is None else self.test_labels
        data = {
            "test_row": np.repeat(np.asarray(tests), k),
            "train_row": np.tile(np.asarray(labels), n_test),
            "position": np.tile(self.indices, n_test),
            "actual": self.actual.ravel(),
        }
        for kind, values in self.predicted.items():
            data[f"predicted_{kind}"] = values.ravel()
        return pd.DataFrame(data)


@warns_once_per_call
def retrain_without(
    fitted, X_test, y_test, indices=None, *, top=50, kinds=None,
    progress=False,
):
    """Retrain without each training point and compare with influence.

    The final model is refitted with the row's ``sample_weight`` set to 0
    (warm-started; same hyperparameters); a pipeline's preprocessing stays as
    fitted, as influence assumes.

    Parameters
    ----------
    fitted : fitted skinfluence estimator, Pipeline, search or Explanation
        Anything :func:`skinfluence.explain` returns or accepts without data.
    X_test, y_test : raw test rows and labels (a single test point is typical)
    indices : array-like, optional
        The training rows to remove one at a time: positions (fit order), a
        boolean mask, or their labels when the rows carry labels. When the labels
        are integers other than ``0 .. n-1`` (after ``train_test_split``), pass
        labels as a pandas Index (e.g. ``top_training_rows(...).index``) and
        positions as a numpy array; a list is refused as ambiguous. By default
        the ``top`` rows with the largest first-order influence summed over the
        test points.
    top : int, default=50
    kinds : tuple of {"remove", "newton"}, default=None
        Which predictions to report next to the actual changes; None: both, or
        ``("remove",)`` for a model fitted on a dask array (no Newton steps there).
    progress : bool, default=False
        Show a progress bar over the refits (needs tqdm).

    Returns
    -------
    RetrainingResult
    """
    from ._frames import index_of, positions_of, row_labels
    from .explain import as_explanation

    ex = as_explanation(fitted)
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise ValueError(f"top must be a positive integer; got {top!r}.")
    lazy = is_dask(ex.model_._fit_X)
    if kinds is None:
        kinds = ("remove",) if lazy else ("remove", "newton")
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    predicted = {k: ex.influence_on_loss(X_test, y_test, kind=k) for k in kinds}
    if indices is None:
        first = predicted.get("remove")
        if first is None:
            first = ex.influence_on_loss(X_test, y_test, kind="remove")
        totals = np.abs(first).sum(axis=0)
        totals = np.asarray(totals.compute() if lazy else totals)  # n floats
        indices = np.argsort(-totals, kind="stable")[:top]
    indices = positions_of(indices, ex.train_index_, ex.n_train_, "indices")
    if indices.size == 0:
        raise ValueError("indices is empty; pass at least one training row to remove.")
    base = ex.loss_values(X_test, y_test)
    weights = _base_weights(ex.model_)
    actual = np.empty((len(base), len(indices)))
    for col, i in enumerate(progress_bar(indices, progress, "retraining")):
        w = weights.copy()
        w[i] = 0.0
        refit = ex._refit(w)
        actual[:, col] = refit.loss_values(X_test, y_test) - base
    test_index = index_of(X_test, y_test, n=len(base))
    return RetrainingResult(
        indices=indices, actual=actual,
        predicted={k: np.asarray(v[:, indices]) for k, v in predicted.items()},
        labels=row_labels(ex.train_index_, indices),
        test_labels=row_labels(test_index, np.arange(len(base))),
    )
