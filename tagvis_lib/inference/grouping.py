"""From the network output of one clip to instances: foreground, tag grouping, class and score.

The paper (section IV) does not say how tags become instances; this module is our choice, every
alternative a field of :class:`~tagvis_lib.config.InferenceConfig`:

1. Foreground: a pixel of a valid (not padded) frame is foreground when
   ``P(background) < 1 - foreground_threshold`` (softmax of the semantic branch).
2. The foreground tags of ALL frames of the clip are grouped at once, so an instance keeps one id
   over time. ``grouping``:

   - ``"meanshift"`` (default, any D): flat-kernel mean shift of radius ``bandwidth`` seeded from the
     occupied cells of a grid of side ``bandwidth``; modes closer than ``bandwidth`` are merged
     (denser one kept) and every foreground pixel goes to its nearest mode.
   - ``"histogram"`` (D = 1): peaks of the tag histogram smoothed by a Gaussian of ``bandwidth / 4``,
     peaks closer than ``bandwidth`` merged (higher one kept); every pixel goes to its nearest peak.
   - ``"seed_grow"`` (any D, greedy, like STEm-Seg): the densest grid cell (side ``bandwidth / 2``)
     of unassigned tags gives a seed, refined to the mean of the unassigned tags within
     ``bandwidth``; all those tags form an instance; repeat. Tags never reached stay background.

   - ``"components"`` (baseline, ignores the tags): connected components of the foreground in
     (T, h, w) with 26-connectivity; what a model trained without the tagging loss can use.
   - ``"components_split"`` (tags and space): those connected components, each split by a mean
     shift of its own tags; a cluster holding less than ``SPLIT_MIN_SHARE`` of its component (or
     fewer than ``min_pixels`` pixels) joins the nearest larger cluster of the same component. Tags
     then only separate instances that touch; disconnected blobs stay apart whatever their tags.

   The bandwidth is ``inference.bandwidth`` or ``loss.margin / 2``: the push terms keep instance
   centres at least G apart, so a radius of G / 2 never spans two well-trained instances.
   Mean shift and seed-grow run on tags binned to a fine grid (side ``bandwidth / 16``, coarser
   only when more than ``MAX_POINTS`` cells are occupied), weighted by the pixel count of each bin.
3. Groups with fewer than ``min_pixels`` pixels (valid frames, network resolution) are dropped; at
   most ``max_instances`` are kept, highest score first.
4. Class: majority vote of the semantic argmax over classes 1..C (background excluded) of the
   instance's pixels; further classes for ``topk_classes`` > 1 follow by vote count, ties and
   unvoted classes ordered by mean probability.
5. Score of instance k under class c: ``mean_{pixels of k} P(c) * exp(-mean ||tag - mode_k||^2 /
   bandwidth^2)``, the semantic confidence times the tag compactness (1 for a perfectly tight
   instance, ``exp(-1)`` when tags stray by one bandwidth on average). With ``"components"`` the
   tags play no part and the compactness factor is 1.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d, label as label_components
from scipy.signal import find_peaks

from ..config import ExperimentConfig

GROUPINGS = ("meanshift", "histogram", "seed_grow", "components", "components_split")
#: Smallest share of its component a tag cluster of ``"components_split"`` must hold to stand alone.
SPLIT_MIN_SHARE = 0.1
#: Largest number of weighted tag bins the mean shift / seed-grow iterations run on.
MAX_POINTS = 32768
#: Largest number of mean-shift seeds (most populated grid cells first).
MAX_SEEDS = 256
#: Largest number of groups seed-grow extracts before stopping.
MAX_GROUPS = 256
_MEANSHIFT_ITERS = 100


def grouping_bandwidth(cfg: ExperimentConfig) -> float:
    """``inference.bandwidth`` or, when None, ``loss.margin / 2`` (tag units)."""
    bw = cfg.inference.bandwidth
    return float(cfg.loss.margin) / 2.0 if bw is None else float(bw)


def check_inference_config(cfg: ExperimentConfig) -> None:
    """Raise ``ValueError`` naming the field when the inference settings cannot work together."""
    inf = cfg.inference
    length = inf.clip_length or cfg.data.clip_length  # None: the training clip's length
    if inf.clip_length is not None and inf.clip_length < 1:
        raise ValueError(f"inference.clip_length: expected >= 1 frame (or None: data.clip_length), got {inf.clip_length}")
    if length < 1:
        raise ValueError(f"data.clip_length: expected >= 1 frame (inference.clip_length is None), got {length}")
    if inf.warmup_runs < 0:
        raise ValueError(f"inference.warmup_runs: expected >= 0, got {inf.warmup_runs}")
    if inf.grouping not in GROUPINGS:
        raise ValueError(f"inference.grouping: expected one of {GROUPINGS}, got {inf.grouping!r}")
    if inf.grouping == "histogram" and cfg.model.tag_dim != 1:
        raise ValueError(f"inference.grouping='histogram' needs model.tag_dim == 1, got {cfg.model.tag_dim}")
    if inf.long_video not in ("single_clip", "overlapping"):
        raise ValueError(f"inference.long_video: expected 'single_clip' or 'overlapping', got {inf.long_video!r}")
    if inf.interpolation not in ("nearest", "linear"):
        raise ValueError(f"inference.interpolation: expected 'nearest' or 'linear', got {inf.interpolation!r}")
    if not 0.0 < inf.foreground_threshold < 1.0:
        raise ValueError(f"inference.foreground_threshold: expected a value in (0, 1), got {inf.foreground_threshold}")
    if grouping_bandwidth(cfg) <= 0:
        raise ValueError("inference.bandwidth: expected a positive bandwidth")
    if inf.bridge_bandwidth is not None and not inf.bridge_bandwidth > 0:
        raise ValueError(f"inference.bridge_bandwidth: expected a positive distance (or None: the grouping bandwidth), got {inf.bridge_bandwidth}")
    if not 1 <= inf.max_instances <= 255:
        raise ValueError(f"inference.max_instances: expected 1..255, got {inf.max_instances}")
    if inf.flip_tags and not inf.flip_average:
        raise ValueError("inference.flip_tags: needs inference.flip_average=true (the mirrored pass it takes tags from)")
    if inf.flip_tags and inf.grouping == "histogram":
        raise ValueError("inference.flip_tags: gives 2 tag values per pixel, which inference.grouping='histogram' (D = 1) cannot group")
    if inf.topk_classes < 1:
        raise ValueError(f"inference.topk_classes: expected >= 1, got {inf.topk_classes}")
    if inf.long_video == "overlapping" and not 0 < inf.clip_overlap < length:
        raise ValueError(f"inference.clip_overlap: expected 1..clip_length-1, got {inf.clip_overlap}")


# --- grouping of a set of tags ----------------------------------------------------------------


def _bin(x: torch.Tensor, side: float, weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bin tags ``x: (N, D)`` (each of weight ``weights: (N,)``, default 1) to a grid of ``side``.

    Returns (centres (M, D) weighted mean of each bin's tags, weights (M,), inverse (N,) bin of each tag).
    """
    w = torch.ones(len(x), dtype=x.dtype, device=x.device) if weights is None else weights
    cells = torch.floor(x / side).long()
    cells = cells - cells.min(0).values
    extent = cells.max(0).values + 1
    if float(torch.prod(extent.double())) < 2.0**62:  # one int64 key per cell: a 1-D unique is much faster
        strides = torch.cumprod(torch.cat([extent.new_ones(1), extent[:-1]]), 0)
        _, inverse = torch.unique((cells * strides).sum(1), return_inverse=True)
    else:
        _, inverse = torch.unique(cells, dim=0, return_inverse=True)
    total = torch.zeros(int(inverse.max()) + 1, dtype=x.dtype, device=x.device).index_add_(0, inverse, w)
    centres = torch.zeros(len(total), x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, inverse, x * w[:, None])
    return centres / total[:, None], total, inverse


