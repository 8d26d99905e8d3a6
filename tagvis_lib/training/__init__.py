"""Training: the loop (:func:`train`), devices and DDP, resumable checkpoint state, the metrics log.

The names below are imported on first use.
"""
from ..utils.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    ".distributed": ["resolve_device"],
    ".logging": ["MetricsLog", "read_metrics"],
    ".trainer": ["TrainingDiverged", "build_optimizer", "train"],
})
