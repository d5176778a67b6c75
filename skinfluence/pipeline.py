"""``PipelineInfluence``: the name influence on a pipeline had before :func:`explain`."""

from .explain import Explanation

__all__ = ["PipelineInfluence"]


class PipelineInfluence(Explanation):
    """Influence queries on a fitted pipeline (or search) -- :func:`explain` under its old name.

    ``PipelineInfluence(pipe)`` is ``explain(pipe)``: an :class:`Explanation`
    whose methods take raw test rows, which go through the pipeline's earlier
    (fitted) steps before they reach the final estimator, exactly as in
    ``pipe.predict``. The earlier steps are held fixed: influence describes
    re-weighting rows in the final model's objective, not refitting the scaler
    or encoder.

    Parameters
    ----------
    pipeline : fitted Pipeline, GridSearchCV or estimator
        Its final step is a skinfluence estimator (for example
        :class:`InfluenceLogisticRegression`); for scikit-learn's own
        estimators use ``explain(pipeline, X_train, y_train)``.
    influence_solver, damping : optional
        Override the final estimator's settings (on a copy).

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

    def __init__(self, pipeline, *, influence_solver=None, damping=None):
        self.pipeline = pipeline
        super().__init__(pipeline, influence_solver=influence_solver, damping=damping)
        self.fit()

    def get_params(self, deep=True):
        return {"pipeline": self.pipeline, "influence_solver": self.influence_solver,
                "damping": self.damping}
