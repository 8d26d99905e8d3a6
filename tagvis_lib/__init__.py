"""tagvis: reproduction of Kini & Shah, "Tag-Based Attention Guided Bottom-Up Approach for
Video Instance Segmentation" (ICPR 2022)."""
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
from .errors import CheckpointError, DataFormatError, TagvisError

__version__ = "0.1.0"
