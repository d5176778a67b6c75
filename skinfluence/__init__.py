"""skinfluence: influence functions (Koh & Liang, 2017) for scikit-learn estimators."""

from ._mixin import InfluenceMixin, InfluenceModel, StationarityReport
from .exceptions import InfluenceNotDefinedError, SingularHessianError, StationarityWarning
from .linear_model import InfluenceLogisticRegression
from .pipeline import PipelineInfluence
from .svm import RBFSmoothHingeSVC, SmoothHingeSVC

__version__ = "0.1.0"

__all__ = [
    "InfluenceMixin",
    "InfluenceModel",
    "InfluenceLogisticRegression",
    "PipelineInfluence",
    "SmoothHingeSVC",
    "RBFSmoothHingeSVC",
    "StationarityReport",
    "InfluenceNotDefinedError",
    "SingularHessianError",
    "StationarityWarning",
]
