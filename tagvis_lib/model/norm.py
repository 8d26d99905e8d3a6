"""Normalisation layers: float32 GroupNorm, and the encoder's choice of BatchNorm or GroupNorm.

``ENCODER_NORMS``: ``"batch"`` (torchvision's r2plus1d_18, what a Kinetics checkpoint holds) or
``"group"`` (per-clip statistics: the same numbers in training and evaluation, at any batch size).
"""
from __future__ import annotations

import torch
from torch import nn

ENCODER_NORMS = ("batch", "group")


class GroupNorm(nn.GroupNorm):
    """``nn.GroupNorm`` computed in float32 for half-precision inputs (output float32; float64 stays).

    Under bf16 autocast its statistics are then exact to float32, and on the CPU the float32 kernel
    is several times faster than the bfloat16 one on ``channels_last_3d`` inputs.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float() if x.dtype in (torch.bfloat16, torch.float16) else x)


def group_norm(channels: int) -> GroupNorm:
    """GroupNorm with up to 8 groups of ``channels`` (works for batch size 1, unlike BatchNorm statistics)."""
    groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
    return GroupNorm(groups, channels)


def encoder_norm(kind: str, channels: int) -> nn.Module:
    """The encoder's normalisation of ``channels`` features: ``BatchNorm3d`` or :func:`group_norm`."""
    if kind == "batch":
        return nn.BatchNorm3d(channels)
    if kind == "group":
        return group_norm(channels)
    raise ValueError(f"model.encoder_norm must be one of {ENCODER_NORMS}, got {kind!r}")
