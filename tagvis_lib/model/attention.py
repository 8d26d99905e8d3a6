"""Location embedding and the three attention modules of paper section III (Figs. 3 and 4).

All modules work at the bottleneck resolution h x w = ceil(H/16) x ceil(W/16) and use
multi-head inner-product attention (pre-LayerNorm, residual) through :func:`attention`: on CUDA,
or when the score matrix would be large, :func:`torch.nn.functional.scaled_dot_product_attention`
(a fused backend keeps memory linear in the token count); on the CPU with small score matrices
(the cpu profile's), the same softmax(q k^T / sqrt(d)) v as two matrix products, whose backward
runs faster there than the fused CPU kernel's (``benchmarks/step_parts.py``). Tensor names: B batch, C channels, T frames, T' encoder time steps (ceil(T/8)), N = h*w
tokens per frame, d channels per head.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .conv import Conv3d


#: Largest score matrix (elements over batch, heads, queries and keys) that the CPU computes as
#: explicit matrix products; larger ones take the fused kernel.
EXPLICIT_SCORES_MAX = 1 << 24


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v: q (..., Nq, d), k and v (..., Nk, d) -> (..., Nq, d)."""
    scores = q.shape[:-1].numel() * k.shape[-2]
    if q.device.type != "cpu" or scores > EXPLICIT_SCORES_MAX:
        return F.scaled_dot_product_attention(q, k, v)
    weights = torch.matmul(q * q.shape[-1] ** -0.5, k.transpose(-2, -1)).softmax(-1)
    return torch.matmul(weights.to(v.dtype), v)


def to_tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T, h, w) -> (B, T, h*w, C)."""
    return x.flatten(3).permute(0, 2, 3, 1)


def from_tokens(tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, T, h*w, C) -> (B, C, T, h, w)."""
    b, t, _, c = tokens.shape
    return tokens.permute(0, 3, 1, 2).reshape(b, c, t, h, w)


def coordinate_maps(t: int, h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    """x-y coordinate maps in [-1, 1]: (1, 2, t, h, w), channel 0 = x (along W), 1 = y (along H)."""
    ys = torch.linspace(-1.0, 1.0, h, device=like.device, dtype=like.dtype)
    xs = torch.linspace(-1.0, 1.0, w, device=like.device, dtype=like.dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y]).view(1, 2, 1, h, w).expand(1, 2, t, h, w)


class LocationEmbedding(nn.Module):
    """x-y coordinate maps concatenated to the encoder features, fused back to C channels.

    ``f: (B, C, T', h, w) -> (B, C, T', h, w)`` = Conv1x1x1([f; x; y]). The fusing convolution starts
    as the identity on the feature channels (so pretrained encoder features pass unchanged) plus a
    random linear map of the coordinates. It keeps the width of the features, so the Table III row
    "Location Embedding" removes exactly this module.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.fuse = Conv3d(channels + 2, channels, kernel_size=1)
        with torch.no_grad():
            self.fuse.weight[:, :channels].copy_(torch.eye(channels).view(channels, channels, 1, 1, 1))
            self.fuse.bias.zero_()

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        b, _, t, h, w = f.shape
        coords = coordinate_maps(t, h, w, f).expand(b, -1, -1, -1, -1)
        return self.fuse(torch.cat([f, coords], dim=1))


class TokenAttention(nn.Module):
    """Multi-head attention parts shared by the modules below: LayerNorm, q/kv/out projections.

    ``channels`` is the width of the tokens; ``inner`` (divisible by ``heads``) the width of q, k, v.
    """

    def __init__(self, channels: int, heads: int, inner: int | None = None):
        super().__init__()
        inner = channels if inner is None else inner
        if inner % heads:
            raise ValueError(f"attention width {inner} is not divisible by {heads} heads")
        self.heads = heads
        self.norm = nn.LayerNorm(channels)
        self.to_q = nn.Linear(channels, inner)
        self.to_kv = nn.Linear(channels, 2 * inner)
        self.proj = nn.Linear(inner, channels)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        """(..., N, heads*d) -> (..., heads, N, d)."""
        return x.unflatten(-1, (self.heads, -1)).transpose(-3, -2)

    def queries(self, tokens: torch.Tensor) -> torch.Tensor:
        """(..., N, C) -> (..., heads, N, d)."""
        return self._split(self.to_q(self.norm(tokens)))

    def keys_values(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(..., N, C) -> k, v: (..., heads, N, d) each."""
        k, v = self.to_kv(self.norm(tokens)).chunk(2, dim=-1)
        return self._split(k), self._split(v)

    def merge(self, heads_out: torch.Tensor) -> torch.Tensor:
        """(..., heads, N, d) -> (..., N, C) through the output projection."""
        return self.proj(heads_out.transpose(-3, -2).flatten(-2))


