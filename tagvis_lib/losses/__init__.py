"""Losses of paper section III-E: the spatio-temporal tagging loss, the semantic cross-entropy and
the weighted training objective (names imported on first use)."""
from ..utils.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    ".objective": ["TagVISObjective"],
    ".semantic": ["semantic_cross_entropy"],
    ".tagging": ["TaggingLoss", "group_pixels", "safe_norm", "sample_per_segment"],
})
