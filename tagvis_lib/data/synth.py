"""The embedded synthetic benchmark: procedural videos written as YouTube-VIS and as DAVIS.

``write_benchmark(out, ...)`` writes ``out/ytvis/{train,valid}.json`` with
``out/ytvis/{train,valid}/JPEGImages/<video>/<frame>.jpg`` (frame files ``00000.jpg``, ``00005.jpg``,
... as YouTube-VIS names every 5th source frame) and the same videos in ``out/DAVIS/``
(``JPEGImages/480p/<seq>/00000.jpg``, ``00001.jpg``, ..., ``Annotations_unsupervised/480p/<seq>/*.png``
palette PNGs, ``ImageSets/2017/{train,val}.txt``; YouTube-VIS ``valid`` is DAVIS ``val``). Unlike the
published YouTube-VIS, ``valid.json`` HAS annotations: the benchmark is ours, so it is evaluated locally.
Annotations alternate between uncompressed RLE (odd annotation ids, as the published train.json)
and compressed RLE (even ids), so both reader paths run. Frames, PNGs and JSON are written first to
last, the JSON and split files last and atomically: an interrupted run leaves no JSON behind.

Each video is drawn from ``numpy.random.default_rng([seed, split, index])`` (deterministic per seed,
and independent of how many videos are asked for):

- length: video ``i % 4 == 0`` has 18..31 frames, ``i % 4 == 1`` 65..84, the others 32..64;
- background: a procedural texture (value noise, stripes, checker or gradient, muted colours plus
  grain) on a canvas 1.5 times the frame, seen through a camera that pans across it;
- 1..5 instances (weights .1/.25/.3/.2/.15) of the 5 :data:`CATEGORIES`, each with its own shape and
  hue family and a per-instance jitter of hue, saturation and value; after the first, an instance
  repeats an already drawn category with probability 0.5, so same-category instances are common;
- motion: "stay" (inside the frame), "enter" (comes in from beyond a side edge, late), "leave"
  (goes out early) or "cross" (both); the first instance stays or leaves, so frame 0 is never empty;
- scale: the radius changes by a factor exp(U(-0.7, 0.7)) over the video; shapes also rotate;
- depth: a random order; nearer instances occlude farther ones. Masks are the visible parts.

An instance is present in a frame when at least one pixel of it is visible (else its YouTube-VIS
segmentation is null); instances never visible are dropped. Instances are ordered by first visible
frame (ties: farthest first), and instance ``k`` is annotation ``k`` of its video and DAVIS label ``k + 1``. So the objects
visible in frame 0 get the labels 1..K0 and those entering later the labels above: the official DAVIS
evaluation (K taken from the first annotation frame) scores exactly the frame-0 objects and treats
the later entrants as background, while :class:`DAVISDataset` trains on all of them.
"""
from __future__ import annotations

import colorsys
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_utils
from PIL import Image
from scipy import ndimage

from ..constants import SYNTH_TRAIN_VIDEOS, SYNTH_VALID_VIDEOS
from ..utils.atomic import atomic_open, write_json
from .davis import encode_palette_png
from .ytvis import encode_rle

#: Categories of the benchmark: shape and hue family (hue in 0..1).
CATEGORIES = [
    {"id": 1, "name": "disc", "supercategory": "shape", "hue": 0.0},
    {"id": 2, "name": "square", "supercategory": "shape", "hue": 0.6},
    {"id": 3, "name": "triangle", "supercategory": "shape", "hue": 0.33},
    {"id": 4, "name": "ring", "supercategory": "shape", "hue": 0.12},
    {"id": 5, "name": "cross", "supercategory": "shape", "hue": 0.8},
]
DEFAULT_TRAIN_VIDEOS = SYNTH_TRAIN_VIDEOS
DEFAULT_VALID_VIDEOS = SYNTH_VALID_VIDEOS
#: YouTube-VIS split -> (seed code, DAVIS split); DAVIS 2017 calls its test split "test-dev".
SPLITS = {"train": (0, "train"), "valid": (1, "val"), "test": (2, "test-dev")}
STYLES = ("simple", "textured")
_MODES = ("stay", "enter", "leave", "cross")


@dataclass
class SynthVideo:
    """The ground truth the generator drew for one video (``N`` instances, ``T`` frames).

    Attributes:
        name: folder name (``train0000``, ``valid0003``, ...).
        frames: uint8 ``(T, H, W, 3)`` before JPEG compression.
        masks: bool ``(N, T, H, W)`` visible pixels; disjoint across instances.
        categories: int64 ``(N,)`` category ids.
        present: bool ``(N, T)`` at least one visible pixel.
        occlusion: float ``(N, T)`` fraction of the in-frame shape hidden by nearer instances.
        radius: float ``(N, T)`` shape radius in pixels (scale change).
        colours: float ``(N, 3)`` RGB 0..255 of each instance before shading.
        modes: ``N`` motion modes ("stay", "enter", "leave", "cross").
    """

    name: str
    frames: np.ndarray
    masks: np.ndarray
    categories: np.ndarray
    present: np.ndarray
    occlusion: np.ndarray
    radius: np.ndarray
    colours: np.ndarray
    modes: list[str]


