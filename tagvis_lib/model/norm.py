"""Normalisation layers: float32 GroupNorm, a faster channels-last BatchNorm3d, and the encoder's choice.

``ENCODER_NORMS``: ``"batch"`` (torchvision's r2plus1d_18, what a Kinetics checkpoint holds) or
``"group"`` (per-clip statistics: the same numbers in training and evaluation, at any batch size).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from . import precision

ENCODER_NORMS = ("batch", "group")

#: channel counts that PyTorch's channels-last BatchNorm kernels handle at full speed are multiples of this
CHANNEL_MULTIPLE = 16
#: the fold runs for inputs of fewer channels than this and at least FOLD_MIN_ELEMENTS elements; elsewhere
#: its extra calls cost more than they save (``benchmarks/step_split.py``, first table: 11, 36 and 57
#: channels at 8 x 48 x 80 / 8 x 24 x 40 gain 1.2-2.7x, 72 channels at 4 x 24 x 40 loses 0.75x)
FOLD_MAX_CHANNELS = 64
FOLD_MIN_ELEMENTS = 2 ** 19


class GroupNorm(nn.GroupNorm):
    """``nn.GroupNorm`` computed in float32 for half-precision inputs (output float32; float64 stays).

    Under bf16 autocast its statistics are then exact to float32, and on the CPU the float32 kernel
    is several times faster than the bfloat16 one on ``channels_last_3d`` inputs.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float() if x.dtype in (torch.bfloat16, torch.float16) else x)


def fold_factor(channels: int, positions: int) -> int | None:
    """Smallest k in 1, 2, 4, ..., 32 with k * ``channels`` a multiple of :data:`CHANNEL_MULTIPLE`
    that divides ``positions`` (= B*T*H*W); None when there is none."""
    return next((k for k in (1, 2, 4, 8, 16, 32)
                 if (k * channels) % CHANNEL_MULTIPLE == 0 and positions % k == 0), None)


