"""Figures and overlays of the notebooks, the CLI and the tests.

Predictions: instances are coloured by their tag value (the tag when D = 1, else its projection on
the first principal axis of the instance tags) through a colormap, so instances with close tags get
close colours, which is what the tagging loss is about; overlays, semantic masks, tag histograms,
GIF and mp4 writers. The rest: clip sampling, loss curves, the tagging terms on toy tags, the Table
III chart. Figures are ``matplotlib.figure.Figure`` objects built without pyplot (no global state;
notebooks display them, :func:`tagvis_lib.notebook.reporting.save_figure` writes them as PNG and PDF).
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import av
import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from PIL import Image

from ..data.clips import ClipIndices
from ..utils.atomic import atomic_path


def tag_values(tags: np.ndarray) -> np.ndarray:
    """(M,) scalar view of instance tags ``(M,)`` or ``(M, D)``: the tag itself when D = 1, else the
    projection on the first principal axis of the M tags."""
    tags = np.asarray(tags, dtype=np.float64)
    if tags.ndim == 1:
        return tags
    if tags.shape[1] == 1 or len(tags) < 2:
        return tags[:, 0]
    centred = tags - tags.mean(0)
    axis = np.linalg.svd(centred, full_matrices=False)[2][0]
    return centred @ (axis * np.sign(axis[np.abs(axis).argmax()]))


def instance_colors(tags: np.ndarray, cmap: str = "turbo", vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """uint8 (M, 3) colour of each instance from its tag ``(M,)`` or ``(M, D)``.

    The tag range [vmin, vmax] (default: the instances' own range) spans the colormap's 0.1..0.9.
    """
    values = tag_values(tags)
    if len(values) == 0:
        return np.zeros((0, 3), dtype=np.uint8)
    lo = values.min() if vmin is None else vmin
    hi = values.max() if vmax is None else vmax
    pos = np.full(len(values), 0.5) if hi <= lo else 0.1 + 0.8 * np.clip((values - lo) / (hi - lo), 0, 1)
    return (colormaps[cmap](pos)[:, :3] * 255).round().astype(np.uint8)


def overlay_masks(frames: np.ndarray, labels: np.ndarray, colors: np.ndarray, alpha: float = 0.5,
                  outline: bool = True) -> np.ndarray:
    """Blend instance colours into frames.

    frames: uint8 (L, H, W, 3); labels: int (L, H, W) 0 = none, m + 1 = instance m (or one frame
    without the L axis); colors: uint8 (M, 3). Instance borders are drawn opaque when ``outline``.
    Returns uint8 of the frames' shape.
    """
    frames = np.asarray(frames)
    labels = np.asarray(labels).astype(np.int64)
    lut = np.concatenate([np.zeros((1, 3)), np.asarray(colors, dtype=np.float64).reshape(-1, 3)])
    inside = (labels > 0)[..., None]
    blended = np.where(inside, (1 - alpha) * frames + alpha * lut[labels], frames)
    if outline:
        edge = np.zeros(labels.shape, dtype=bool)  # an instance pixel with a 4-neighbour of another label
        rows = labels[..., :-1, :] != labels[..., 1:, :]
        cols = labels[..., :, :-1] != labels[..., :, 1:]
        edge[..., :-1, :] |= rows
        edge[..., 1:, :] |= rows
        edge[..., :, :-1] |= cols
        edge[..., :, 1:] |= cols
        edge &= labels > 0
        blended = np.where(edge[..., None], lut[labels], blended)
    return blended.round().clip(0, 255).astype(np.uint8)


def tag_histogram_figure(frame_indices: np.ndarray, tag_map: np.ndarray, foreground: np.ndarray,
                         instance_tags: np.ndarray | None = None, bins: int = 64, cmap: str = "turbo") -> Figure:
    """Histogram of the foreground tags of each processed frame over time.

    frame_indices: (P,); tag_map: (P, h, w) scalar tags (e.g. ``TagSummary.tag_map``); foreground:
    bool (P, h, w); instance_tags: (M,) instance tags on the same scale, drawn as lines in their
    instance colour. One column per frame, darker = more pixels; separated instances are bands.
    """
    values = np.asarray(tag_map, dtype=np.float32)[np.asarray(foreground, dtype=bool)]
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    if instance_tags is not None and len(instance_tags):
        lo, hi = min(lo, float(np.min(instance_tags))), max(hi, float(np.max(instance_tags)))
    hi = hi if hi > lo else lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    hist = np.stack([np.histogram(t[f], bins=edges)[0] for t, f in zip(tag_map, foreground)], axis=1)
    fig = Figure(figsize=(7, 3.2))
    ax = fig.add_subplot()
    ax.imshow(np.log1p(hist), origin="lower", aspect="auto", cmap="Greys", interpolation="nearest",
              extent=(-0.5, len(frame_indices) - 0.5, lo, hi))
    if instance_tags is not None and len(instance_tags):
        for value, color in zip(instance_tags, instance_colors(np.asarray(instance_tags), cmap=cmap)):
            ax.axhline(float(value), color=color / 255.0, lw=1.2, ls="--")
    step = max(1, len(frame_indices) // 8)
    ax.set_xticks(range(0, len(frame_indices), step), [str(int(f)) for f in frame_indices[::step]])
    ax.set_xlabel("frame")
    ax.set_ylabel("tag")
    ax.set_title("foreground tags over time (dashed: instance tags)")
    fig.tight_layout()
    return fig


def class_colors(num_classes: int, cmap: str = "tab20") -> np.ndarray:
    """uint8 (C + 1, 3): black background, then a categorical colour per class index 1..C."""
    cm = colormaps[cmap]
    order = [(2 * i) % cm.N + (2 * i // cm.N) % 2 for i in range(num_classes)]  # tab20: saturated shades first
    rgb = np.array([cm(j)[:3] for j in order]).reshape(-1, 3) * 255
    return np.concatenate([np.zeros((1, 3)), rgb]).round().astype(np.uint8)


def semantic_figure(frames: np.ndarray, semantic: np.ndarray, class_names: Sequence[str], titles: Sequence[str] | None = None,
                    alpha: float = 0.6) -> Figure:
    """Semantic branch output over a few frames with a legend of the classes present.

    frames: uint8 (N, H, W, 3); semantic: int (N, h, w) class index 0..C (0 background, resized to
    the frames by nearest neighbour); class_names: C names of class indices 1..C.
    """
    frames, semantic = np.asarray(frames), np.asarray(semantic).astype(np.int64)
    colors = class_colors(len(class_names))
    fig = Figure(figsize=(3 * len(frames), 2.4))
    for i, (frame, sem) in enumerate(zip(frames, semantic)):
        if sem.shape != frame.shape[:2]:
            sem = np.asarray(Image.fromarray(sem.astype(np.uint8)).resize(frame.shape[1::-1], Image.NEAREST)).astype(np.int64)
        ax = fig.add_subplot(1, len(frames), i + 1)
        ax.imshow(overlay_masks(frame, sem, colors[1:], alpha=alpha, outline=False))
        ax.set_axis_off()
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    present = sorted({int(c) for c in np.unique(semantic) if c > 0})
    handles = [Patch(color=colors[c] / 255.0, label=class_names[c - 1]) for c in present]
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=min(6, len(present)), fontsize=8)
    fig.tight_layout(rect=(0, 0.1 if handles else 0, 1, 1))
    return fig


def overlay_figure(frames: np.ndarray, labels: np.ndarray, colors: np.ndarray, titles: Sequence[str] | None = None) -> Figure:
    """A row of frames (N, H, W, 3) with their instance masks (N, H, W) overlaid in ``colors`` (M, 3)."""
    fig = Figure(figsize=(3 * len(frames), 2.2))
    for i, image in enumerate(overlay_masks(frames, labels, colors)):
        ax = fig.add_subplot(1, len(frames), i + 1)
        ax.imshow(image)
        ax.set_axis_off()
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    fig.tight_layout()
    return fig


def video_codec() -> str:
    """``libx264`` (H.264) when the installed FFmpeg has it, else ``mpeg4``."""
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def write_mp4(path: str | os.PathLike, frames: np.ndarray, fps: float = 10.0) -> None:
    """Write uint8 frames (L, H, W, 3) as an mp4 (yuv420p; odd sizes padded by one edge pixel)."""
    frames = np.asarray(frames, dtype=np.uint8)
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    codec = video_codec()
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream(codec, rate=max(1, round(fps)))
            stream.width, stream.height = frames.shape[2], frames.shape[1]
            stream.pix_fmt = "yuv420p"
            if codec == "libx264":
                stream.options = {"crf": "20", "preset": "veryfast"}
            for frame in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode())


def write_gif(path: str | os.PathLike, frames: np.ndarray, fps: float = 10.0, max_width: int | None = 480) -> None:
    """Write uint8 frames (L, H, W, 3) as a looping GIF, downscaled to at most ``max_width`` pixels wide."""
    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
    if max_width is not None and images and images[0].width > max_width:
        size = (max_width, max(1, round(images[0].height * max_width / images[0].width)))
        images = [im.resize(size, Image.BILINEAR) for im in images]
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=max(20, round(1000 / fps)), loop=0)



#: Colours shared by the figures: kept frames, dropped runs, padding, paper values, our values.
KEPT, DROPPED, PADDED, PAPER, OURS = "#1f77b4", "#d62728", "#bbbbbb", "#999999", "#1f77b4"
TERMS = ("spectra", "specter", "tempra", "temper")


def clip_timeline_figure(num_frames: int, clips: Sequence[ClipIndices], inference: tuple[np.ndarray, np.ndarray],
                         labels: Sequence[str] | None = None) -> Figure:
    """Which frames of a video of ``num_frames`` frames make each clip, on a common timeline.

    One row per training clip (``clips``, e.g. the draws of successive epochs): kept frames as blue
    ticks, dropped runs of consecutive frames as red spans; a last row for the inference clip
    ``inference = (indices (T,), valid (T,))``, with padding repeats in grey.
    """
    rows = len(clips) + 1
    fig = Figure(figsize=(9, 0.45 * rows + 1.1))
    ax = fig.add_subplot()
    names = list(labels) if labels is not None else [f"training clip {i + 1}" for i in range(len(clips))]
    for r, clip in enumerate(clips):
        y = rows - 1 - r
        for start, length in clip.drops:
            ax.add_patch(_span(start, length, y, DROPPED))
        kept = clip.indices[clip.valid]
        ax.vlines(kept, y - 0.3, y + 0.3, color=KEPT, lw=1.5)
        ax.vlines(clip.indices[~clip.valid], y - 0.3, y + 0.3, color=PADDED, lw=3)
    indices, valid = (np.asarray(a) for a in inference)
    ax.vlines(indices[valid], -0.3, 0.3, color="black", lw=1.5)
    if (~valid).any():
        ax.vlines(indices[~valid], -0.3, 0.3, color=PADDED, lw=3)
    ax.set_yticks(range(rows), ["inference clip", *names[::-1]])
    ax.set_xlim(-1, num_frames)
    ax.set_ylim(-0.7, rows - 0.3)
    ax.set_xlabel(f"frame of the video ({num_frames} frames)")
    ax.legend(handles=[Patch(color=KEPT, label="kept frame"), Patch(color=DROPPED, label="dropped run (1-5 frames)"),
                       Patch(color="black", label="inference frame"), Patch(color=PADDED, label="padding (invalid)")],
              loc="upper center", bbox_to_anchor=(0.5, -0.32), ncol=4, fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def _span(start: int, length: int, y: float, color: str) -> Rectangle:
    return Rectangle((start - 0.5, y - 0.3), length, 0.6, color=color, alpha=0.35, lw=0)


def loss_curves_figure(rows: Sequence[Mapping[str, Any]], terms: Sequence[str] = (*TERMS, "ce", "total")) -> Figure:
    """One panel per loss term against the step, from the ``"train"`` lines of ``metrics.jsonl``.

    A term spanning more than 30x (and never 0) is drawn on a log axis, the others on a linear one.
    """
    steps = np.array([r["step"] for r in rows])
    fig = Figure(figsize=(3.2 * min(3, len(terms)), 2.4 * int(np.ceil(len(terms) / 3))))
    for i, term in enumerate(terms):
        ax = fig.add_subplot(int(np.ceil(len(terms) / 3)), min(3, len(terms)), i + 1)
        values = np.array([np.nan if r.get(term) is None else r[term] for r in rows], dtype=np.float64)
        ax.plot(steps, values, color=OURS, lw=1.2, marker="." if len(steps) < 30 else None)
        low, high = np.nanmin(values, initial=np.inf), np.nanmax(values, initial=-np.inf)
        if np.isfinite(low) and low > 0 and high / low > 30:
            ax.set_yscale("log")
        ax.set_title(f"L_{term}" if term in TERMS else term, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    return fig


def tagging_terms_figure(sweeps: Mapping[str, Mapping[str, np.ndarray]], margin: float) -> Figure:
    """The four tagging terms against each swept toy parameter (``tagging_term_sweep`` results).

    ``sweeps`` maps ``"offset"``, ``"spread"`` or ``"drift"`` to ``{"values", "spectra", ...}``.
    The push terms fall to 0 once the instances are ``margin`` apart; the pull terms grow with the
    spread of the pixels (spectra) and the drift of the frame means (tempra, and spectra too, since
    it pulls to the clip mean).
    """
    xlabels = {"offset": "distance between the two instances' tags", "spread": "spread of pixel tags (std)",
               "drift": "drift of the frame means per frame"}
    fig = Figure(figsize=(4 * len(sweeps), 3.4))
    for i, (name, sweep) in enumerate(sweeps.items()):
        ax = fig.add_subplot(1, len(sweeps), i + 1)
        for term in TERMS:
            values = np.asarray(sweep[term], dtype=np.float64)
            ax.plot(sweep["values"], values if name == "offset" else np.maximum(values, 1e-3), label=f"L_{term}", lw=1.5)
        if name == "offset":  # the push terms are linear in the distance: a linear axis shows it
            ax.axvline(margin, color="black", ls=":", lw=1)
            ax.annotate("G", (margin, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -12),
                        textcoords="offset points", fontsize=9)
        else:  # the pull terms grow quadratically over orders of magnitude
            ax.set_yscale("log")
        ax.set_xlabel(xlabels.get(name, name), fontsize=9)
        ax.set_ylabel("loss")
    handles, names = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=len(TERMS), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def table3_figure(rows: Sequence[Mapping[str, Any]]) -> Figure:
    """Horizontal bars of J&F per Table III row: the paper's value beside ours.

    ``rows`` are :func:`tagvis_lib.notebook.reporting.table3_rows` (keys ``w/o``, ``J&F (paper)``, ``J&F``,
    ``J&F 95% CI``); a row not measured has no bar of ours, one with an interval an error bar.
    """
    names = [r["w/o"] for r in rows]
    paper = np.array([r["J&F (paper)"] for r in rows], dtype=np.float64)
    ours = np.array([np.nan if r.get("J&F") is None else r["J&F"] for r in rows], dtype=np.float64)
    y = np.arange(len(rows))[::-1]
    fig = Figure(figsize=(8, 0.42 * len(rows) + 1.2))
    ax = fig.add_subplot()
    ax.barh(y + 0.2, paper, height=0.38, color=PAPER, label="paper (DAVIS'19 val)")
    ax.barh(y - 0.2, np.nan_to_num(ours), height=0.38, color=OURS, label="this run (mean of the seeds)")
    bounds = [_interval(r.get("J&F 95% CI")) for r in rows]
    for yy, value, bound in zip(y, ours, bounds):
        if bound is not None and np.isfinite(value):
            ax.errorbar(value, yy - 0.2, xerr=[[value - bound[0]], [bound[1] - value]], color="black", capsize=2, lw=0.8)
    for yy, value in zip(y, ours):
        if np.isfinite(value):
            ax.text(value + 0.5, yy - 0.2, f"{value:.1f}", va="center", fontsize=7)
    ax.set_yticks(y, [n if len(n) < 32 else n.replace(" + ", " +\n", 1) for n in names], fontsize=8)
    ax.set_xlabel("J&F (%)")
    ax.set_xlim(0, 100)
    ax.set_title("Table III: without each component (J&F)", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def _interval(text: Any) -> tuple[float, float] | None:
    """``"[low, high]"`` (a table cell) -> (low, high); None for an empty cell."""
    if not text:
        return None
    low, high = str(text).strip("[]").split(",")
    return float(low), float(high)


def presence_figure(present: np.ndarray, names: Sequence[str], colors: np.ndarray | None = None) -> Figure:
    """Which instance is visible in which frame: present bool (N, T) as one bar per instance."""
    present = np.asarray(present, dtype=bool)
    fig = Figure(figsize=(8, 0.35 * len(present) + 0.9))
    ax = fig.add_subplot()
    for n, row in enumerate(present):
        color = OURS if colors is None else np.asarray(colors[n]) / 255.0
        frames = np.flatnonzero(row)
        ax.broken_barh([(f - 0.5, 1) for f in frames], (len(present) - 1 - n - 0.35, 0.7), color=color)
    ax.set_yticks(range(len(present))[::-1], list(names))
    ax.set_xlim(-0.5, present.shape[1] - 0.5)
    ax.set_xlabel("frame")
    ax.set_title("instances present per frame", fontsize=10)
    fig.tight_layout()
    return fig


def tag_maps_figure(tags: np.ndarray, titles: Sequence[str] | None = None, cmap: str = "turbo") -> Figure:
    """Scalar tag maps (T, H, W) side by side on a shared colour scale, with a colour bar."""
    tags = np.asarray(tags, dtype=np.float64)
    fig = Figure(figsize=(2.2 * len(tags) + 0.8, 2.0))
    axes = [fig.add_subplot(1, len(tags), t + 1) for t in range(len(tags))]
    for t, ax in enumerate(axes):
        image = ax.imshow(tags[t], cmap=cmap, vmin=tags.min(), vmax=tags.max(), interpolation="nearest")
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_title(titles[t] if titles is not None else f"frame {t}", fontsize=9)
    fig.colorbar(image, ax=axes, shrink=0.8, label="tag")
    return fig


def tag_distance_figure(instance_tags: np.ndarray, margin: float, names: Sequence[str] | None = None) -> Figure:
    """Pairwise Euclidean distances of the instance tags ``(M, D)`` (or ``(M,)``) against the margin G.

    The matrix the push terms act on, in every tag dimension at once (a 1-D projection can put
    instances closer than they are): a cell at or above G (outlined colour scale midpoint) is a pair
    L_specter no longer pushes apart; below G it still does.
    """
    tags = np.asarray(instance_tags, dtype=np.float64)
    tags = tags[:, None] if tags.ndim == 1 else tags
    m = len(tags)
    dist = np.sqrt(((tags[:, None] - tags[None]) ** 2).sum(-1)) if m else np.zeros((0, 0))
    names = list(names) if names is not None else [str(i + 1) for i in range(m)]
    fig = Figure(figsize=(1.0 + 0.55 * max(m, 2), 0.8 + 0.5 * max(m, 2)))
    ax = fig.add_subplot()
    image = ax.imshow(dist, cmap="RdYlGn", vmin=0.0, vmax=2.0 * margin)
    for i in range(m):
        for j in range(m):
            if i != j:
                ax.text(j, i, f"{dist[i, j]:.1f}", ha="center", va="center", fontsize=7,
                        fontweight="bold" if dist[i, j] < margin else "normal")
    ax.set_xticks(range(m), names, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(m), names, fontsize=7)
    below = int((dist[np.triu_indices(m, 1)] < margin).sum()) if m > 1 else 0
    ax.set_title(f"tag distances (G = {margin:g}): {below} of {m * (m - 1) // 2} pairs closer than G", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="distance (green: >= G)")
    fig.tight_layout()
    return fig


def budget_curve_figure(points: Sequence[Mapping[str, Any]], chosen: int | None = None, target: float = 0.9) -> Figure:
    """J&F of the full model against its training steps (:func:`~tagvis_lib.notebook.experiments.budget_curve`),
    with ``target`` x the full schedule's J&F and the ``chosen`` Table III budget marked."""
    steps = np.array([p["steps"] for p in points], dtype=np.float64)
    jf = np.array([100.0 * p["J&F-Mean"] for p in points])
    fig = Figure(figsize=(5.5, 3.2))
    ax = fig.add_subplot()
    order = np.argsort(steps)
    ax.plot(steps[order], jf[order], "o-", color=OURS, label="full model, DAVIS valid")
    full = [100.0 * p["J&F-Mean"] for p in points if p.get("budget") is None]
    if full:
        ax.axhline(target * full[0], color=PAPER, ls="--", lw=1, label=f"{target:g} x full schedule")
    if chosen is not None:
        ax.axvline(chosen, color=DROPPED, ls=":", lw=1, label=f"Table III budget ({chosen} steps)")
    ax.set_xlabel("training steps")
    ax.set_ylabel("J&F (%)")
    ax.set_title("How long each Table III row trains", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig
