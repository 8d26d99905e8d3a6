"""The TagVIS network (paper section III-A): encoder, attention modules, heads, checkpoints."""
from .checkpoint import load_checkpoint, load_model, save_checkpoint
from .encoder import R2Plus1DEncoder, check_state_dict, load_encoder_weights
from .network import TagVIS, TagVISOutput, build_model

__all__ = [
    "R2Plus1DEncoder",
    "TagVIS",
    "TagVISOutput",
    "build_model",
    "check_state_dict",
    "load_checkpoint",
    "load_encoder_weights",
    "load_model",
    "save_checkpoint",
]