def make_video(split: str, index: int, seed: int = 0, height: int = 96, width: int = 160,
               style: str = "simple") -> SynthVideo:
    """Draw and render video ``index`` of ``split`` ("train", "valid" or "test") in ``style``.

    ``style="textured"`` is :func:`tagvis_lib.data.textured.make_textured_video` (its frame size varies
    per video around ``height`` x ``width``); ``"simple"`` is the flat-shaded style described above.
    """
    if style == "textured":
        from .textured import make_textured_video

        return make_textured_video(split, index, seed, height, width)
    if style != "simple":
        raise ValueError(f"unknown synth style {style!r}; expected one of {STYLES}")
    rng = np.random.default_rng([seed, SPLITS[split][0], index])
    kind = index % 4
    length = int(rng.integers(18, 32) if kind == 0 else rng.integers(65, 85) if kind == 1 else rng.integers(32, 65))
    canvas, offsets = _background(rng, height, width, length)
    while True:
        video = _render(f"{split}{index:04d}", rng, canvas, offsets, height, width)
        if video.present[:, 0].any():
            return video


def write_benchmark(
    out: str | os.PathLike,
    n_train: int = DEFAULT_TRAIN_VIDEOS,
    n_valid: int = DEFAULT_VALID_VIDEOS,
    seed: int = 0,
    height: int = 96,
    width: int = 160,
    style: str = "simple",
    n_test: int = 0,
) -> dict[str, Path]:
    """Write the benchmark under ``out``; returns the paths of its roots, JSON and split files.

    Splits: YouTube-VIS ``train``, ``valid`` and (``n_test > 0``) ``test``, which are DAVIS ``train``,
    ``val`` and ``test-dev``; every split carries annotations.
    """
    if style not in STYLES:
        raise ValueError(f"unknown synth style {style!r}; expected one of {STYLES}")
    out = Path(out)
    ytvis, davis = out / "ytvis", out / "DAVIS"
    paths = {"root": out, "ytvis": ytvis, "davis": davis}
    categories = [{k: c[k] for k in ("id", "name", "supercategory")} for c in CATEGORIES]
    for split, count in (("train", n_train), ("valid", n_valid), ("test", n_test)):
        if split == "test" and count == 0:
            continue
        davis_split = SPLITS[split][1]
        videos, annotations, names = [], [], []
        for index in range(count):
            video = make_video(split, index, seed, height, width, style)
            names.append(video.name)
            video_id = index + 1
            frame_dir = ytvis / split / "JPEGImages" / video.name
            file_names = [f"{video.name}/{5 * t:05d}.jpg" for t in range(len(video.frames))]
            _write_frames(video, frame_dir, davis / "JPEGImages" / "480p" / video.name)
            _write_labels(video, davis / "Annotations_unsupervised" / "480p" / video.name)
            frame_h, frame_w = video.frames.shape[1:3]
            videos.append({"id": video_id, "width": frame_w, "height": frame_h, "length": len(file_names),
                           "file_names": file_names})
            for k in range(len(video.categories)):
                annotations.append(_annotation(len(annotations) + 1, video_id, video, k))
        paths[f"ytvis_{split}"] = ytvis / f"{split}.json"
        write_json(paths[f"ytvis_{split}"], {
            "info": {"description": f"tagvis synthetic benchmark ({style} style)", "seed": seed, "style": style,
                     "version": 1},
            "licenses": [], "videos": videos, "categories": categories, "annotations": annotations,
        })
        paths[f"davis_{davis_split}"] = davis / "ImageSets" / "2017" / f"{davis_split}.txt"
        with atomic_open(paths[f"davis_{davis_split}"], "w", encoding="utf-8") as fh:
            fh.write("".join(n + "\n" for n in names))
    return paths


def _annotation(ann_id: int, video_id: int, video: SynthVideo, k: int) -> dict:
    segs, boxes, areas = [], [], []
    for t in range(video.masks.shape[1]):
        if not video.present[k, t]:
            segs.append(None), boxes.append(None), areas.append(None)
            continue
        rle = mask_utils.encode(np.asfortranarray(video.masks[k, t], dtype=np.uint8))
        boxes.append([float(v) for v in mask_utils.toBbox(rle)])
        areas.append(int(mask_utils.area(rle)))
        segs.append(encode_rle(video.masks[k, t], compressed=ann_id % 2 == 0))
    _, length, height, width = video.masks.shape
    return {"id": ann_id, "video_id": video_id, "category_id": int(video.categories[k]), "iscrowd": 0,
            "height": height, "width": width, "length": length,
            "segmentations": segs, "bboxes": boxes, "areas": areas}


def _write_frames(video: SynthVideo, ytvis_dir: Path, davis_dir: Path) -> None:
    ytvis_dir.mkdir(parents=True, exist_ok=True)
    davis_dir.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(video.frames):
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="JPEG", quality=95, subsampling=0)
        (ytvis_dir / f"{5 * t:05d}.jpg").write_bytes(buffer.getvalue())
        (davis_dir / f"{t:05d}.jpg").write_bytes(buffer.getvalue())


def _write_labels(video: SynthVideo, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    labels = np.zeros(video.masks.shape[1:], dtype=np.uint8)
    for k in range(len(video.masks)):
        labels[video.masks[k]] = k + 1
    for t in range(len(labels)):
        (folder / f"{t:05d}.png").write_bytes(encode_palette_png(labels[t]))


def _muted_colour(rng: np.random.Generator) -> np.ndarray:
    rgb = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.0, 0.25), rng.uniform(0.25, 0.8))
    return np.array(rgb, dtype=np.float32) * 255


def _background(rng: np.random.Generator, height: int, width: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Texture canvas uint8 ``(1.5 H, 1.5 W, 3)`` and camera offsets int ``(T, 2)`` (row, column)."""
    ch, cw = int(height * 1.5), int(width * 1.5)
    yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    along = xx * np.cos(angle) + yy * np.sin(angle)
    kind = rng.integers(4)
    if kind == 0:  # smooth value noise
        cell = int(rng.integers(6, 16))
        low = rng.random((ch // cell + 4, cw // cell + 4))
        weight = np.clip(ndimage.zoom(low, cell, order=3)[:ch, :cw], 0, 1)
    elif kind == 1:  # stripes
        weight = 0.5 + 0.5 * np.sin(2 * np.pi * along / rng.uniform(8, 24))
    elif kind == 2:  # checker
        period = rng.uniform(8, 20)
        weight = ((xx // period + yy // period) % 2).astype(np.float32)
    else:  # gradient
        weight = (along - along.min()) / np.ptp(along)
    c0, c1 = _muted_colour(rng), _muted_colour(rng)
    canvas = c0 * (1 - weight[..., None]) + c1 * weight[..., None] + rng.normal(0, 8, (ch, cw, 3))
    start = rng.uniform(0, 1, 2) * (ch - height, cw - width)
    end = rng.uniform(0, 1, 2) * (ch - height, cw - width)
    offsets = np.rint(start + np.linspace(0, 1, length)[:, None] * (end - start)).astype(np.int64)
    return np.clip(canvas, 0, 255).astype(np.uint8), offsets


def _draw_instances(rng: np.random.Generator, height: int, width: int, length: int) -> list[dict]:
    count = int(rng.choice(5, p=[0.1, 0.25, 0.3, 0.2, 0.15])) + 1
    cats: list[int] = []
    instances = []
    s = np.linspace(0, 1, length)
    for n in range(count):
        if cats and rng.random() < 0.5:
            cat = int(rng.choice(cats))
        else:
            cat = int(rng.integers(len(CATEGORIES)))
        cats.append(cat)
        mode = str(rng.choice(["stay", "leave"], p=[0.7, 0.3]) if n == 0 else rng.choice(_MODES, p=[0.35, 0.25, 0.2, 0.2]))
        r0 = rng.uniform(0.09, 0.2) * height
        radius = r0 * np.exp(rng.uniform(-0.7, 0.7) * s)
        reach = width / 2 + radius.max() + rng.uniform(0.05, 0.6) * width  # centre distance beyond an edge
        side = rng.choice([-1.0, 1.0])
        x0 = width / 2 + side * reach if mode in ("enter", "cross") else rng.uniform(0.15, 0.85) * width
        x1 = width / 2 - side * reach if mode == "cross" else (
            width / 2 + side * reach if mode == "leave" else rng.uniform(0.15, 0.85) * width)
        y0, y1 = rng.uniform(0.25, 0.75, 2) * height
        wobble = rng.uniform(0, 0.08) * height * np.sin(2 * np.pi * rng.uniform(0.5, 2) * s + rng.uniform(0, 2 * np.pi))
        hue = (CATEGORIES[cat]["hue"] + rng.uniform(-0.035, 0.035)) % 1.0
        colour = np.array(colorsys.hsv_to_rgb(hue, rng.uniform(0.55, 0.95), rng.uniform(0.65, 1.0))) * 255
        instances.append({
            "category": CATEGORIES[cat]["id"], "shape": CATEGORIES[cat]["name"], "mode": mode,
            "x": x0 + (x1 - x0) * s, "y": y0 + (y1 - y0) * s + wobble, "radius": radius,
            "angle": rng.uniform(0, 2 * np.pi) + rng.uniform(-np.pi, np.pi) * s, "colour": colour.astype(np.float32),
        })
    depth = rng.permutation(count)  # instances[depth[0]] is the farthest
    return [instances[d] for d in depth]


def shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside test on rotated coordinates ``u, v`` in units of the radius."""
    rr = u * u + v * v
    if shape == "disc":
        return rr <= 1.0
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.8
    if shape == "triangle":
        a = np.deg2rad([90.0, 210.0, 330.0])
        return np.all(u[..., None] * np.cos(a) + v[..., None] * np.sin(a) <= 0.5, axis=-1)
    if shape == "ring":
        return (rr <= 1.0) & (rr >= 0.55**2)
    return ((np.abs(u) <= 0.3) & (np.abs(v) <= 1.0)) | ((np.abs(v) <= 0.3) & (np.abs(u) <= 1.0))


def _render(name: str, rng: np.random.Generator, canvas: np.ndarray, offsets: np.ndarray,
            height: int, width: int) -> SynthVideo:
    length = len(offsets)
    instances = _draw_instances(rng, height, width, length)
    count = len(instances)
    frames = np.empty((length, height, width, 3), dtype=np.uint8)
    labels = np.zeros((length, height, width), dtype=np.int16)
    amodal = np.zeros((count, length))
    for t, (oy, ox) in enumerate(offsets):
        frame = canvas[oy:oy + height, ox:ox + width].astype(np.float32)
        for k, inst in enumerate(instances):  # far to near
            cx, cy, r, th = inst["x"][t], inst["y"][t], inst["radius"][t], inst["angle"][t]
            y0, y1 = max(int(cy - r) - 1, 0), min(int(cy + r) + 2, height)
            x0, x1 = max(int(cx - r) - 1, 0), min(int(cx + r) + 2, width)
            if y0 >= y1 or x0 >= x1:
                continue
            gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float32) + 0.5
            dx, dy = (gx - cx) / r, (gy - cy) / r
            inside = shape_mask(inst["shape"], dx * np.cos(th) + dy * np.sin(th), -dx * np.sin(th) + dy * np.cos(th))
            amodal[k, t] = inside.sum()
            shade = np.clip(1.0 - 0.25 * dy, 0.6, 1.3)[..., None]
            window = frame[y0:y1, x0:x1]
            window[inside] = np.clip(inst["colour"] * shade, 0, 255)[inside]
            labels[t, y0:y1, x0:x1][inside] = k + 1
        frames[t] = np.clip(frame, 0, 255).astype(np.uint8)
    return assemble_video(name, frames, labels, amodal, instances, [inst["radius"] for inst in instances],
                          [inst["colour"] for inst in instances])


