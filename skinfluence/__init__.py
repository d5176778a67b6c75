"""skinfluence: influence functions (Koh & Liang, 2017) for scikit-learn estimators."""

from ._mixin import InfluenceMixin, InfluenceModel, StationarityReport
from .exceptions import (
    DampingWarning,
    InfluenceNotDefinedError,
    SingularHessianError,
    StationarityWarning,
)
from ._dask import most_influential, top_k
from .explain import Explanation, explain
from .linear_model import InfluenceLogisticRegression, InfluenceRidge
from .glm import InfluenceGammaRegressor, InfluencePoissonRegressor, InfluenceTweedieRegressor
from .applications import (
    aggregate_influence,
    label_audit,
    responsible_features,
    top_training_rows,
    training_set_attack,
)
from .flip_sets import FlipSet, smallest_flip_set
from .label_issues import find_label_issues
from .pipeline import PipelineInfluence
from .svm import RBFSmoothHingeSVC, SmoothHingeSVC
from .validation import RetrainingResult, retrain_without

__version__ = "0.1.0"

__all__ = [
    "InfluenceMixin",
    "InfluenceModel",
    "InfluenceLogisticRegression",
    "InfluenceRidge",
    "InfluencePoissonRegressor",
    "InfluenceGammaRegressor",
    "InfluenceTweedieRegressor",
    "explain",
    "most_influential",
    "top_k",
    "Explanation",
    "PipelineInfluence",
    "SmoothHingeSVC",
    "RBFSmoothHingeSVC",
    "StationarityReport",
    "retrain_without",
    "RetrainingResult",
    "top_training_rows",
    "aggregate_influence",
    "responsible_features",
    "training_set_attack",
    "label_audit",
    "find_label_issues",
    "smallest_flip_set",
    "FlipSet",
    "InfluenceNotDefinedError",
    "SingularHessianError",
    "StationarityWarning",
    "DampingWarning",
]
