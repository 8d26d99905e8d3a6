"""TagVIS: the network of paper section III-A, one switch per Table III row.

Data flow (B batch, T frames, H x W input, h x w = ceil(H/16) x ceil(W/16), E = embed_dim)::

    frames (B,3,T,H,W) -> encoder R(2+1)D-18 -> stem, layer1..4      layer4 f: (B,C4,ceil(T/8),h,w)
    f -> location_embedding (x-y maps concatenated, fused)           (B,C4,ceil(T/8),h,w)
      -> st_attention (per-frame queries, pooled over time) -> u     (B,C4,T,h,w)
      -> bottleneck -> b                                             (B,E,T,h,w)
    b -> tag_generator (+ skips) -> tags p                           (B,D,T,H,W)
    b -> self_attention -> v  ("self-attention connector")           (B,E,T,h,w)
    p -> pool to (T,h,w) -> tag_connector -> tag_attention -> w      (B,E,T,h,w)
    v + w -> decoder (+ skips) -> logits                             (B,C+1,T,H,W)

Full temporal and spatial resolution for any T, H, W: every strided encoder conv maps n to
ceil(n/2), so no padding is needed; the spatio-temporal attention makes one output per input frame
(queries from the time-interpolated layer4 features), and the tag generator and the decoder are
upsampling paths with skip connections from layer3 (T/4, H/8), layer2 (T/2, H/4) and layer1
(T, H/2): at each stage the features and the projected skip are resized (trilinear) to
(T, skip height, skip width) and fused by a (1,3,3) conv; the heads run at (T, H/2, W/2) and their
outputs are resized (trilinear, i.e. bilinear per frame) to exactly (T, H, W).

Connectors (the paper: "any input or output link of the module"): the self-attention connector is
the link from the bottleneck to the decoder (identity, no parameters; v = b without the module);
the tag connector is the link from the tags to the decoder, a 1x1x1 MLP that embeds the pooled
D-dim tags into E channels (w = that embedding without the tag-based attention). The decoder sums
the connector outputs, so removing a module or a connector removes exactly its parameters.
``model.tag_trunk_gradient`` < 1 (not in the paper; an option for studying how the tagging terms
and the cross-entropy share the trunk) scales the gradient that reaches ``b`` and the encoder skips
from the tag generator; the forward pass is unchanged. ``model.tag_connector_gradient`` < 1 likewise scales the gradient the
decoder sends back into the tags through the tag connector (0: the tags learn from the tagging loss
alone).
``model.tag_coordinates`` > 0 (not in the paper) adds each pixel's position to the tag generator: a
1x1x1 map of the (row, column) coordinates, ``tag_coordinates`` units per frame height, joins every
stage of its path and its head (zero-initialised, so the untrained network equals the paper's).
``model.tag_appearance`` (not in the paper) likewise adds the input frames themselves, averaged over
each cell of a stage's grid: a zero-initialised 1x1x1 map of the 3 colour channels at every stage
and at the head, so the tags can follow an instance's colour, which the cross-entropy's features
are trained to ignore.
Tags-only row (no decoder, attentions, connectors): ``tags_only_classifier``, a 1x1x1 conv on the
tag generator's last features, still gives the class logits needed for evaluation.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ExperimentConfig, ModelConfig
from .attention import LocationEmbedding, SelfAttention, SpatioTemporalAttention, TagAttention
from .conv import Conv3d
from .encoder import R2Plus1DEncoder, load_encoder_weights
from .norm import ENCODER_NORMS, group_norm
from .precision import apply_memory_format, check_memory_format, torch_memory_format

TAG_ACTIVATIONS = ("none", "sigmoid")


class TagVISOutput(NamedTuple):
    """tags: (B, D, T, H, W); logits: (B, C+1, T, H, W), channel 0 background."""

    tags: torch.Tensor
    logits: torch.Tensor


def conv_norm_relu(cin: int, cout: int, kernel: tuple[int, int, int]) -> nn.Sequential:
    """Conv3d ('same' padding, no bias) + GroupNorm + ReLU."""
    padding = tuple(k // 2 for k in kernel)
    return nn.Sequential(Conv3d(cin, cout, kernel, padding=padding, bias=False), group_norm(cout), nn.ReLU(inplace=True))


def resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Trilinear resize of (B, C, T, H, W) to ``size`` = (T', H', W') (no-op when equal).

    When T' = T the trilinear weights along time are the identity, so the resize is computed as the
    equal bilinear resize of every frame, on a (B*T, C, H, W) view of the same memory (no copy in
    ``channels_last_3d``), which runs about twice as fast on the CPU.
    """
    size = tuple(int(s) for s in size)
    if tuple(x.shape[2:]) == size:
        return x
    if x.shape[2] != size[0]:
        return F.interpolate(x, size=size, mode="trilinear", align_corners=False)
    b, c, t = x.shape[:3]
    frames = x.transpose(1, 2).reshape(b * t, c, *x.shape[3:])
    out = F.interpolate(frames, size=size[1:], mode="bilinear", align_corners=False)
    return out.reshape(b, t, c, *size[1:]).transpose(1, 2)


