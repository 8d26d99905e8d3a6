"""The spatio-temporal tagging loss of paper section III-E, equations (1)-(6).

Notation (per clip): instance ``n = 1..N``, frame ``t = 1..T``, tag ``h'`` of one pixel (a vector of
``D`` values), ``h_n`` the clip mean of instance ``n``, ``h_nt`` its mean in frame ``t``, margin ``G``.
The four terms (keys of the returned dict):

- ``spectra`` eq. (2): ``(1/N) sum_n sum_m ||h_n - h'_nm||^2`` over the M' sampled pixels of ``n``.
- ``specter`` eq. (3): ``sum_{n<n'} max(0, G - ||h_n - h_n'||)``.
- ``tempra``  eq. (4): ``(1/N) sum_n sum_t ||h_n - h_nt||^2``.
- ``temper``  eq. (5): ``sum_t sum_{n<n' in N'} max(0, G - ||h_nt - h_n't||)``.

Each term is computed per clip, then averaged over the clips of the batch (clips without instances
count, with zero loss). Everything is vectorised, with no Python loop over clips, instances, frames
or pixels: the foreground pixels of the whole batch get one flat index ``(b * K + k) * T + t`` (clip
``b``, instance ``k`` compacted per clip, frame ``t``) and are reduced with ``bincount`` /
``index_add_``; pairs are handled by broadcasting over ``(B, K, K[, T])``, so memory for the push
terms is ``O(B K^2 T D)`` with ``K`` the most instances in one clip.

Choices on the points the paper leaves open:

- Tag range: tags are unbounded and ``G`` (``margin``, default 3 as in the paper) is a parameter. The
  abstract's "tags between 0 and 1" cannot hold together with G = 3 (the push terms would be constant).
- Tag dimension: tags may have ``D >= 1`` channels; squares become squared Euclidean distances and
  ``|.|`` the Euclidean norm. The norm is computed by :func:`safe_norm`, whose gradient is 0 (not NaN)
  at a zero difference: two instances with exactly equal means get no push from that pair.
- Which instances: positive ids of ``instance_ids`` other than ``IGNORE_INDEX`` (255, void and padded
  frames, which take no part) are instances; 0 (and below) is background. ``N`` counts the instances with at least one pixel
  in the clip; ids need not be contiguous.
- ``h_n`` (eq. 1) is the mean over all the instance's pixels in all frames of the clip (pixel-weighted,
  so frames where the instance is large weigh more); ``h_nt`` is the mean over all its pixels in
  frame ``t``. Neither is sampled.
- Absent instances: an instance with no pixel in frame ``t`` takes no part in the frame-``t`` terms of
  eq. (4) and (5). Frames without instances and clips with zero or one instance give zero for the
  terms that have nothing to sum (finite values and finite gradients, never NaN).
- Sampling M' (``pixels_per_instance``): per clip and instance, ``min(M', pixels)`` distinct pixels
  drawn uniformly without replacement from a ``torch.Generator`` seeded with ``seed`` (drawn on the
  CPU, so the choice does not depend on the device; the generator state is saved in the module's
  ``state_dict`` as extra state). ``None`` uses every pixel and is deterministic.
- Scale of eq. (2): ``spectra_reduction="sum"`` (the paper's form) sums over the sampled pixels, so it
  grows with M'; ``"mean"`` divides each instance's sum by its number of sampled pixels.
- N' of eq. (5): ``temper_max_pairs=None`` uses every pair of instances present together in a frame.
  An integer ``P`` keeps, per clip, a seeded uniform random subset of ``min(P, pairs)`` of the pairs
  that share at least one frame; the kept pairs enter eq. (5) in every frame where both are present.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import torch
from torch import Tensor, nn

from ..constants import IGNORE_INDEX

TERMS = ("spectra", "specter", "tempra", "temper")
REDUCTIONS = ("sum", "mean")


def safe_norm(v: Tensor, dim: int = -1) -> Tensor:
    """Euclidean norm of ``v`` along ``dim``, with gradient 0 (not NaN) where the norm is 0."""
    sq = v.pow(2).sum(dim)
    nonzero = sq > 0
    return torch.where(nonzero, torch.where(nonzero, sq, torch.ones_like(sq)).sqrt(), torch.zeros_like(sq))


def sample_per_segment(segment: Tensor, counts: Tensor, k: int, generator: torch.Generator | None,
                       keys: Tensor | None = None) -> Tensor:
    """Choose ``min(k, size)`` members of every segment, uniformly at random without replacement.

    ``segment``: (P,) int64 segment of each element; ``counts``: (S,) int64 elements per segment;
    ``generator``: a CPU generator (keys are drawn on the CPU, then moved), or ``keys``: (P,) the
    uniform keys themselves. Returns the int64 indices (into ``segment``) of the chosen elements,
    grouped by segment.

    Each element gets a uniform key and each segment keeps its ``k`` smallest keys. Only keys below a
    per-segment threshold (about k + 4 sqrt(k) expected candidates) are sorted; a segment with too
    few candidates (probability below 1e-4 for k = 256) takes all its elements as candidates, so the
    result is exact.
    """
    device = segment.device
    keys = torch.rand(segment.numel(), generator=generator) if keys is None else keys
    keys = keys.to(device)
    wanted = counts.clamp(max=k)
    threshold = ((k + 4.0 * k**0.5 + 8.0) / counts.clamp(min=1).float()).clamp(max=1.0)
    for _ in range(2):
        candidates = (keys < threshold.index_select(0, segment)).nonzero().squeeze(1)
        cand_segment = segment.index_select(0, candidates)
        cand_counts = torch.bincount(cand_segment, minlength=counts.numel())
        short = cand_counts < wanted
        if not bool(short.any()):
            break
        threshold = torch.where(short, torch.ones_like(threshold), threshold)
    # Candidates in order of (segment, key), then the first k of each segment.
    order = keys.index_select(0, candidates).argsort()
    order = order.index_select(0, torch.sort(cand_segment.index_select(0, order), stable=True).indices)
    sorted_segment = cand_segment.index_select(0, order)
    start = cand_counts.cumsum(0) - cand_counts
    rank = torch.arange(order.numel(), device=device) - start.index_select(0, sorted_segment)
    return candidates.index_select(0, order[rank < k])


class PixelGroups(NamedTuple):
    """Foreground pixels of a batch grouped by instance; ``K`` = most instances in one clip.

    values: (P, D) tag (float32 or float64) of each foreground pixel; segment: (P,) int64 ``b * K + k``;
    counts: (B * K,) int64 pixels per instance; means: (B, K, D) ``h_n``; frame_means: (B, K, T, D)
    ``h_nt``; present: (B, K) bool; frame_present: (B, K, T) bool; num_instances: (B,) float ``N``.
    """

    values: Tensor
    segment: Tensor
    counts: Tensor
    means: Tensor
    frame_means: Tensor
    present: Tensor
    frame_present: Tensor
    num_instances: Tensor


def group_pixels(tags: Tensor, instance_ids: Tensor, ignore_index: int = IGNORE_INDEX) -> PixelGroups:
    """Group the instance pixels of ``tags`` (B, D, T, H, W) by ``instance_ids`` (B, T, H, W) int64.

    Uses a count table of B * T * (largest id + 1) entries: small for the 8-bit ids of the datasets.
    """
    b_size, d, t_size, h, w = tags.shape
    hw, thw = h * w, t_size * h * w
    device = tags.device
    ids = instance_ids.reshape(b_size * t_size, hw)
    foreground = ids > 0
    foreground &= ids != ignore_index
    row, col = foreground.nonzero(as_tuple=True)  # row = b * T + t
    flat = col.add_(row, alpha=hw)  # in place: col is not needed again
    inst = instance_ids.reshape(-1).index_select(0, flat)
    # Pixels of every (clip, frame, id) in a small (B, T, max id + 1) table; ids compacted per clip.
    width = int(inst.max()) + 1 if inst.numel() else 1
    key = inst.add_(row, alpha=width)  # row * width + id
    table = torch.bincount(key, minlength=b_size * t_size * width).view(b_size, t_size, width)
    seen = (table > 0).any(1)  # (B, width)
    num_instances = seen.sum(1)
    k_size = int(num_instances.max()) if b_size else 0
    segment_of = torch.arange(b_size, device=device).unsqueeze(1) * k_size + seen.cumsum(1) - 1
    frame_segment_of = segment_of.unsqueeze(1) * t_size + torch.arange(t_size, device=device).view(1, -1, 1)
    frame_segment = frame_segment_of.reshape(-1).index_select(0, key)  # (b * K + k) * T + t
    segment = segment_of.unsqueeze(1).expand_as(table).reshape(-1).index_select(0, key)
    in_table = seen.unsqueeze(1).expand_as(table)
    frame_counts = table.new_zeros(b_size * k_size * t_size)
    frame_counts[frame_segment_of[in_table]] = table[in_table]
    # Tag of each pixel: flat index b * D * THW + c * THW + t * HW + col of channel c.
    if d == 1:
        index = flat
    else:
        base = flat + (row // t_size) * ((d - 1) * thw)
        index = (base.unsqueeze(1) + torch.arange(d, device=device) * thw).reshape(-1)
    values = tags.reshape(-1).index_select(0, index).view(-1, d)
    values = values.to(torch.promote_types(values.dtype, torch.float32))
    # h_nt: mean over the pixels of instance n in frame t.
    frame_sums = values.new_zeros(b_size * k_size * t_size, d).index_add_(0, frame_segment, values)
    frame_means = frame_sums / frame_counts.clamp(min=1).unsqueeze(1).to(values.dtype)
    # eq. (1): h_n = (1/M) sum_m h'_nm over all M pixels of instance n in the clip.
    counts = frame_counts.view(-1, t_size).sum(1)
    means = frame_sums.view(-1, t_size, d).sum(1) / counts.clamp(min=1).unsqueeze(1).to(values.dtype)
    return PixelGroups(
        values=values,
        segment=segment,
        counts=counts,
        means=means.view(b_size, k_size, d),
        frame_means=frame_means.view(b_size, k_size, t_size, d),
        present=torch.arange(k_size, device=device) < num_instances.unsqueeze(1),
        frame_present=(frame_counts > 0).view(b_size, k_size, t_size),
        num_instances=num_instances.to(values.dtype),
    )


def _upper_pairs(present: Tensor) -> Tensor:
    """(B, K) bool -> (B, K, K) bool, true for pairs n < n' both present."""
    k = present.shape[1]
    upper = torch.ones(k, k, dtype=torch.bool, device=present.device).triu(1)
    return upper & present.unsqueeze(2) & present.unsqueeze(1)


