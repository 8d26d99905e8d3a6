"""``Conv3d``: ``nn.Conv3d`` whose factorised kernels run as 2-D convolutions on views of the input.

The (2+1)D encoder and the heads use kernels that span only space ``(1, kh, kw)`` or only time
``(kt, 1, 1)``. Such a convolution equals a 2-D one on a reshaped view:

- ``(1, kh, kw)``, time stride 1 and no time padding, on a ``channels_last_3d`` input: every frame
  alone, the input viewed as ``(B*T, C, H, W)`` without a copy (a contiguous input would need one,
  so it keeps the 3-D convolution);
- ``(kt, 1, 1)``, space stride 1 and no space padding: time against flattened space, input viewed as
  ``(B, C, T, H*W)`` (copy-free in both memory formats); over a single channels-last frame with the
  padding of a centred kernel only the centre tap meets data, so it runs as a 1x1 2-D convolution on
  the ``(B, C, H, W)`` view (:func:`~.precision.one_frame_channels_last`);
- ``(kt, kh, kw)`` with kt > 1 and a spatial extent (the bottleneck's 3x3x3): the sum over the kt
  time taps of ``(kh, kw)`` 2-D convolutions of the (time-padded, time-strided) shifted frames.

The parameters keep their 5-D shapes (torchvision's ``r2plus1d_18`` state-dict layout is unchanged)
and every other kernel (e.g. strided 1x1x1, or a contiguous-format ``(1, kh, kw)``) runs as an
ordinary 3-D convolution. The 2-D path is faster on the CPU and avoids a oneDNN fault of torch 2.13
in which the bfloat16 backward of a 3-D kernel with kt > 1 over few frames returns NaN weight
gradients, or crashes (``benchmarks/bf16_conv_fault.py`` reproduces it for ``(3, 1, 1)``; the
bottleneck's 3x3x3 met it in training on 2-frame clips).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import precision


class Conv3d(nn.Conv3d):
    """Drop-in ``nn.Conv3d`` (same arguments, parameters and results) with the 2-D dispatch above."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C_in, T, H, W) -> (B, C_out, T', H', W')."""
        (kt, kh, kw), (st, sh, sw), (pt, ph, pw) = self.kernel_size, self.stride, self.padding
        plain = self.groups == 1 and self.dilation == (1, 1, 1) and self.padding_mode == "zeros" and x.dim() == 5
        if plain and isinstance(self.padding, tuple):
            b, c, t, h, w = x.shape
            if kt == 1 and st == 1 and pt == 0 and x.is_contiguous(memory_format=torch.channels_last_3d):
                frames = x.transpose(1, 2).reshape(b * t, c, h, w)
                out = F.conv2d(frames, self.weight.squeeze(2), self.bias, (sh, sw), (ph, pw))
                return out.reshape(b, t, *out.shape[1:]).transpose(1, 2)
            if (kh, kw) == (1, 1) and (sh, sw) == (1, 1) and (ph, pw) == (0, 0):
                if t == 1 and kt == 2 * pt + 1 and precision.one_frame_channels_last(x):
                    out = F.conv2d(x.squeeze(2), self.weight[:, :, pt], self.bias)
                    return out.unsqueeze(2)
                out = F.conv2d(x.reshape(b, c, t, h * w), self.weight.flatten(3), self.bias, (st, 1), (pt, 0))
                return out.reshape(b, out.shape[1], out.shape[2], h, w)
            if kt > 1 and (kh, kw) != (1, 1):
                return self._sum_of_frame_convs(x)
        return super().forward(x)

    def _sum_of_frame_convs(self, x: torch.Tensor) -> torch.Tensor:
        """A ``(kt, kh, kw)`` kernel as the sum over its kt time taps of 2-D convs of time-shifted frames."""
        (kt, _, _), (st, sh, sw), (pt, ph, pw) = self.kernel_size, self.stride, self.padding
        b, c = x.shape[:2]
        padded = F.pad(x, (0, 0, 0, 0, pt, pt)) if pt else x
        t_out = (padded.shape[2] - kt) // st + 1
        out = None
        for k in range(kt):
            frames = padded[:, :, k:k + st * (t_out - 1) + 1:st].transpose(1, 2).reshape(b * t_out, c, *x.shape[3:])
            y = F.conv2d(frames, self.weight[:, :, k], self.bias if k == 0 else None, (sh, sw), (ph, pw))
            out = y if out is None else out + y
        return out.reshape(b, t_out, *out.shape[1:]).transpose(1, 2)
