"""Training: the loop (:func:`train`), devices and DDP, resumable checkpoint state, the metrics log."""
from .distributed import resolve_device
from .logging import MetricsLog, read_metrics
from .trainer import TrainingDiverged, build_optimizer, train

__all__ = ["MetricsLog", "TrainingDiverged", "build_optimizer", "read_metrics", "resolve_device", "train"]
