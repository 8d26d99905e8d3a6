"""From network output to instances, and predictions to result files (paper section IV, "Inference").

The names below are imported on first use.
"""
from ..utils.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    ".export": ["encode_track", "paint_proposals", "predict_split", "write_davis_sequence",
                "write_video_outputs", "write_ytvis_results", "ytvis_entries"],
    ".grouping": ["ClipGroups", "InstanceStats", "check_inference_config", "group_clip", "group_tags",
                  "grouping_bandwidth"],
    ".predictor": ["TagSummary", "VideoPrediction", "predict_dataset", "predict_video"],
})
