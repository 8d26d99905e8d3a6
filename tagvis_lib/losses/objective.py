"""The training objective, paper eqs. (6)-(7): weighted tagging terms plus the semantic cross-entropy."""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor, nn

from ..config import LossConfig
from .semantic import clip_cross_entropies, semantic_cross_entropy
from .tagging import TERMS, TaggingLoss

NAMES = TERMS + ("ce",)


def tagging_scale(step: int, loss_cfg: LossConfig) -> float:
    """Factor of the four tagging weights at optimiser step ``step`` (0-based): 0 for the first
    ``loss.tagging_start_step`` steps, then a linear rise over ``loss.tagging_ramp_steps`` to 1."""
    start, ramp = loss_cfg.tagging_start_step, loss_cfg.tagging_ramp_steps
    if step < start:
        return 0.0
    return 1.0 if ramp == 0 else min(1.0, (step - start + 1) / ramp)


class TagVISObjective(nn.Module):
    """``total = sum_k w_k L_k`` over spectra, specter, tempra, temper and ce (weights of ``LossConfig``).

    Called with the network output ``(tags (B, D, T, H, W), logits (B, C+1, T, H, W))`` (a
    ``TagVISOutput`` or any pair) and the collated batch (``"instance_ids"``, ``"semantic"``, both
    (B, T, H, W)). Returns a dict of scalar tensors with the five terms and ``"total"``. With all weights
    1 this is eq. (6) plus eq. (7). A term whose weight is 0 (a Table III "w/o" row) is still computed
    and reported, detached, but not added. ``tag_scale`` (:func:`tagging_scale`) multiplies the four
    tagging weights; at 0 their terms stay in the graph with factor 0, so every parameter still takes
    a (zero) gradient. A non-finite term raises ``FloatingPointError`` naming it.
    """

    def __init__(self, loss_cfg: LossConfig, seed: int = 0):
        super().__init__()
        self.weights = {name: float(getattr(loss_cfg, f"{name}_weight")) for name in NAMES}
        if any(w < 0 for w in self.weights.values()) or not any(w > 0 for w in self.weights.values()):
            raise ValueError(f"loss weights: expected >= 0 and at least one > 0, got {self.weights}")
        if not loss_cfg.background_weight > 0:
            raise ValueError(f"loss.background_weight: expected > 0, got {loss_cfg.background_weight}")
        self.background_weight = float(loss_cfg.background_weight)
        for name in ("tagging_start_step", "tagging_ramp_steps"):
            if getattr(loss_cfg, name) < 0:
                raise ValueError(f"loss.{name}: expected >= 0, got {getattr(loss_cfg, name)}")
        self.tagging = TaggingLoss(
            margin=loss_cfg.margin,
            pixels_per_instance=loss_cfg.pixels_per_instance,
            spectra_reduction=loss_cfg.spectra_reduction,
            temper_max_pairs=loss_cfg.temper_max_pairs,
            seed=seed,
        )

    def forward(self, output: Sequence[Tensor], batch: dict[str, Any], tag_scale: float = 1.0) -> dict[str, Tensor]:
        tags, logits = output[0], output[1]
        terms = self.tagging(tags, batch["instance_ids"])
        terms["ce"] = semantic_cross_entropy(logits, batch["semantic"], background_weight=self.background_weight)
        return self._combine(terms, tag_scale)

    def clip_mean(self, output: Sequence[Tensor], batch: dict[str, Any], seeds: Sequence[int],
                  tag_scale: float = 1.0) -> dict[str, Tensor]:
        """The mean over the B clips of each clip's own objective, in one pass over the batch.

        Clip ``b`` is scored alone (its cross-entropy is the mean over its own pixels), its pixel
        sampling drawn from a generator seeded with ``seeds[b]``: the result equals the mean of
        ``self((tags[b:b+1], logits[b:b+1]), ...)`` over ``b``, each after
        ``self.tagging.generator.manual_seed(seeds[b])`` (up to float summation order).
        """
        tags, logits = output[0], output[1]
        terms = {name: value.mean() for name, value in
                 self.tagging.clip_losses(tags, batch["instance_ids"], seeds=seeds).items()}
        terms["ce"] = clip_cross_entropies(logits, batch["semantic"], background_weight=self.background_weight).mean()
        return self._combine(terms, tag_scale)

    def _combine(self, terms: dict[str, Tensor], tag_scale: float) -> dict[str, Tensor]:
        """The weighted total of the five terms, weight-0 terms detached, every value checked finite."""
        scale = {name: 1.0 if name == "ce" else float(tag_scale) for name in NAMES}
        used = [scale[name] * self.weights[name] * terms[name] for name in NAMES if self.weights[name] > 0]
        report = {name: terms[name] if self.weights[name] > 0 else terms[name].detach() for name in NAMES}
        report["total"] = torch.stack(used).sum()
        order = [*NAMES, "total"]  # the one finite-loss check of training: every term, then their weighted sum
        finite = torch.isfinite(torch.stack([report[name].detach() for name in order])).tolist()
        if not all(finite):
            bad = order[finite.index(False)]
            raise FloatingPointError(f"loss term {bad!r} is not finite ({report[bad].item()})")
        return report
