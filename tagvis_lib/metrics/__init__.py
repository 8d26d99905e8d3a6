"""Evaluation metrics that reproduce the official YouTube-VIS and DAVIS 2017 evaluations.

The names below are imported on first use.
"""
from ..utils.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    ".davis": ["db_eval_boundary", "db_eval_iou", "evaluate_davis"],
    ".diagnostics": ["Diagnosis", "diagnose_ytvis"],
    ".oracles": ["oracle_bounds", "oracle_results"],
    ".ytvis": ["evaluate_ytvis", "ytvis_track_iou"],
})
