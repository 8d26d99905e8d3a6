"""The semantic cross-entropy of paper eq. (7) (``L_crossentropy``), with an ignore value."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..constants import IGNORE_INDEX


def semantic_cross_entropy(logits: Tensor, semantic: Tensor, ignore_index: int = IGNORE_INDEX) -> Tensor:
    """Mean per-pixel cross-entropy over the pixels whose label is not ``ignore_index``.

    ``logits``: (B, C+1, T, H, W), channel 0 background; ``semantic``: (B, T, H, W) int class index
    ``0..C`` or ``ignore_index``. Returns a scalar, computed in float32 (float64 stays). When every pixel is ignored
    the result is 0, still attached to the graph of ``logits`` (so ``backward`` works, with zero gradient).
    """
    if logits.dim() != 5 or semantic.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(
            f"expected logits (B, C+1, T, H, W) and semantic (B, T, H, W), "
            f"got {tuple(logits.shape)} and {tuple(semantic.shape)}"
        )
    target = semantic.to(device=logits.device, dtype=torch.long)
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    total = F.cross_entropy(logits, target, ignore_index=ignore_index, reduction="sum")
    counted = (target != ignore_index).sum().clamp(min=1)
    return total / counted
