"""ResNet(2+1)D-18 encoder (Tran et al., CVPR 2018) with torchvision's ``r2plus1d_18`` layout.

At ``width=1.0`` the state-dict keys and tensor shapes are identical to torchvision's
``r2plus1d_18`` (``stem.0/1/3/4``, ``layerK.B.conv1.0.0/0.1/0.3``, ``layerK.B.conv1.1``,
``layerK.0.downsample.0/1``), so a Kinetics-400 checkpoint of that network loads with
``strict=True`` through :func:`load_encoder_weights`. The classifier ``fc`` is not part of the
encoder (it would receive no gradient); its keys are dropped from a checkpoint before the strict
load. ``width`` scales every channel count (rounded, at least 1) for small CPU models; the
(2+1)D middle width follows torchvision's rule (same parameter count as a full 3x3x3 conv).

Strides: the stem halves H and W; layer2..4 halve T, H and W. Every strided convolution maps a
size n to ceil(n / 2), so any T, H, W is accepted: layer4 has ceil(T/8) x ceil(H/16) x ceil(W/16)
positions (for T, H, W that are multiples of 8, 16, 16 exactly T/8 x H/16 x W/16).
"""
from __future__ import annotations

import os
from typing import Any, Mapping, NamedTuple

import torch
from torch import nn

from ..errors import CheckpointError
from .conv import Conv3d
from .norm import encoder_norm
from .safe_load import load_weights_only

#: Output channels of stem conv 1, stem, layer1, layer2, layer3, layer4 at width 1.0.
BASE_CHANNELS = (45, 64, 64, 128, 256, 512)


def scaled(channels: int, width: float) -> int:
    """``channels * width`` rounded to an integer, at least 1."""
    return max(1, int(round(channels * width)))


def midplanes(in_planes: int, planes: int) -> int:
    """Width of the spatial half of a (2+1)D conv: the parameter count of a 3x3x3 conv (torchvision)."""
    return (in_planes * planes * 27) // (in_planes * 9 + 3 * planes)


class Conv2Plus1D(nn.Sequential):
    """(1,3,3) spatial conv, BN, ReLU, (3,1,1) temporal conv; ``stride`` applies to T, H and W."""

    def __init__(self, in_planes: int, out_planes: int, mid_planes: int, stride: int = 1, norm: str = "batch"):
        super().__init__(
            Conv3d(in_planes, mid_planes, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), bias=False),
            encoder_norm(norm, mid_planes),
            nn.ReLU(inplace=True),
            Conv3d(mid_planes, out_planes, (3, 1, 1), stride=(stride, 1, 1), padding=(1, 0, 0), bias=False),
        )


class BasicBlock(nn.Module):
    """Residual block of two (2+1)D convs; ``downsample`` (1x1x1 conv + BN) when the shape changes."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1, norm: str = "batch"):
        super().__init__()
        mid = midplanes(in_planes, planes)
        self.conv1 = nn.Sequential(
            Conv2Plus1D(in_planes, planes, mid, stride, norm), encoder_norm(norm, planes), nn.ReLU(inplace=True)
        )
        self.conv2 = nn.Sequential(Conv2Plus1D(planes, planes, mid, norm=norm), encoder_norm(norm, planes))
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                Conv3d(in_planes, planes, kernel_size=1, stride=stride, bias=False), encoder_norm(norm, planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C_in, T, H, W) -> (B, planes, T', H', W')."""
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + residual)


class EncoderFeatures(NamedTuple):
    """Multi-scale encoder outputs (s = ceil division).

    stem: (B, C1, T, H/2, W/2); layer1: (B, C1, T, H/2, W/2); layer2: (B, C2, T/2, H/4, W/4);
    layer3: (B, C3, T/4, H/8, W/8); layer4: (B, C4, T/8, H/16, W/16).
    """

    stem: torch.Tensor
    layer1: torch.Tensor
    layer2: torch.Tensor
    layer3: torch.Tensor
    layer4: torch.Tensor


class R2Plus1DEncoder(nn.Module):
    """ResNet(2+1)D-18 without pooling and classifier; ``forward`` returns :class:`EncoderFeatures`.

    ``norm``: ``"batch"`` (torchvision's layout) or ``"group"`` (GroupNorm in place of every
    BatchNorm; no Kinetics checkpoint fits it).
    """

    def __init__(self, width: float = 1.0, norm: str = "batch"):
        super().__init__()
        if width <= 0:
            raise ValueError(f"encoder width must be positive, got {width}")
        c_stem, c0, c1, c2, c3, c4 = (scaled(c, width) for c in BASE_CHANNELS)
        self.width = width
        self.channels = (c1, c1, c2, c3, c4)  #: channels of stem, layer1..4
        self.stem = nn.Sequential(
            Conv3d(3, c_stem, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
            encoder_norm(norm, c_stem),
            nn.ReLU(inplace=True),
            Conv3d(c_stem, c0, (3, 1, 1), stride=1, padding=(1, 0, 0), bias=False),
            encoder_norm(norm, c0),
            nn.ReLU(inplace=True),
        )
        self.layer1 = nn.Sequential(BasicBlock(c0, c1, 1, norm), BasicBlock(c1, c1, 1, norm))
        self.layer2 = nn.Sequential(BasicBlock(c1, c2, 2, norm), BasicBlock(c2, c2, 1, norm))
        self.layer3 = nn.Sequential(BasicBlock(c2, c3, 2, norm), BasicBlock(c3, c3, 1, norm))
        self.layer4 = nn.Sequential(BasicBlock(c3, c4, 2, norm), BasicBlock(c4, c4, 1, norm))
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, frames: torch.Tensor) -> EncoderFeatures:
        """frames: (B, 3, T, H, W) Kinetics-normalised -> :class:`EncoderFeatures`."""
        stem = self.stem(frames)
        l1 = self.layer1(stem)
        l2 = self.layer2(l1)
        l3 = self.layer3(l2)
        return EncoderFeatures(stem, l1, l2, l3, self.layer4(l3))


def check_state_dict(module: nn.Module, state: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Raise :class:`CheckpointError` unless ``state`` has exactly the keys and shapes of ``module``.

    The message names ``path``, the first key (in the module's order) that is missing or has
    another shape (with both shapes), or else the first unexpected key.
    """
    expected = module.state_dict()
    for key, tensor in expected.items():
        if key not in state:
            raise CheckpointError(path, key, f"missing from the checkpoint (expected shape {tuple(tensor.shape)})")
        value = state[key]
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(path, key, f"expected a tensor, got {type(value).__name__}")
        if tuple(value.shape) != tuple(tensor.shape):
            raise CheckpointError(
                path, key, f"shape {tuple(value.shape)} in the checkpoint, the model expects {tuple(tensor.shape)}"
            )
    for key in state:
        if key not in expected:
            raise CheckpointError(path, key, "unexpected key: the model has no such parameter or buffer")


def read_encoder_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read an ``r2plus1d_18`` state dict (plain, or under ``"state_dict"``/``"model"``); drop ``fc.*``.

    A ``"module."`` prefix (DataParallel checkpoints) is removed. Loaded with ``weights_only=True``.
    """
    if not os.path.isfile(path):
        raise CheckpointError(path, None, "encoder weights file not found (nothing is downloaded)")
    obj = load_weights_only(path)
    if isinstance(obj, dict):
        for wrapper in ("state_dict", "model"):
            if isinstance(obj.get(wrapper), dict):
                obj = obj[wrapper]
                break
    if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
        raise CheckpointError(path, None, "expected a state dict (a dict from parameter name to tensor)")
    state = {k.removeprefix("module."): v for k, v in obj.items()}
    return {k: v for k, v in state.items() if not k.startswith("fc.")}


def load_encoder_weights(encoder: R2Plus1DEncoder, path: str | os.PathLike) -> None:
    """Load a Kinetics-400 ``r2plus1d_18`` checkpoint into ``encoder`` (strict, ``fc`` ignored).

    Raises :class:`CheckpointError` naming ``path``, the first mismatching key and both shapes
    (e.g. when ``encoder`` was built with a width other than 1.0).
    """
    state = read_encoder_state(path)
    check_state_dict(encoder, state, path)
    encoder.load_state_dict(state, strict=True)