class SpatioTemporalAttention(TokenAttention):
    """Attention from every frame t to several encoder time steps, pooled across time -> u_t.

    ``f: (B, C, T', h, w), num_frames=T -> u: (B, C, T, h, w)``. The encoder leaves T' = ceil(T/8)
    time steps, each summarising 8 frames. Our reading of the paper's "weighted features based on
    attention from multiple frames ... pooling across time":

    1. queries for frame t come from f linearly interpolated in time to the T frames, f_up[t];
    2. for every encoder time step s, the N tokens of frame t attend (softmax over the N tokens of
       step s only) to step s: a_{t,s} = softmax(q_t k_s^T / sqrt(d)) v_s;
    3. average pooling across time: u_t = f_up[t] + W_o mean_s a_{t,s}.

    One softmax per (t, s) pair gives every time step the same weight in u_t; T queries per step
    give per-frame outputs, so this module also lifts the features to full temporal resolution.
    """

    def forward(self, f: torch.Tensor, num_frames: int) -> torch.Tensor:
        b, _, steps, h, w = f.shape
        f_up = F.interpolate(f, size=(num_frames, h, w), mode="trilinear", align_corners=False)
        q = self.queries(to_tokens(f_up).flatten(1, 2))  # (B, heads, T*N, d)
        k, v = self.keys_values(to_tokens(f))  # (B, T', heads, N, d)
        pooled = sum(
            attention(q, k[:, s], v[:, s]) for s in range(steps)
        ) / steps  # (B, heads, T*N, d)
        out = self.merge(pooled).unflatten(1, (num_frames, h * w))  # (B, T, N, C)
        return f_up + from_tokens(out, h, w)


class TagAttention(TokenAttention):
    """Tag-based attention (paper Fig. 3): tags of frame t attend to the tags of all T frames -> w_t.

    ``x: (B, C, T, h, w) -> w: (B, C, T, h, w)``, where ``x`` is the tag embedding made by the tag
    connector from the tags p (pooled to the bottleneck resolution). Queries come from the N tokens
    of frame t, keys and values from the concatenated T*N tokens of frames 1..T; inner-product
    attention. Doing this for every t at once is one attention of the T*N tokens over themselves.
    w_t = x_t + W_o attention.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, t, h, w = x.shape
        tokens = to_tokens(x).flatten(1, 2)  # (B, T*N, C)
        k, v = self.keys_values(tokens)
        out = self.merge(attention(self.queries(tokens), k, v))
        return x + from_tokens(out.unflatten(1, (t, h * w)), h, w)


class SelfAttention(TokenAttention):
    """Self-attention (paper Fig. 4): a non-local block within each frame, q_t -> v_t.

    ``q: (B, C, T, h, w) -> v: (B, C, T, h, w)``; the N tokens of frame t attend to the N tokens of
    the same frame only (frames are batched). v_t = q_t + W_o attention.
    """

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        b, _, t, h, w = q.shape
        tokens = to_tokens(q).flatten(0, 1)  # (B*T, N, C): frames batched
        k, v = self.keys_values(tokens)
        out = self.merge(attention(self.queries(tokens), k, v))
        return q + from_tokens(out.unflatten(0, (b, t)), h, w)
