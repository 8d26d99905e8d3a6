"""J and F of every (proposal, object) pair of a frame at once, from the two label maps.

Intersections and areas come from the runs of equal (proposal, object) labels along the rows, so a
frame is read once whatever the number of pairs. For F, the boundaries of all objects and proposals
are packed as bits of one integer image, dilated once by the disk (shifted ORs, exact), and the
pair counts |B_a in dilated B_b| are read at the boundary pixels. The numbers equal the per-pair
functions of ``davis.py`` (``db_eval_iou``, ``f_measure``).
"""
from __future__ import annotations

import math

import numpy as np



def f_from_counts(n_fg, n_gt, fg_match, gt_match):
    """F from boundary pixel counts, with the official empty-boundary rules (scalars or arrays).

    n_fg, n_gt: boundary sizes of segmentation and annotation; fg_match: segmentation boundary
    pixels near the annotation's; gt_match: annotation boundary pixels near the segmentation's.
    """
    n_fg, n_gt = np.asarray(n_fg, np.float64), np.asarray(n_gt, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(n_fg == 0, 1.0, fg_match / n_fg)
        recall = np.where(n_gt == 0, 1.0, gt_match / n_gt)
        precision = np.where((n_fg > 0) & (n_gt == 0), 0.0, precision)
        recall = np.where((n_fg == 0) & (n_gt > 0), 0.0, recall)
        total = precision + recall
        f = np.where(total == 0, 0.0, 2 * precision * recall / total)
    return f if f.ndim else float(f)


def pair_iou(gt: np.ndarray, res: np.ndarray, n_obj: int, n_prop: int,
             keep: np.ndarray | None = None) -> np.ndarray:
    """J (n_prop, n_obj) of proposal p + 1 against object k + 1.

    gt: (H, W) uint8 objects 0..n_obj; res: (H, W) uint8 proposals 0..n_prop; keep: (H, W) bool
    pixels that count (not void), all when None. A pair with an empty union scores 1.
    """
    g, r = gt.ravel(), res.ravel()
    n_lab = n_obj + 2  # column n_obj + 1 collects pixels that do not count
    if keep is not None:
        g = np.where(keep.ravel(), g, np.uint8(n_obj + 1))
    change = np.flatnonzero((g[1:] != g[:-1]) | (r[1:] != r[:-1])) + 1
    starts = np.concatenate([[0], change])
    lengths = np.diff(np.append(starts, g.size))
    code = r[starts].astype(np.int64) * n_lab + g[starts]
    hist = np.bincount(code, weights=lengths, minlength=(n_prop + 1) * n_lab)
    hist = hist.reshape(n_prop + 1, n_lab)[:, :n_obj + 1]
    inter = hist[1:, 1:]
    area_p, area_g = hist[1:].sum(1), hist[:, 1:].sum(0)
    union = area_p[:, None] + area_g[None, :] - inter
    return np.where(union == 0, 1.0, inter / np.maximum(union, 1))


def _bits_dtype(n_bits: int) -> type:
    for dtype in (np.uint8, np.uint16, np.uint32, np.uint64):
        if n_bits <= np.iinfo(dtype).bits:
            return dtype
    raise ValueError(f"at most 64 boundaries per image, got {n_bits}")


def packed_boundaries(gt: np.ndarray, res: np.ndarray, gt_lut: np.ndarray, res_lut: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Boundary bits of every object and proposal at the pixels on some boundary.

    gt, res: (H, W) uint8 label maps; gt_lut, res_lut: (256,) the bit of each label (0 for
    background and labels not counted). A pixel lies on the boundary of label a when it differs in
    label-a membership from its right, bottom or bottom-right neighbour (inside the image); where
    two labels meet, the pixel is on both boundaries. Returns the flat indices (N,) of the pixels
    with any boundary bit and their bits (N,).
    """
    h, w = gt.shape
    on = np.zeros((h, w), bool)
    for labels in (gt, res):
        on[:, :-1] |= labels[:, :-1] != labels[:, 1:]
        on[:-1, :] |= labels[:-1, :] != labels[1:, :]
        on[:-1, :-1] |= labels[:-1, :-1] != labels[1:, 1:]
    flat = np.flatnonzero(on)
    y, x = np.divmod(flat, w)
    bits = np.zeros(flat.size, gt_lut.dtype)
    for dy, dx in ((0, 1), (1, 0), (1, 1)):
        inside = (y + dy < h) & (x + dx < w)
        there = np.where(inside, flat + dy * w + dx, flat)  # outside: itself, so no difference
        for labels, lut in ((gt.ravel(), gt_lut), (res.ravel(), res_lut)):
            a, b = labels[flat], labels[there]
            bits |= np.where(a != b, lut[a] | lut[b], 0).astype(bits.dtype, copy=False)
    keep = bits != 0
    return flat[keep], bits[keep]


#: Bytes of one padded input strip in ``dilate_bits``: its dozen temporaries stay in the CPU caches
#: and under glibc's 128 KiB mmap threshold (larger ones are mapped and page-faulted in each time).
DILATION_STRIP_BYTES = 64 << 10


def dilate_bits(bits: np.ndarray, radius: int, strip: int | None = None) -> np.ndarray:
    """OR of ``bits`` (H, W) over the disk x^2 + y^2 <= radius^2 around each pixel (zero outside).

    Rows of the disk are horizontal segments of half-width floor(sqrt(r^2 - dy^2)); each segment
    is the OR of two windows of a power-of-two length (built by doubling), then the rows shifted by
    dy are ORed together. Works through strips of ``strip`` output rows (default: at most
    DILATION_STRIP_BYTES of padded input each, and at least 8 rows).
    """
    h, w = bits.shape
    r = radius
    if r == 0:
        return bits.copy()
    if strip is None:
        strip = max(8, DILATION_STRIP_BYTES // ((w + 2 * r) * bits.itemsize) - 2 * r)
    pad = np.zeros((h + 2 * r, w + 2 * r), bits.dtype)
    pad[r:r + h, r:r + w] = bits
    half = [math.isqrt(r * r - dy * dy) for dy in range(r + 1)]
    out = np.empty_like(bits)
    for y0 in range(0, h, strip):
        n_rows = min(strip, h - y0)
        windows = {1: pad[y0:y0 + n_rows + 2 * r]}  # windows[n][:, x] = OR of pad[:, x:x + n]
        n = 1
        while 2 * n <= 2 * r + 1:
            prev = windows[n]
            windows[2 * n] = np.bitwise_or(prev[:, :-n], prev[:, n:])
            n *= 2
        rows = {}
        for hw in set(half):
            n = 1 << ((2 * hw + 1).bit_length() - 1)
            win = windows[n]
            rows[hw] = np.bitwise_or(win[:, r - hw:r - hw + w],
                                     win[:, r + hw + 1 - n:r + hw + 1 - n + w])
        block = out[y0:y0 + n_rows]
        block[:] = rows[half[0]][r:r + n_rows]
        for dy in range(1, r + 1):
            seg = rows[half[dy]]
            np.bitwise_or(block, seg[r - dy:r - dy + n_rows], out=block)
            np.bitwise_or(block, seg[r + dy:r + dy + n_rows], out=block)
    return out


def pair_boundary(gt: np.ndarray, res: np.ndarray, n_obj: int, n_prop: int, radius: int,
                  keep: np.ndarray | None = None) -> np.ndarray:
    """F (n_prop, n_obj) of proposal p + 1 against object k + 1 in one frame.

    gt, res: (H, W) uint8 label maps as in ``pair_iou``; keep: (H, W) bool pixels outside void
    (masks are multiplied by it first), all when None.
    """
    if keep is not None:
        gt, res = np.where(keep, gt, 0), np.where(keep, res, 0)
    h, w = gt.shape
    n_ch = n_obj + n_prop  # channels: objects 1..n_obj, then proposals 1..n_prop
    counts, size = np.zeros((n_ch, n_ch)), np.zeros(n_ch)
    on = []
    for c0 in range(0, n_ch, 64):  # 64 channels to a packed image
        c1 = min(c0 + 64, n_ch)
        dtype = _bits_dtype(c1 - c0)
        gt_lut, res_lut = np.zeros(256, dtype), np.zeros(256, dtype)
        for c in range(c0, c1):
            lut, label = (gt_lut, c + 1) if c < n_obj else (res_lut, c - n_obj + 1)
            lut[label] = dtype(1) << dtype(c - c0)
        flat, bits = packed_boundaries(gt, res, gt_lut, res_lut)
        on.append((flat, bits, c1 - c0, dtype))
    pixels = np.unique(np.concatenate([f for f, *_ in on])) if len(on) > 1 else on[0][0]
    if pixels.size:
        ys, xs = np.divmod(pixels, w)
        y0, x0 = ys.min(), xs.min()
        crop = (ys.max() + 1 - y0, xs.max() + 1 - x0)
        on_cols, near_cols = [], []
        for flat, bits, n_bits, dtype in on:
            image = np.zeros(crop, dtype)
            fy, fx = np.divmod(flat, w)
            image[fy - y0, fx - x0] = bits
            dil = dilate_bits(image, radius)[ys - y0, xs - x0]
            shifts = np.arange(n_bits, dtype=dtype)
            on_cols.append((image[ys - y0, xs - x0][:, None] >> shifts) & 1)
            near_cols.append((dil[:, None] >> shifts) & 1)
        on_m = np.concatenate(on_cols, axis=1).astype(np.float64)
        near_m = np.concatenate(near_cols, axis=1).astype(np.float64)
        counts, size = on_m.T @ near_m, on_m.sum(0)
    n_fg, n_gt = size[n_obj:], size[:n_obj]
    fg_match = counts[n_obj:, :n_obj]    # proposal boundary pixels near the object boundary
    gt_match = counts[:n_obj, n_obj:].T  # object boundary pixels near the proposal boundary
    return f_from_counts(n_fg[:, None], n_gt[None, :], fg_match, gt_match)
