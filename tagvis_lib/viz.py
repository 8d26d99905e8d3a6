"""Figures and overlays shared by the notebooks, the CLI and the tests.

Instances are coloured by their tag value: the tag (D = 1) or its projection on the first principal
axis of the instance tags (D > 1) is mapped through a colormap, so instances with close tags get
close colours, which is what the tagging loss is about. Figures are ``matplotlib.figure.Figure``
objects built without pyplot (no global state; notebooks display them, scripts save them).
"""
from __future__ import annotations

import os
from typing import Sequence

import av
import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from PIL import Image

from .io_utils import atomic_path


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
