"""Losses of paper section III-E: the spatio-temporal tagging loss, the semantic cross-entropy and
the weighted training objective."""
from .objective import TagVISObjective
from .semantic import semantic_cross_entropy
from .tagging import TaggingLoss, group_pixels, safe_norm, sample_per_segment

__all__ = ["TaggingLoss", "TagVISObjective", "group_pixels", "safe_norm", "sample_per_segment",
           "semantic_cross_entropy"]
