"""From network output to instances, and predictions to result files (paper section IV, "Inference")."""
from .export import (
    encode_track,
    paint_proposals,
    predict_split,
    write_davis_sequence,
    write_video_outputs,
    write_ytvis_results,
    ytvis_entries,
)
from .grouping import ClipGroups, InstanceStats, check_inference_config, group_clip, group_tags, grouping_bandwidth
from .predictor import TagSummary, VideoPrediction, predict_dataset, predict_video

__all__ = [
    "ClipGroups",
    "InstanceStats",
    "TagSummary",
    "VideoPrediction",
    "check_inference_config",
    "encode_track",
    "group_clip",
    "group_tags",
    "grouping_bandwidth",
    "paint_proposals",
    "predict_dataset",
    "predict_split",
    "predict_video",
    "write_davis_sequence",
    "write_video_outputs",
    "write_ytvis_results",
    "ytvis_entries",
]
