"""tagvis: reproduction of Kini & Shah, "Tag-Based Attention Guided Bottom-Up Approach for
Video Instance Segmentation" (ICPR 2022).

The public API: configs and profiles, the Table III ablations, the data readers and the synthetic
benchmark, the model, the losses, training, inference and both evaluations.
"""
from .ablations import PAPER_TABLE1, PAPER_TABLE2, PAPER_TABLE3, TABLE3_ABLATIONS
from .config import (
    DataConfig,
    ExperimentConfig,
    InferenceConfig,
    LossConfig,
    ModelConfig,
    TrainConfig,
    apply_overrides,
    profile_config,
)
from .constants import CLIP_LENGTH, IGNORE_INDEX
from .data import DAVISDataset, VideoSample, YTVISDataset, read_video, write_benchmark
from .errors import CheckpointError, DataFormatError, TagvisError
from .inference import VideoPrediction, predict_dataset, predict_video
from .losses import TaggingLoss, TagVISObjective, semantic_cross_entropy
from .metrics import evaluate_davis, evaluate_ytvis
from .model import TagVIS, TagVISOutput, build_model, load_model, save_checkpoint
from .training import train

__version__ = "0.1.0"
