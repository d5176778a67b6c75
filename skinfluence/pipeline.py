"""Influence for a fitted :class:`~sklearn.pipeline.Pipeline`."""

from sklearn.utils.validation import check_is_fitted

from ._mixin import InfluenceMixin

__all__ = ["PipelineInfluence"]


class PipelineInfluence:
    """Influence queries on a fitted pipeline whose last step is influence-aware.

    Test rows go through the pipeline's earlier (fitted) steps before they
    reach the final estimator, exactly as in ``pipeline.predict``; training
    points are the rows the final estimator was fitted on, in fit order. The
    earlier steps are held fixed: influence describes re-weighting rows in the
    final model's objective, not refitting the scaler or encoder.

    Parameters
    ----------
    pipeline : Pipeline
        A fitted pipeline whose final step is an :class:`InfluenceMixin`
        estimator (for example :class:`InfluenceLogisticRegression`).

    Examples
    --------
    >>> from sklearn.datasets import load_wine
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skinfluence import InfluenceLogisticRegression, PipelineInfluence
    >>> X, y = load_wine(return_X_y=True)
    >>> pipe = make_pipeline(StandardScaler(),
    ...                      InfluenceLogisticRegression(tol=1e-10, max_iter=1000))
    >>> pipe = pipe.fit(X[:150], y[:150])
    >>> PipelineInfluence(pipe).influence_on_loss(X[150:152], y[150:152]).shape
    (2, 150)
    """

    def __init__(self, pipeline):
        check_is_fitted(pipeline)
        final = pipeline[-1]
        if not isinstance(final, InfluenceMixin):
            raise TypeError(
                f"The pipeline's last step is a {type(final).__name__}, which cannot "
                "compute influence; use an skinfluence estimator such as "
                "InfluenceLogisticRegression as the last step."
            )
        self.pipeline = pipeline
        self.estimator = final

    def transform(self, X):
        """Rows as the final estimator sees them (through the earlier steps)."""
        return self.pipeline[:-1].transform(X) if len(self.pipeline) > 1 else X

    def influence_on_loss(self, X_test, y_test, *, kind="upweight"):
        """:meth:`InfluenceMixin.influence_on_loss` on raw test rows."""
        return self.estimator.influence_on_loss(self.transform(X_test), y_test, kind=kind)

    def self_influence(self, *, kind="upweight"):
        """:meth:`InfluenceMixin.self_influence` of the training rows."""
        return self.estimator.self_influence(kind=kind)

    def influence_on_params(self, *, kind="upweight"):
        """:meth:`InfluenceMixin.influence_on_params` of the final estimator."""
        return self.estimator.influence_on_params(kind=kind)

    def stationarity(self):
        """:meth:`InfluenceMixin.stationarity` of the final estimator."""
        return self.estimator.stationarity()
