"""Kinetics-400 normalisation of frames (the encoder's input statistics), and its inverse."""
from __future__ import annotations

import torch

from ..constants import KINETICS_MEAN, KINETICS_STD


def _stat(values: tuple[float, ...], like: torch.Tensor, channel_dim: int, scale: float) -> torch.Tensor:
    shape = [1] * like.dim()
    shape[channel_dim] = 3
    return (torch.tensor(values, device=like.device) * scale).view(shape)


def normalize(frames: torch.Tensor, channel_dim: int, scale: float = 255.0) -> torch.Tensor:
    """Float frames in 0..``scale`` with RGB along ``channel_dim`` -> Kinetics-normalised (same shape)."""
    return (frames - _stat(KINETICS_MEAN, frames, channel_dim, scale)) / _stat(KINETICS_STD, frames, channel_dim, scale)


def denormalize(x: torch.Tensor, channel_dim: int) -> torch.Tensor:
    """Kinetics-normalised frames (RGB along ``channel_dim``) -> uint8 0..255 (same shape)."""
    frames = x * _stat(KINETICS_STD, x, channel_dim, 1.0) + _stat(KINETICS_MEAN, x, channel_dim, 1.0)
    return (frames * 255).clamp(0, 255).round().to(torch.uint8)
