"""The TagVIS network (paper section III-A): encoder, attention modules, heads, checkpoints.

The names below are imported on first use.
"""
from ..utils.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    ".checkpoint": ["load_checkpoint", "load_model", "save_checkpoint"],
    ".encoder": ["R2Plus1DEncoder", "check_state_dict", "load_encoder_weights"],
    ".network": ["TagVIS", "TagVISOutput", "build_model"],
})