def rows_view(x: torch.Tensor, k: int) -> torch.Tensor:
    """A ``channels_last_3d`` (B, C, T, H, W) tensor as the channels-last (1, k*C, 1, 1, B*T*H*W/k)
    view of the same memory: k consecutive positions side by side in one row (no copy)."""
    c = x.shape[1]
    return x.permute(0, 2, 3, 4, 1).reshape(1, 1, 1, x.numel() // (k * c), k * c).permute(0, 4, 1, 2, 3)


class _FoldedBatchNorm(torch.autograd.Function):
    """BatchNorm of a channels-last (B, C, T, H, W) input computed on its :func:`rows_view`.

    ``batch_stats``: normalise by the input's own statistics (training), otherwise by ``mean``/``var``
    given (running statistics). Returns (y, mean, var), y channels-last like the input, mean and var
    (C,) the statistics used (biased variance), the latter two not differentiable.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, mean, var, eps: float, k: int, batch_stats: bool):  # type: ignore[override]
        c = x.shape[1]
        rows = rows_view(x, k)
        if batch_stats:
            zeros = torch.zeros(k * c, dtype=weight.dtype, device=x.device)
            group_mean, group_var = torch.batch_norm_update_stats(rows, zeros, torch.ones_like(zeros), 0.0)
            group_mean, group_var = group_mean.view(k, c), group_var.view(k, c)
            mean = group_mean.mean(0)
            var = (group_var + (group_mean - mean).square()).mean(0)
        y = torch.empty_like(x, memory_format=torch.channels_last_3d)
        empty = x.new_empty(0, dtype=weight.dtype)
        torch.ops.aten.native_batch_norm.out(
            rows, weight.repeat(k), bias.repeat(k), mean.repeat(k), var.repeat(k), False, 0.0, eps,
            out=rows_view(y, k), save_mean=empty, save_invstd=empty.clone())
        ctx.save_for_backward(x, weight, mean, var)
        ctx.eps, ctx.k, ctx.batch_stats = eps, k, batch_stats
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y, _grad_mean, _grad_var):  # type: ignore[override]
        x, weight, mean, var = ctx.saved_tensors
        eps, k = ctx.eps, ctx.k
        c = x.shape[1]
        rows = rows_view(x, k)
        grad_rows = rows_view(grad_y.contiguous(memory_format=torch.channels_last_3d), k)
        # eval-mode backward: grad_y * weight * invstd, and the sums of grad_y * x_hat and of grad_y
        grad_x, sum_gx, sum_g = torch.ops.aten.native_batch_norm_backward(
            grad_rows, rows, weight.repeat(k), mean.repeat(k), var.repeat(k), None, None, False, eps,
            [True, True, True])
        sum_gx, sum_g = sum_gx.view(k, c).sum(0), sum_g.view(k, c).sum(0)
        if ctx.batch_stats:
            # minus the statistics' share: (weight * invstd / n) * (sum_g + x_hat * sum_gx), an affine map of x
            n = x.numel() // c
            invstd = torch.rsqrt(var + eps)
            scale = weight * invstd / n
            slope = scale * invstd * sum_gx
            offset = scale * sum_g - slope * mean
            share = torch.empty_like(grad_x)
            torch.ops.aten.native_batch_norm.out(
                rows, slope.repeat(k), offset.repeat(k), torch.zeros_like(offset).repeat(k),
                torch.full_like(offset, 1.0 - eps).repeat(k), False, 0.0, eps,
                out=share, save_mean=share.new_empty(0, dtype=weight.dtype),
                save_invstd=share.new_empty(0, dtype=weight.dtype))
            grad_x.sub_(share)
        b, _, t, h, w = x.shape
        grad_x = grad_x.permute(0, 2, 3, 4, 1).reshape(b, t, h, w, c).permute(0, 4, 1, 2, 3)
        return grad_x, sum_gx, sum_g, None, None, None, None, None


class BatchNorm3d(nn.BatchNorm3d):
    """``nn.BatchNorm3d`` (same parameters, buffers and results) that runs channels-last inputs whose
    channel count is not a multiple of 16 on a folded view of the same memory.

    x: (B, C, T, H, W) -> (B, C, T, H, W). PyTorch's channels-last BatchNorm kernels work row by row
    over the C channels and are several times slower when C is not a multiple of the vector width
    (the R(2+1)D midplanes at encoder width 0.25 have 11, 36, 57, ... channels). Viewing k
    consecutive positions as one row of k*C channels (:func:`rows_view`) gives the kernels full
    vectors; the statistics of the k column groups are then pooled per channel. Other inputs
    (contiguous format, C a multiple of 16 or not below :data:`FOLD_MAX_CHANNELS`, fewer than
    :data:`FOLD_MIN_ELEMENTS` elements, no affine parameters, and every device but the CPU, where
    the gain was not measured) take ``nn.BatchNorm3d``'s path; a one-frame channels-last input
    (B, C, 1, H, W) takes it on its 4-D view (:func:`~.precision.one_frame_channels_last`).
    ``benchmarks/step_split.py`` and ``benchmarks/step_parts.py`` measure the gains.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1] if x.dim() == 5 else 0
        k = fold_factor(c, x.numel() // c) if c and c % CHANNEL_MULTIPLE and c < FOLD_MAX_CHANNELS else None
        if (k is None or not self.affine or x.device.type != "cpu" or x.numel() < FOLD_MIN_ELEMENTS
                or x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last_3d)):
            if precision.one_frame_channels_last(x):
                # a copy, not a view: the in-place ReLU after it would take autograd's slow view path
                return self._torch_forward(x.squeeze(2)).unsqueeze(2).clone(memory_format=torch.channels_last_3d)
            return super().forward(x)
        self._check_input_dim(x)
        batch_stats = self.training or self.running_mean is None
        y, mean, var = _FoldedBatchNorm.apply(x, self.weight, self.bias, self.running_mean, self.running_var,
                                              self.eps, k, batch_stats)
        if self.training and self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                n = x.numel() // c
                self.running_mean.lerp_(mean, factor)
                self.running_var.lerp_(var * (n / max(n - 1, 1)), factor)
        return y

    def _torch_forward(self, x: torch.Tensor) -> torch.Tensor:
        """``nn.BatchNorm3d.forward`` for an input of any rank (N, C, ...): the same statistics, updates
        of the running averages and result."""
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        keep = not self.training or self.track_running_stats
        return F.batch_norm(x, self.running_mean if keep else None, self.running_var if keep else None,
                            self.weight, self.bias, batch_stats, factor, self.eps)


def group_norm(channels: int) -> GroupNorm:
    """GroupNorm with up to 8 groups of ``channels`` (works for batch size 1, unlike BatchNorm statistics)."""
    groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
    return GroupNorm(groups, channels)


def encoder_norm(kind: str, channels: int) -> nn.Module:
    """The encoder's normalisation of ``channels`` features: :class:`BatchNorm3d` or :func:`group_norm`."""
    if kind == "batch":
        return BatchNorm3d(channels)
    if kind == "group":
        return group_norm(channels)
    raise ValueError(f"model.encoder_norm must be one of {ENCODER_NORMS}, got {kind!r}")