class TaggingLoss(nn.Module):
    """The four terms of the spatio-temporal tagging loss (module docstring for the choices).

    Called as ``loss(tags (B, D, T, H, W), instance_ids (B, T, H, W) int)``; returns a dict of scalar
    tensors ``{"spectra", "specter", "tempra", "temper"}``, each the mean over the batch of the
    per-clip values of :meth:`clip_losses`.
    """

    def __init__(
        self,
        margin: float = 3.0,
        pixels_per_instance: int | None = None,
        spectra_reduction: str = "sum",
        temper_max_pairs: int | None = None,
        seed: int = 0,
    ):
        super().__init__()
        if margin < 0:
            raise ValueError(f"margin: expected >= 0, got {margin}")
        if pixels_per_instance is not None and pixels_per_instance < 1:
            raise ValueError(f"pixels_per_instance: expected None or >= 1, got {pixels_per_instance}")
        if spectra_reduction not in REDUCTIONS:
            raise ValueError(f"spectra_reduction: expected one of {REDUCTIONS}, got {spectra_reduction!r}")
        if temper_max_pairs is not None and temper_max_pairs < 1:
            raise ValueError(f"temper_max_pairs: expected None or >= 1, got {temper_max_pairs}")
        self.margin = float(margin)
        self.pixels_per_instance = pixels_per_instance
        self.spectra_reduction = spectra_reduction
        self.temper_max_pairs = temper_max_pairs
        self.generator = torch.Generator().manual_seed(seed)

    def get_extra_state(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])

    def forward(self, tags: Tensor, instance_ids: Tensor) -> dict[str, Tensor]:
        return {name: value.mean() for name, value in self.clip_losses(tags, instance_ids).items()}

    def clip_losses(self, tags: Tensor, instance_ids: Tensor, seeds: Sequence[int] | None = None) -> dict[str, Tensor]:
        """Per-clip terms: a dict of (B,) tensors. ``tags``: (B, D, T, H, W); ids: (B, T, H, W).

        ``seeds`` (one per clip): the random draws of clip ``b`` come from a generator seeded with
        ``seeds[b]``, so its terms equal those of ``clip_losses(tags[b:b+1], ids[b:b+1])`` after
        ``generator.manual_seed(seeds[b])`` (the module's own generator is left as it was). Without
        ``seeds`` every draw comes from the module's generator.
        """
        if seeds is not None:
            if len(seeds) != tags.shape[0]:
                raise ValueError(f"seeds: expected one per clip ({tags.shape[0]}), got {len(seeds)}")
            if self.temper_max_pairs is not None:  # pair draws depend on each clip's own instance count
                parts = [self._seeded(tags[b:b + 1], instance_ids[b:b + 1], seed) for b, seed in enumerate(seeds)]
                return {name: torch.cat([p[name] for p in parts]) for name in TERMS}
        if tags.dim() != 5 or instance_ids.shape != (tags.shape[0], *tags.shape[2:]):
            raise ValueError(
                f"expected tags (B, D, T, H, W) and instance_ids (B, T, H, W), "
                f"got {tuple(tags.shape)} and {tuple(instance_ids.shape)}"
            )
        if instance_ids.is_floating_point() or instance_ids.dtype == torch.bool:
            raise ValueError(f"instance_ids: expected an integer tensor, got {instance_ids.dtype}")
        g = group_pixels(tags, instance_ids.to(device=tags.device, dtype=torch.long))
        n = g.num_instances.clamp(min=1)
        return {
            "spectra": self._spectra(g, seeds) / n,
            "specter": self._specter(g),
            "tempra": self._tempra(g) / n,
            "temper": self._temper(g),
        }

    def _seeded(self, tags: Tensor, instance_ids: Tensor, seed: int) -> dict[str, Tensor]:
        """``clip_losses`` of one clip with the module's generator seeded by ``seed`` (state restored)."""
        state = self.generator.get_state()
        try:
            self.generator.manual_seed(seed)
            return self.clip_losses(tags, instance_ids)
        finally:
            self.generator.set_state(state)

    def _sampling_keys(self, g: PixelGroups, seeds: Sequence[int] | None) -> Tensor | None:
        """Uniform keys (P,) of the pixels, clip b's from a generator seeded with ``seeds[b]``
        (pixels are ordered by clip); None without seeds (the module's generator draws them)."""
        if seeds is None:
            return None
        per_clip = g.counts.view(len(seeds), -1).sum(1).tolist() if g.counts.numel() else [0] * len(seeds)
        return torch.cat([torch.rand(int(n), generator=torch.Generator().manual_seed(int(seed)))
                          for n, seed in zip(per_clip, seeds)])

    def _spectra(self, g: PixelGroups, seeds: Sequence[int] | None = None) -> Tensor:
        """Eq. (2) without the 1/N: per clip, sum_n sum_m ||h_n - h'_nm||^2 (B,)."""
        b_size, k_size, d = g.means.shape
        segment, values = g.segment, g.values
        if self.pixels_per_instance is not None:
            chosen = sample_per_segment(segment, g.counts, self.pixels_per_instance, self.generator,
                                        self._sampling_keys(g, seeds))
            segment, values = segment.index_select(0, chosen), values.index_select(0, chosen)
        sq = (g.means.reshape(-1, d).index_select(0, segment) - values).pow(2).sum(1)  # ||h_n - h'_nm||^2
        per_instance = sq.new_zeros(b_size * k_size).index_add_(0, segment, sq)
        if self.spectra_reduction == "mean":
            sampled = g.counts.clamp(min=1, max=self.pixels_per_instance)
            per_instance = per_instance / sampled.to(per_instance.dtype)
        return per_instance.view(b_size, k_size).sum(1)

    def _specter(self, g: PixelGroups) -> Tensor:
        """Eq. (3): per clip, sum_{n<n'} max(0, G - ||h_n - h_n'||) (B,)."""
        dist = safe_norm(g.means.unsqueeze(2) - g.means.unsqueeze(1))  # (B, K, K)
        hinge = (self.margin - dist).clamp(min=0)
        return torch.where(_upper_pairs(g.present), hinge, torch.zeros_like(hinge)).sum((1, 2))

    def _tempra(self, g: PixelGroups) -> Tensor:
        """Eq. (4) without the 1/N: per clip, sum_n sum_t ||h_n - h_nt||^2 over present (n, t) (B,)."""
        sq = (g.means.unsqueeze(2) - g.frame_means).pow(2).sum(-1)  # (B, K, T)
        return torch.where(g.frame_present, sq, torch.zeros_like(sq)).sum((1, 2))

    def _temper(self, g: PixelGroups) -> Tensor:
        """Eq. (5): per clip, sum_t sum_{n<n' in N', both in t} max(0, G - ||h_nt - h_n't||) (B,)."""
        fp = g.frame_present
        pairs = _upper_pairs(g.present) & (fp.unsqueeze(2) & fp.unsqueeze(1)).any(-1)  # share a frame
        if self.temper_max_pairs is not None:
            pairs = pairs & self._random_pairs(pairs)
        dist = safe_norm(g.frame_means.unsqueeze(2) - g.frame_means.unsqueeze(1))  # (B, K, K, T)
        both = pairs.unsqueeze(3) & fp.unsqueeze(2) & fp.unsqueeze(1)
        hinge = (self.margin - dist).clamp(min=0)
        return torch.where(both, hinge, torch.zeros_like(hinge)).sum((1, 2, 3))

    def _random_pairs(self, pairs: Tensor) -> Tensor:
        """(B, K, K) candidate pairs -> mask of a uniform random subset of at most N' per clip."""
        b_size, k_size, _ = pairs.shape
        keys = torch.rand(b_size, k_size * k_size, generator=self.generator).to(pairs.device)
        keys = torch.where(pairs.view(b_size, -1), keys, torch.full_like(keys, 2.0))  # candidates first
        rank = torch.empty_like(keys, dtype=torch.long)
        order = keys.argsort(1)
        rank.scatter_(1, order, torch.arange(k_size * k_size, device=pairs.device).expand_as(order))
        return (rank < self.temper_max_pairs).view_as(pairs)