def _compress(x: torch.Tensor, bandwidth: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weighted bins of side ``bandwidth / 16`` (doubled until at most ``MAX_POINTS`` are occupied)."""
    side = bandwidth / 16.0
    while True:
        centres, weights, inverse = _bin(x, side)
        if len(weights) <= MAX_POINTS:
            return centres, weights, inverse
        side *= 2.0


def _nearest(x: torch.Tensor, modes: torch.Tensor, chunk: int = 1 << 18) -> torch.Tensor:
    """Index (N,) of the nearest of ``modes: (K, D)`` for each tag of ``x: (N, D)``."""
    return torch.cat([torch.cdist(x[i:i + chunk], modes).argmin(1) for i in range(0, len(x), chunk)])


def meanshift(x: torch.Tensor, bandwidth: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat-kernel mean shift of ``x: (N, D)``; returns (assignment (N,) in 0..K-1, modes (K, D))."""
    points, weights, _ = _compress(x, bandwidth)
    seeds, seed_w, _ = _bin(points, bandwidth, weights)  # occupied cells of side `bandwidth`
    seeds = seeds[torch.argsort(seed_w, descending=True)[:MAX_SEEDS]]
    r2 = bandwidth * bandwidth
    density = torch.zeros(len(seeds), dtype=x.dtype, device=x.device)
    for _ in range(_MEANSHIFT_ITERS):
        within = (torch.cdist(seeds, points) ** 2 <= r2).to(x.dtype) * weights  # (S, M)
        density = within.sum(1)
        moved = (within @ points) / density.clamp_min(1e-12)[:, None]
        moved = torch.where(density[:, None] > 0, moved, seeds)
        shift = (moved - seeds).norm(dim=1).max()
        seeds = moved
        if shift < 1e-3 * bandwidth:
            break
    order = torch.argsort(density, descending=True, stable=True)
    kept: list[int] = []
    for i in order.tolist():  # at most MAX_SEEDS modes: merge those closer than the bandwidth
        if not kept or torch.cdist(seeds[i:i + 1], seeds[kept]).min() >= bandwidth:
            kept.append(i)
    modes = seeds[kept]
    return _nearest(x, modes), modes


def histogram_peaks(x: torch.Tensor, bandwidth: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Peaks of the smoothed histogram of 1-D tags ``x: (N, 1)``; returns (assignment, modes (K, 1))."""
    if x.shape[1] != 1:
        raise ValueError(f"histogram grouping needs 1-D tags, got D = {x.shape[1]}")
    values = x[:, 0].double().cpu().numpy()
    lo, hi = values.min() - bandwidth, values.max() + bandwidth
    width = max(bandwidth / 8.0, (hi - lo) / 4096)
    counts, edges = np.histogram(values, bins=max(1, math.ceil((hi - lo) / width)), range=(lo, hi))
    width = edges[1] - edges[0]
    smooth = gaussian_filter1d(counts.astype(np.float64), sigma=bandwidth / 4.0 / width, mode="constant")
    peaks, _ = find_peaks(np.pad(smooth, 1), distance=max(1.0, bandwidth / width))
    peaks = peaks - 1
    if len(peaks) == 0:
        peaks = np.array([int(np.argmax(smooth))])
    modes = torch.as_tensor((edges[peaks] + edges[peaks + 1]) / 2, dtype=x.dtype, device=x.device)[:, None]
    return _nearest(x, modes), modes


def seed_grow(x: torch.Tensor, bandwidth: float, min_pixels: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy seed-and-grow of ``x: (N, D)``; returns (assignment (N,) with -1 for tags left out,
    modes (K, D)). Stops when fewer than ``min_pixels`` tags are left or after ``MAX_GROUPS``."""
    points, weights, inverse = _compress(x, bandwidth)
    cells = _bin(points, bandwidth / 2.0)[2]
    owner = torch.full((len(points),), -1, dtype=torch.long, device=x.device)
    modes: list[torch.Tensor] = []
    r2 = bandwidth * bandwidth
    while len(modes) < MAX_GROUPS:
        free_w = weights * (owner < 0)
        if free_w.sum() < max(1, min_pixels):
            break
        cell_w = torch.zeros(int(cells.max()) + 1, dtype=x.dtype, device=x.device).index_add_(0, cells, free_w)
        in_cell = (cells == cell_w.argmax()) & (owner < 0)
        centre = (points[in_cell] * weights[in_cell, None]).sum(0) / weights[in_cell].sum()
        for _ in range(3):
            members = (owner < 0) & (((points - centre) ** 2).sum(1) <= r2)
            if not members.any():
                break
            centre = (points[members] * weights[members, None]).sum(0) / weights[members].sum()
        members = ((owner < 0) & (((points - centre) ** 2).sum(1) <= r2)) | in_cell
        owner[members] = len(modes)
        modes.append(centre)
    stacked = torch.stack(modes) if modes else x.new_zeros(0, x.shape[1])
    return owner[inverse], stacked


def _group_means(assign: torch.Tensor, x: torch.Tensor, k: int) -> torch.Tensor:
    """Mean (k, D) of the tags ``x: (N, D)`` of each group ``assign: (N,)`` in 0..k-1 (0 where empty)."""
    counts = torch.bincount(assign, minlength=k).clamp_min(1).to(x.dtype)
    return torch.zeros(k, x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, assign, x) / counts[:, None]


def foreground_components(fg: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Connected components (26-connectivity) of the foreground ``fg: bool (T, h, w)``.

    ``x: (N, D)`` are the tags of the N foreground pixels (in ``fg``'s flattening order). Returns
    (assignment int64 (N,) in 0..K-1, modes (K, D) mean tag of each component).
    """
    labels, k = label_components(fg.cpu().numpy(), structure=np.ones((3, 3, 3), dtype=bool))
    assign = torch.from_numpy(labels[fg.cpu().numpy()].astype(np.int64) - 1).to(x.device)
    return assign, _group_means(assign, x, k)


def split_components(fg: torch.Tensor, x: torch.Tensor, bandwidth: float, min_pixels: int = 1
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Connected components of ``fg: bool (T, h, w)`` split by the mean shift of their tags.

    ``x: (N, D)`` are the tags of the N foreground pixels (``fg``'s flattening order). Returns
    (assignment int64 (N,) in 0..K-1, modes (K, D) mean tag of each part).
    """
    comp, comp_means = foreground_components(fg, x)
    assign = torch.empty_like(comp)
    parts = 0
    smallest = max(min_pixels, 1)
    members = torch.argsort(comp, stable=True).split(torch.bincount(comp, minlength=len(comp_means)).tolist())
    for idx in members:  # pixel indices of each component
        if len(idx) == 0:
            continue
        if len(idx) < 2 * smallest:  # too small to hold two parts
            assign[idx] = parts
            parts += 1
            continue
        sub, modes = meanshift(x[idx], bandwidth)
        counts = torch.bincount(sub, minlength=len(modes))
        big = counts >= max(smallest, SPLIT_MIN_SHARE * len(idx))
        if not bool(big.any()):
            big = counts == counts.max()
        keep = torch.nonzero(big).flatten()
        sub = keep[_nearest(x[idx], modes[keep])]  # small clusters join the nearest kept one
        _, sub = torch.unique(sub, return_inverse=True)
        assign[idx] = sub + parts
        parts += int(sub.max()) + 1
    return assign, _group_means(assign, x, parts)


def group_tags(x: torch.Tensor, method: str, bandwidth: float, min_pixels: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Group tags ``x: (N, D)`` with ``method`` (see module docstring).

    Returns (assignment int64 (N,) in -1..K-1, -1 = no instance; modes (K, D)).
    """
    if len(x) == 0:
        return torch.zeros(0, dtype=torch.long, device=x.device), x.new_zeros(0, x.shape[1])
    if method == "meanshift":
        return meanshift(x, bandwidth)
    if method == "histogram":
        return histogram_peaks(x, bandwidth)
    if method == "seed_grow":
        return seed_grow(x, bandwidth, min_pixels)
    raise ValueError(f"inference.grouping: expected one of {GROUPINGS}, got {method!r}")


# --- instances of one clip -------------------------------------------------------------------


@dataclass
class InstanceStats:
    """Per-instance sums that class and score are computed from (they add up over clips).

    counts: (K,) pixels; votes: (K, C) pixels whose argmax over classes 1..C is class c + 1;
    prob_sums: (K, C) sums of P(class c + 1); sq_dist_sums: (K,) sums of ||tag - mode||^2;
    modes: (K, D) instance tag (count-weighted mean when merged over clips).
    """

    counts: torch.Tensor
    votes: torch.Tensor
    prob_sums: torch.Tensor
    sq_dist_sums: torch.Tensor
    modes: torch.Tensor

    def select(self, index: torch.Tensor) -> "InstanceStats":
        return InstanceStats(*(t[index] for t in (self.counts, self.votes, self.prob_sums, self.sq_dist_sums, self.modes)))

    def ranked_classes(self, bandwidth: float, topk: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Classes (K, k) as class indices 1..C, best first, and their scores (K, k)."""
        n = self.counts.clamp_min(1).to(self.prob_sums.dtype)
        mean_prob = self.prob_sums / n[:, None]
        compact = torch.exp(-(self.sq_dist_sums / n) / (bandwidth * bandwidth))
        k = min(topk, mean_prob.shape[1])
        by_prob = torch.argsort(mean_prob, dim=1, descending=True, stable=True)
        by_votes = torch.argsort(self.votes.gather(1, by_prob), dim=1, descending=True, stable=True)
        order = by_prob.gather(1, by_votes)[:, :k]
        return order + 1, mean_prob.gather(1, order) * compact[:, None]


@dataclass
class ClipGroups:
    """Instances of one clip at network resolution.

    labels: int64 (T, h, w), 0 = no instance, k + 1 = instance k (padded frames are all 0);
    fg_soft: float (T, h, w) foreground confidence ``(1 - P_bg) ** gamma`` with gamma chosen so the
    foreground threshold maps to 0.5 (soft masks are ``fg_soft * (labels == k + 1)``);
    stats: :class:`InstanceStats` of the K instances, highest score first.
    """

    labels: torch.Tensor
    fg_soft: torch.Tensor
    stats: InstanceStats

    @property
    def num_instances(self) -> int:
        return int(self.stats.counts.shape[0])


def foreground_soft(probs_bg: torch.Tensor, threshold: float) -> torch.Tensor:
    """``(1 - P_bg) ** gamma`` with ``threshold ** gamma = 0.5``: > 0.5 exactly on the foreground."""
    gamma = math.log(0.5) / math.log(threshold)
    return (1.0 - probs_bg).clamp(0.0, 1.0) ** gamma


def group_clip(tags: torch.Tensor, probs: torch.Tensor, valid: torch.Tensor, cfg: ExperimentConfig) -> ClipGroups:
    """Instances of one clip.

    tags: (D, T, h, w); probs: (C+1, T, h, w) softmax of the semantic logits, channel 0 background;
    valid: bool (T,), False for padded frames (they never hold an instance).
    """
    inf = cfg.inference
    bandwidth = grouping_bandwidth(cfg)
    tags, probs = tags.float(), probs.float()
    fg_soft = foreground_soft(probs[0], inf.foreground_threshold) * valid[:, None, None]
    fg = fg_soft > 0.5
    x = tags[:, fg].T.contiguous()  # (N, D)
    if inf.grouping == "components":
        assign, modes = foreground_components(fg, x)
    elif inf.grouping == "components_split":
        assign, modes = split_components(fg, x, bandwidth, inf.min_pixels)
    else:
        assign, modes = group_tags(x, inf.grouping, bandwidth, inf.min_pixels)
    num_classes = probs.shape[0] - 1
    keep = assign >= 0
    k_all = len(modes)
    a, xk = assign[keep], x[keep]
    fg_probs = probs[1:, fg].T[keep]  # (N', C)
    counts = torch.bincount(a, minlength=k_all)
    votes = torch.bincount(a * num_classes + fg_probs.argmax(1), minlength=k_all * num_classes).view(k_all, num_classes)
    prob_sums = torch.zeros(k_all, num_classes, dtype=x.dtype, device=x.device).index_add_(0, a, fg_probs)
    sq = torch.zeros(k_all, dtype=x.dtype, device=x.device)
    if inf.grouping != "components":
        sq.index_add_(0, a, ((xk - modes[a]) ** 2).sum(1))
    stats = InstanceStats(counts, votes, prob_sums, sq, modes)
    big = torch.nonzero(counts >= max(1, inf.min_pixels)).flatten()
    best = stats.select(big).ranked_classes(bandwidth, 1)[1][:, 0]
    chosen = big[torch.argsort(best, descending=True, stable=True)[: inf.max_instances]]
    relabel = torch.zeros(k_all + 1, dtype=torch.long, device=x.device)
    relabel[chosen + 1] = torch.arange(1, len(chosen) + 1, device=x.device)
    labels = torch.zeros(fg.shape, dtype=torch.long, device=x.device)
    labels[fg] = relabel[assign + 1]
    return ClipGroups(labels, fg_soft, stats.select(chosen))