def float32_head(head: nn.Module, features: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """``resize(head(features), size)`` in float32 with autocast off: (B, C, T, h, w) -> (B, C', T', H, W).

    The last layer of the tag generator and of the decoder stays in float32 under bf16/fp16 autocast,
    so tags and logits (and the gradients the losses send back) keep float32 resolution.
    """
    with torch.autocast(features.device.type, enabled=False):
        return resize(head(features.float() if features.dtype in (torch.bfloat16, torch.float16) else features), size)


class Bottleneck(nn.Sequential):
    """Compresses u_t: (B, C_in, T, h, w) -> (B, E, T, h, w) by a 1x1x1 then a 3x3x3 conv."""

    def __init__(self, in_channels: int, channels: int):
        super().__init__(conv_norm_relu(in_channels, channels, (1, 1, 1)), conv_norm_relu(channels, channels, (3, 3, 3)))


class SkipDecoder(nn.Module):
    """Upsampling path, optionally with encoder skips: (B, E, T, h, w) -> (B, channels[-1], T, H/2, W/2).

    Stage k: features -> 1x1x1 conv to channels[k] -> resize to (T, h_k, w_k), the size of encoder
    layer 3, 2, 1; with skips, + that layer's features by a 1x1x1 conv (lateral) resized alike;
    then a (1,3,3) conv + GroupNorm + ReLU. ``skip_channels`` are those of layer3, layer2, layer1;
    None builds no laterals (the path then sees the encoder only through its input). ``coordinates``
    > 0 adds at each stage a zero-initialised 1x1x1 map of :func:`coordinate_maps` at that scale;
    ``appearance`` a zero-initialised 1x1x1 map of :func:`appearance_maps` of the input frames.
    """

    def __init__(self, in_channels: int, skip_channels: Sequence[int] | None, channels: Sequence[int],
                 coordinates: float = 0.0, appearance: bool = False):
        super().__init__()
        prev = [in_channels, *channels[:-1]]
        self.reduce = nn.ModuleList(Conv3d(p, c, 1) for p, c in zip(prev, channels))
        self.lateral = None if skip_channels is None else nn.ModuleList(
            Conv3d(s, c, 1) for s, c in zip(skip_channels, channels))
        self.coordinate_scale = coordinates
        self.coordinates = None if coordinates <= 0 else nn.ModuleList(zero_conv(c) for c in channels)
        self.appearance = nn.ModuleList(zero_conv(c, 3) for c in channels) if appearance else None
        self.fuse = nn.ModuleList(conv_norm_relu(c, c, (1, 3, 3)) for c in channels)

    def forward(self, x: torch.Tensor, sizes: Sequence[Sequence[int]], skips: Sequence[torch.Tensor] | None = None,
                frames: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, E, T, h, w); ``sizes`` the (h_k, w_k) of the stages; ``skips`` their features (with
        laterals); ``frames`` (B, 3, T, H, W) the network's input (with ``appearance``)."""
        t = x.shape[2]
        for k, (reduce, fuse) in enumerate(zip(self.reduce, self.fuse)):
            size = (t, *sizes[k])
            y = resize(reduce(x), size)
            if self.lateral is not None:
                y = y + resize(self.lateral[k](skips[k]), size)
            if self.coordinates is not None:
                y = y + self.coordinates[k](coordinate_maps(size[1:], self.coordinate_scale, y))
            if self.appearance is not None:
                y = y + self.appearance[k](appearance_maps(frames, size[1:], y))
            x = fuse(y)
        return x


def zero_conv(channels: int, inputs: int = 2) -> nn.Module:
    """Zero-initialised 1x1x1 map of ``inputs`` channels (2 coordinates, 3 colours) to ``channels`` (no
    bias): the extensions of the tag generator start as the paper's network."""
    conv = Conv3d(inputs, channels, 1, bias=False)
    nn.init.zeros_(conv.weight)
    return conv


def coordinate_maps(size: Sequence[int], scale: float, like: torch.Tensor) -> torch.Tensor:
    """(1, 2, 1, h, w) (row, column) of every cell centre of an h x w grid, ``scale`` units per grid
    height (so both axes share one unit), dtype and device of ``like``."""
    h, w = (int(s) for s in size)
    rows = (torch.arange(h, device=like.device, dtype=torch.float32) + 0.5) * (scale / h)
    cols = (torch.arange(w, device=like.device, dtype=torch.float32) + 0.5) * (scale / h)
    maps = torch.stack((rows.view(h, 1).expand(h, w), cols.view(1, w).expand(h, w)))
    return maps.view(1, 2, 1, h, w).to(like.dtype)


def appearance_maps(frames: torch.Tensor, size: Sequence[int], like: torch.Tensor) -> torch.Tensor:
    """(B, 3, T, h, w): ``frames`` (B, 3, T, H, W) averaged over each cell of an h x w grid (adaptive
    average pooling, frame by frame), no gradient, dtype of ``like``."""
    b, c, t = frames.shape[:3]
    h, w = (int(s) for s in size)
    flat = frames.detach().transpose(1, 2).reshape(b * t, c, *frames.shape[3:])
    pooled = flat if tuple(flat.shape[2:]) == (h, w) else F.adaptive_avg_pool2d(flat, (h, w))
    return pooled.reshape(b, t, c, h, w).transpose(1, 2).to(like.dtype)


class TagGenerator(nn.Module):
    """Per-pixel tags p_t for every frame: b (B, E, T, h, w) + skips -> tags (B, D, T, H, W).

    ``forward`` also returns its last features (B, channels[-1], T, H/2, W/2) for the tags-only
    classifier. ``activation="sigmoid"`` bounds the tags to (0, 1) (the abstract's reading).
    """

    def __init__(self, in_channels: int, skip_channels: Sequence[int] | None, channels: Sequence[int], tag_dim: int, activation: str,
                 coordinates: float = 0.0, appearance: bool = False):
        super().__init__()
        self.path = SkipDecoder(in_channels, skip_channels, channels, coordinates, appearance)
        self.head = Conv3d(channels[-1], tag_dim, 1)
        self.head_coordinates = zero_conv(tag_dim) if coordinates > 0 else None
        self.head_appearance = zero_conv(tag_dim, 3) if appearance else None
        self.activation = activation

    def forward(self, b: torch.Tensor, sizes: Sequence[Sequence[int]], skips: Sequence[torch.Tensor] | None,
                size: Sequence[int], frames: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``frames`` (B, 3, T, H, W), the network's input, are needed with ``appearance``."""
        features = self.path(b, sizes, skips, frames)
        plain = self.head_coordinates is None and self.head_appearance is None
        tags = float32_head(self.head if plain else lambda f: self._extended_head(f, frames), features, size)
        return (torch.sigmoid(tags) if self.activation == "sigmoid" else tags), features

    def _extended_head(self, features: torch.Tensor, frames: torch.Tensor | None) -> torch.Tensor:
        """The head plus the maps of the coordinates and of the frames at the features' (h, w)."""
        out = self.head(features)
        if self.head_coordinates is not None:
            out = out + self.head_coordinates(coordinate_maps(features.shape[3:], self.path.coordinate_scale, features))
        if self.head_appearance is not None:
            out = out + self.head_appearance(appearance_maps(frames, features.shape[3:], features))
        return out


class TagConnector(nn.Sequential):
    """Link from the tags to the decoder: pooled tags (B, D, T, h, w) -> embedding (B, E, T, h, w)."""

    def __init__(self, tag_dim: int, channels: int):
        super().__init__(Conv3d(tag_dim, channels, 1), nn.ReLU(inplace=True), Conv3d(channels, channels, 1))


class SemanticDecoder(nn.Module):
    """Semantic segmentation O_{t,c}: x (B, E, T, h, w) + skips -> logits (B, C+1, T, H, W)."""

    def __init__(self, in_channels: int, skip_channels: Sequence[int] | None, channels: Sequence[int], num_outputs: int):
        super().__init__()
        self.path = SkipDecoder(in_channels, skip_channels, channels)
        self.classifier = Conv3d(channels[-1], num_outputs, 1)

    def forward(self, x: torch.Tensor, sizes: Sequence[Sequence[int]], skips: Sequence[torch.Tensor] | None,
                size: Sequence[int]) -> torch.Tensor:
        return float32_head(self.classifier, self.path(x, sizes, skips), size)


def decoder_skips(cfg: ModelConfig) -> bool:
    """Whether the semantic decoder takes encoder skips: ``encoder_skips`` and neither connector cut.

    A "+ Connector" row of Table III removes a link of the decoder; with skips on it also cuts the
    skips, so that no path carries the input video representation into the decoder past the cut.
    """
    return cfg.encoder_skips and cfg.tag_attention_connector and cfg.self_attention_connector


def validate_model_config(cfg: ModelConfig) -> None:
    """Raise ``ValueError`` for a ModelConfig that describes no consistent network."""
    if cfg.num_classes < 1 or cfg.tag_dim < 1 or cfg.embed_dim < 4:
        raise ValueError("model: num_classes and tag_dim must be >= 1 and embed_dim >= 4")
    if cfg.embed_dim % cfg.attention_heads:
        raise ValueError(f"model.embed_dim={cfg.embed_dim} is not divisible by model.attention_heads={cfg.attention_heads}")
    check_memory_format(cfg.memory_format)
    for name in ("tag_trunk_gradient", "tag_connector_gradient"):
        if not 0.0 <= getattr(cfg, name) <= 1.0:
            raise ValueError(f"model.{name}={getattr(cfg, name)}: expected a factor in [0, 1]")
    if not 0.0 <= cfg.tag_coordinates < float("inf"):
        raise ValueError(f"model.tag_coordinates={cfg.tag_coordinates}: expected 0 (off) or a positive scale")
    if cfg.tag_activation not in TAG_ACTIVATIONS:
        raise ValueError(f"model.tag_activation={cfg.tag_activation!r}: expected one of {TAG_ACTIVATIONS}")
    if cfg.encoder_norm not in ENCODER_NORMS:
        raise ValueError(f"model.encoder_norm={cfg.encoder_norm!r}: expected one of {ENCODER_NORMS}")
    if cfg.encoder_weights and cfg.encoder_norm != "batch":
        raise ValueError("model.encoder_weights (a Kinetics r2plus1d_18 checkpoint) needs model.encoder_norm='batch'")
    if cfg.tag_attention and not cfg.tag_attention_connector:
        raise ValueError("model.tag_attention needs model.tag_attention_connector (its link to the decoder)")
    if cfg.self_attention and not cfg.self_attention_connector:
        raise ValueError("model.self_attention needs model.self_attention_connector (its link to the decoder)")
    connectors = cfg.tag_attention_connector or cfg.self_attention_connector
    if cfg.semantic_decoder and not connectors:
        raise ValueError("model.semantic_decoder needs at least one connector (tag or self-attention)")
    if not cfg.semantic_decoder and connectors:
        raise ValueError("model connectors lead to the semantic decoder: switch them off with it (tags-only row)")


def scale_gradient(x: torch.Tensor, factor: float) -> torch.Tensor:
    """``x`` unchanged in the forward pass; its gradient multiplied by ``factor`` in the backward
    (0: detached)."""
    if factor == 0.0:
        return x.detach()
    return _ScaleGradient.apply(x, factor)


class _ScaleGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, factor: float) -> torch.Tensor:  # type: ignore[override]
        ctx.factor = factor
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return grad * ctx.factor, None


class TagVIS(nn.Module):
    """The whole network; ``forward(frames (B,3,T,H,W)) -> TagVISOutput`` for any T, H, W.

    Submodules that a Table III switch removes are ``None``: ``location_embedding``,
    ``st_attention``, ``tag_attention``, ``tag_connector``, ``self_attention``, ``decoder``;
    ``tags_only_classifier`` exists only without the decoder.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        validate_model_config(cfg)
        self.cfg = cfg
        e, heads = cfg.embed_dim, cfg.attention_heads
        self.encoder = R2Plus1DEncoder(cfg.encoder_width, cfg.encoder_norm)
        _, c1, c2, c3, c4 = self.encoder.channels
        skips, stages = (c3, c2, c1), (e, max(e // 2, 4), max(e // 4, 4))
        self.location_embedding = LocationEmbedding(c4) if cfg.location_embedding else None
        self.st_attention = SpatioTemporalAttention(c4, heads, inner=e) if cfg.spatiotemporal_attention else None
        self.bottleneck = Bottleneck(c4, e)
        self.tag_generator = TagGenerator(e, skips if cfg.encoder_skips else None, stages, cfg.tag_dim, cfg.tag_activation,
                                          cfg.tag_coordinates, cfg.tag_appearance)
        self.tag_connector = TagConnector(cfg.tag_dim, e) if cfg.tag_attention_connector else None
        self.tag_attention = TagAttention(e, heads) if cfg.tag_attention else None
        self.self_attention = SelfAttention(e, heads) if cfg.self_attention else None
        num_outputs = cfg.num_classes + 1
        self.decoder = SemanticDecoder(e, skips if decoder_skips(cfg) else None, stages, num_outputs) if cfg.semantic_decoder else None
        self.tags_only_classifier = None if cfg.semantic_decoder else Conv3d(stages[-1], num_outputs, 1)

    @property
    def num_classes(self) -> int:
        return self.cfg.num_classes

    def forward(self, frames: torch.Tensor) -> TagVISOutput:
        """frames: (B, 3, T, H, W) Kinetics-normalised -> tags (B,D,T,H,W), logits (B,C+1,T,H,W).

        The input is converted to ``cfg.memory_format``; the outputs are contiguous.
        """
        if frames.dim() != 5 or frames.shape[1] != 3:
            raise ValueError(f"frames must be (B, 3, T, H, W), got {tuple(frames.shape)}")
        size = tuple(frames.shape[2:])
        frames = frames.contiguous(memory_format=torch_memory_format(self.cfg.memory_format))
        tags, logits = self._forward(frames, size)
        return TagVISOutput(tags.contiguous(), logits.contiguous())

    def _forward(self, frames: torch.Tensor, size: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.encoder(frames)
        skips = (feats.layer3, feats.layer2, feats.layer1)
        sizes = [tuple(x.shape[3:]) for x in skips]
        f = feats.layer4
        if self.location_embedding is not None:
            f = self.location_embedding(f)
        bottleneck_size = (size[0], *f.shape[3:])
        u = resize(f, bottleneck_size) if self.st_attention is None else self.st_attention(f, size[0])
        b = self.bottleneck(u)
        k = self.cfg.tag_trunk_gradient
        tag_in, tag_skips = (b, skips) if k == 1.0 else (scale_gradient(b, k), [scale_gradient(x, k) for x in skips])
        tags, tag_features = self.tag_generator(tag_in, sizes, tag_skips if self.cfg.encoder_skips else None, size,
                                                frames if self.cfg.tag_appearance else None)
        if self.decoder is None:
            return tags, float32_head(self.tags_only_classifier, tag_features, size)
        links = []
        if self.cfg.self_attention_connector:
            links.append(b if self.self_attention is None else self.self_attention(b))
        if self.tag_connector is not None:
            linked = tags if self.cfg.tag_connector_gradient == 1.0 else scale_gradient(tags, self.cfg.tag_connector_gradient)
            w = self.tag_connector(F.adaptive_avg_pool3d(linked, bottleneck_size))
            links.append(w if self.tag_attention is None else self.tag_attention(w))
        return tags, self.decoder(sum(links), sizes, skips if decoder_skips(self.cfg) else None, size)


def build_model(cfg: ModelConfig | ExperimentConfig) -> TagVIS:
    """The network for ``cfg`` (an ExperimentConfig's ``model`` section is used).

    With ``cfg.encoder_weights`` set, the Kinetics-400 ``r2plus1d_18`` weights are loaded from that
    local file (strict; needs ``encoder_width=1.0``); otherwise the encoder starts from random init.
    The weights are in ``cfg.memory_format``.
    """
    if isinstance(cfg, ExperimentConfig):
        cfg = cfg.model
    model = TagVIS(cfg)
    if cfg.encoder_weights:
        load_encoder_weights(model.encoder, cfg.encoder_weights)
    return apply_memory_format(model, cfg.memory_format)