def assemble_video(name: str, frames: np.ndarray, labels: np.ndarray, amodal: np.ndarray, instances: list[dict],
                   radius: list[np.ndarray], colours: list[np.ndarray]) -> SynthVideo:
    """The :class:`SynthVideo` of a rendered video, instances in the documented order.

    ``labels`` (T, H, W) holds ``k + 1`` where instance ``k`` (far to near, as drawn) is visible;
    ``amodal`` (K, T) its in-frame shape areas; ``instances`` their dicts (``category``, ``mode``),
    ``radius`` their (T,) radii and ``colours`` their RGB. Instances never visible are dropped; the
    rest are ordered by first visible frame, then depth.
    """
    count, length = len(instances), len(frames)
    masks = labels[None] == np.arange(1, count + 1, dtype=np.int16)[:, None, None, None]
    present = masks.any(axis=(2, 3))
    visible_area = masks.sum(axis=(2, 3))
    occlusion = np.where(amodal > 0, 1.0 - visible_area / np.maximum(amodal, 1), 0.0)
    seen = [k for k in range(count) if present[k].any()]
    order = sorted(seen, key=lambda k: (int(np.argmax(present[k])), k))  # first visible frame, then depth
    return SynthVideo(
        name=name,
        frames=frames,
        masks=masks[order],
        categories=np.array([instances[k]["category"] for k in order], dtype=np.int64),
        present=present[order],
        occlusion=occlusion[order],
        radius=np.array([radius[k] for k in order]).reshape(len(order), length),
        colours=np.array([colours[k] for k in order]).reshape(len(order), 3),
        modes=[instances[k]["mode"] for k in order],
    )
