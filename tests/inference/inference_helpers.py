"""An oracle network and tiny videos for the inference tests.

Videos are grey: background 0, instance k drawn at grey level ``LEVEL * k``. The oracle reads the
grey level back from the Kinetics-normalised input: tag ``3 * k + offset`` (instances separated by
the margin G = 3), background logit high where the level is 0, and class logit high on channel k.
"""
from typing import NamedTuple

import numpy as np
import torch

from tagvis_lib.config import apply_overrides, profile_config
from tagvis_lib.constants import KINETICS_MEAN, KINETICS_STD

LEVEL = 40
#: Two still boxes (top, left, bottom, right) in a 24 x 32 frame.
STILL_BOXES = [(2, 2, 10, 12), (12, 16, 22, 30)]


class Output(NamedTuple):
    tags: torch.Tensor
    logits: torch.Tensor


class Oracle(torch.nn.Module):
    """frames (B, 3, T, h, w) -> tags (B, 1, T, h, w), logits (B, C+1, T, h, w) from grey levels.

    ``clip_offset``: added to the tags times the number of earlier forward calls (tags of separate
    clips then disagree in value, as separate forward passes of a real network may).
    """

    def __init__(self, num_classes: int = 5, clip_offset: float = 0.0):
        super().__init__()
        self.num_classes = num_classes
        self.clip_offset = clip_offset
        self.calls = 0

    def forward(self, x: torch.Tensor) -> Output:
        mean = torch.tensor(KINETICS_MEAN, device=x.device).view(1, 3, 1, 1, 1)
        std = torch.tensor(KINETICS_STD, device=x.device).view(1, 3, 1, 1, 1)
        level = torch.round((x * std + mean).mean(1) * 255 / LEVEL)  # (B, T, h, w): 0 or k
        tags = (3.0 * level + self.clip_offset * self.calls)[:, None]
        logits = torch.stack([torch.where(level == c, 8.0, -8.0) for c in range(self.num_classes + 1)], 1)
        self.calls += 1
        return Output(tags, logits)


def grey_video(boxes: list[list[tuple[int, int, int, int] | None]], height: int = 24, width: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """frames uint8 (L, H, W, 3) and ground-truth labels (L, H, W) from per-frame boxes.

    boxes[t][k] = (top, left, bottom, right) of instance k + 1 in frame t, or None (absent).
    """
    labels = np.zeros((len(boxes), height, width), dtype=np.int64)
    for t, frame_boxes in enumerate(boxes):
        for k, box in enumerate(frame_boxes):
            if box is not None:
                top, left, bottom, right = box
                labels[t, top:bottom, left:right] = k + 1
    frames = np.repeat((labels * LEVEL).astype(np.uint8)[..., None], 3, axis=-1)
    return frames, labels


def oracle_config(height: int = 24, width: int = 32, **overrides):
    """Smoke profile processing frames at their own size (no resize), plus ``inference.*`` overrides."""
    cfg = profile_config("smoke")
    items = {"inference.height": height, "inference.width": width, "inference.min_pixels": 4}
    items.update({f"inference.{k}": v for k, v in overrides.items()})
    return apply_overrides(cfg, items)
