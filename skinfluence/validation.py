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
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

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
    """Refit a clone of a fitted influence estimator with other sample weights.

    Warm-started from the fitted parameters when the estimator supports it.
    ``X``/``y`` default to the stored training data.
    """
    X = estimator._fit_X if X is None else X
    y = estimator._fit_y if y is None else y
    refit = clone(estimator)
    if "warm_start" in refit.get_params():
        refit.set_params(warm_start=True)
        refit.coef_ = estimator.coef_.copy()
        refit.intercept_ = np.array(estimator.intercept_, dtype=float, copy=True)
    return refit.fit(X, y, sample_weight=sample_weight)


def _base_weights(estimator):
    sw = estimator._fit_sample_weight
    return np.ones(estimator._fit_X.shape[0]) if sw is None else sw.copy()


@dataclass
class RetrainingResult:
    """Predicted and actual test-loss changes when training points are removed.

    Attributes
    ----------
    indices : ndarray of shape (k,)
        Training rows removed, one at a time.
    actual : ndarray of shape (n_test, k)
        Actual change of each test loss after retraining without the row.
    predicted : dict of str -> ndarray of shape (n_test, k)
        Predictions by kind (``"remove"``: first order, ``"newton"``).
    """

    indices: np.ndarray
    actual: np.ndarray
    predicted: dict = field(default_factory=dict)

    def pearson(self, kind="remove"):
        """Pearson R between predicted and actual changes, pooled over test points."""
        return float(pearsonr(self.predicted[kind].ravel(), self.actual.ravel())[0])

    def to_frame(self):
        """A long pandas DataFrame: test point, training row, actual, predictions."""
        import pandas as pd

        n_test, k = self.actual.shape
        data = {
            "test": np.repeat(np.arange(n_test), k),
            "train_row": np.tile(self.indices, n_test),
            "actual": self.actual.ravel(),
        }
        for kind, values in self.predicted.items():
            data[f"predicted_{kind}"] = values.ravel()
        return pd.DataFrame(data)


def retrain_without(
    estimator, X_test, y_test, indices=None, *, top=50, kinds=("remove", "newton"),
    progress=False,
):
    """Retrain without each training point and compare with influence.

    Parameters
    ----------
    estimator : fitted InfluenceMixin estimator
    X_test, y_test : test rows and labels (a single test point is typical)
    indices : array-like of int, optional
        Training rows to remove one at a time; by default the ``top`` rows with
        the largest first-order influence summed over the test points.
    top : int, default=50
    kinds : tuple of {"remove", "newton"}
        Which predictions to report next to the actual changes.
    progress : bool, default=False
        Show a progress bar over the refits (needs tqdm).

    Returns
    -------
    RetrainingResult
    """
    check_is_fitted(estimator)
    predicted = {k: estimator.influence_on_loss(X_test, y_test, kind=k) for k in kinds}
    if indices is None:
        first = predicted.get("remove")
        if first is None:
            first = estimator.influence_on_loss(X_test, y_test, kind="remove")
        indices = np.argsort(-np.abs(first).sum(axis=0))[:top]
    indices = np.asarray(indices, dtype=int)
    base = estimator.loss_values(X_test, y_test)
    weights = _base_weights(estimator)
    actual = np.empty((len(base), len(indices)))
    for col, i in enumerate(progress_bar(indices, progress, "retraining")):
        w = weights.copy()
        w[i] = 0.0
        refit = refit_with_weights(estimator, w)
        actual[:, col] = refit.loss_values(X_test, y_test) - base
    return RetrainingResult(
        indices=indices, actual=actual,
        predicted={k: v[:, indices] for k, v in predicted.items()},
    )
