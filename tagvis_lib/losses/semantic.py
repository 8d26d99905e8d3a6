"""The semantic cross-entropy of paper eq. (7) (``L_crossentropy``), with an ignore value."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..constants import IGNORE_INDEX


def _checked(logits: Tensor, semantic: Tensor, background_weight: float) -> tuple[Tensor, Tensor, Tensor]:
    """Shapes checked; logits in at least float32, labels as long on their device, the (C+1,) class weights."""
    if logits.dim() != 5 or semantic.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(
            f"expected logits (B, C+1, T, H, W) and semantic (B, T, H, W), "
            f"got {tuple(logits.shape)} and {tuple(semantic.shape)}"
        )
    target = semantic.to(device=logits.device, dtype=torch.long)
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    weight = torch.ones(logits.shape[1], dtype=logits.dtype, device=logits.device)
    weight[0] = background_weight
    return logits, target, weight


def semantic_cross_entropy(logits: Tensor, semantic: Tensor, ignore_index: int = IGNORE_INDEX,
                           background_weight: float = 1.0) -> Tensor:
    """Mean per-pixel cross-entropy over the pixels whose label is not ``ignore_index``.

    ``background_weight`` weighs the background pixels (label 0) against the object pixels (weight 1);
    the mean is then the weighted one, ``sum w_i CE_i / sum w_i``. 1.0 is the paper's plain mean.

    ``logits``: (B, C+1, T, H, W), channel 0 background; ``semantic``: (B, T, H, W) int class index
    ``0..C`` or ``ignore_index``. Returns a scalar, computed in float32 (float64 stays). When every pixel is ignored
    the result is 0, still attached to the graph of ``logits`` (so ``backward`` works, with zero gradient).
    """
    logits, target, weight = _checked(logits, semantic, background_weight)
    total = F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index, reduction="sum")
    labelled = target[target != ignore_index]
    denominator = weight[labelled].sum() if labelled.numel() else weight.new_ones(())
    return total / denominator


def clip_cross_entropies(logits: Tensor, semantic: Tensor, ignore_index: int = IGNORE_INDEX,
                         background_weight: float = 1.0) -> Tensor:
    """(B,) the :func:`semantic_cross_entropy` of every clip alone, in one pass over the batch.

    Same arguments; clip ``b``'s value is ``semantic_cross_entropy(logits[b:b+1], semantic[b:b+1])``
    (up to float summation order), 0 for a clip whose pixels are all ignored.
    """
    logits, target, weight = _checked(logits, semantic, background_weight)
    per_pixel = F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index, reduction="none")
    labelled = target != ignore_index
    pixel_weight = torch.where(labelled, weight[target.clamp(0, len(weight) - 1)], torch.zeros_like(per_pixel))
    denominator = pixel_weight.flatten(1).sum(1)
    return per_pixel.flatten(1).sum(1) / torch.where(denominator > 0, denominator, torch.ones_like(denominator))
