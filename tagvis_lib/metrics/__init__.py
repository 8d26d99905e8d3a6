"""Evaluation metrics that reproduce the official YouTube-VIS and DAVIS 2017 evaluations."""
from .davis import db_eval_boundary, db_eval_iou, evaluate_davis
from .ytvis import evaluate_ytvis, ytvis_track_iou

__all__ = ["db_eval_boundary", "db_eval_iou", "evaluate_davis", "evaluate_ytvis",
           "ytvis_track_iou"]
