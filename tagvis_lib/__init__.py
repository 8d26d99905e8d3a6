"""tagvis: reproduction of Kini & Shah, "Tag-Based Attention Guided Bottom-Up Approach for
Video Instance Segmentation" (ICPR 2022).

The public API: configs and profiles, the Table III ablations, the data readers and the synthetic
benchmark, the model, the losses, training, inference and both evaluations. Each name is imported
on first use, so ``import tagvis_lib`` loads neither torch nor the other heavy dependencies.
"""
from .utils.lazy import lazy_exports

__version__ = "0.1.0"

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    ".ablations": ["PAPER_TABLE1", "PAPER_TABLE2", "PAPER_TABLE3", "TABLE3_ABLATIONS"],
    ".config": ["DataConfig", "ExperimentConfig", "InferenceConfig", "LossConfig", "ModelConfig",
                "TrainConfig", "apply_overrides", "profile_config"],
    ".constants": ["CLIP_LENGTH", "IGNORE_INDEX"],
    ".data": ["DAVISDataset", "VideoSample", "YTVISDataset", "read_video", "write_benchmark"],
    ".errors": ["CheckpointError", "DataFormatError", "TagvisError"],
    ".inference": ["VideoPrediction", "predict_dataset", "predict_video"],
    ".losses": ["TaggingLoss", "TagVISObjective", "semantic_cross_entropy"],
    ".metrics": ["evaluate_davis", "evaluate_ytvis"],
    ".model": ["TagVIS", "TagVISOutput", "build_model", "load_model", "save_checkpoint"],
    ".training": ["train"],
})
