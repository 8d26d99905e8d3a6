"""Predictions to the files users and evaluation servers take.

- YouTube-VIS: a JSON list of ``{video_id, category_id, score, segmentations}`` with one compressed
  RLE per frame (counts as a utf-8 string), ``null`` where the mask is empty in that frame; written
  as ``results.json`` plus a zip holding it under the name ``results.json`` (what the server takes).
  Model class index k maps to the dataset category ``categories[k - 1]["id"]``.
- DAVIS unsupervised: one palette PNG per frame and sequence, named like the annotation frames,
  0 background and 1..P proposals (P <= 20) numbered by descending score; where proposals overlap a
  higher-ranked one keeps the pixel.
- Raw video: per-frame palette PNGs, an overlay mp4 and a GIF (instances coloured by tag).
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from pycocotools import mask as mask_utils

from ..data.davis import write_palette_png
from ..utils.atomic import atomic_path, write_json
from .predictor import VideoPrediction, predict_dataset

#: At most this many proposals per DAVIS sequence (the benchmark's limit).
DAVIS_MAX_PROPOSALS = 20


def encode_track(masks: np.ndarray) -> list[dict[str, Any] | None]:
    """Compressed RLEs of ``masks: bool (L, H, W)``, counts as str; None for empty frames."""
    masks = np.asarray(masks, dtype=bool)
    rles = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    out: list[dict[str, Any] | None] = []
    for rle, any_pixel in zip(rles, masks.reshape(len(masks), -1).any(1)):
        out.append({"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("utf-8")} if any_pixel else None)
    return out


def ytvis_entries(prediction: VideoPrediction, video_id: int, categories: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Result entries of one video, one per (instance, class) entry of ``prediction``."""
    segs = [encode_track(prediction.labels == m + 1) for m in range(prediction.num_instances)]
    return [
        {"video_id": int(video_id), "category_id": int(categories[int(c) - 1]["id"]), "score": float(s),
         "segmentations": segs[int(m)]}
        for m, c, s in zip(prediction.entry_instance, prediction.classes, prediction.scores)
    ]


def write_ytvis_results(entries: list[dict[str, Any]], json_path: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``entries`` to ``json_path`` and ``<stem>.zip`` (holding ``results.json``), atomically.

    Returns (json path, zip path).
    """
    json_path = Path(json_path)
    zip_path = json_path.with_suffix(".zip")
    write_json(json_path, entries)
    with atomic_path(zip_path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.write(json_path, arcname="results.json")
    return json_path, zip_path


def paint_proposals(masks: np.ndarray, scores: np.ndarray, max_proposals: int = DAVIS_MAX_PROPOSALS) -> np.ndarray:
    """One label map from possibly overlapping proposals.

    masks: bool (K, ...); scores: (K,). The ``max_proposals`` best proposals get labels 1..P by
    descending score (stable); a pixel keeps the label of the best proposal covering it.
    Returns uint8 of ``masks.shape[1:]``.
    """
    masks = np.asarray(masks, dtype=bool)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:max_proposals]
    out = np.zeros(masks.shape[1:], dtype=np.uint8)
    for rank in range(len(order) - 1, -1, -1):  # worst first, so better proposals paint over it
        out[masks[order[rank]]] = rank + 1
    return out


def png_names(frame_names: Sequence[str]) -> list[str]:
    """Annotation PNG names of frames (``00000.jpg`` -> ``00000.png``)."""
    return [Path(name).stem + ".png" for name in frame_names]


def write_davis_sequence(prediction: VideoPrediction, out_dir: str | os.PathLike, frame_names: Sequence[str],
                         max_proposals: int = DAVIS_MAX_PROPOSALS) -> list[Path]:
    """``out_dir/<frame>.png`` for every frame: the instances ranked by their best score."""
    if len(frame_names) != prediction.labels.shape[0]:
        raise ValueError(f"{len(frame_names)} frame names for {prediction.labels.shape[0]} predicted frames")
    out_dir = Path(out_dir)
    scores = prediction.instance_scores
    ids = np.arange(1, prediction.num_instances + 1)
    paths = []
    for labels, name in zip(prediction.labels, png_names(frame_names)):
        paths.append(out_dir / name)
        write_palette_png(paths[-1], paint_proposals(labels[None] == ids[:, None, None], scores, max_proposals))
    return paths


def predict_split(model: Any, dataset: Any, cfg: Any, device: Any, categories: Sequence[dict[str, Any]] | None = None,
                  davis_dir: str | os.PathLike | None = None, progress: bool = False) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Predict every video of ``dataset`` and export it: YouTube-VIS result entries (``categories``
    given: the checkpoint's, class k is ``categories[k - 1]``) and/or DAVIS palette PNGs under
    ``davis_dir/<sequence>/`` (``davis_dir`` given).

    Returns (entries, run): the entries (empty without ``categories``) and ``run`` of :func:`timing_summary`.
    """
    entries: list[dict[str, Any]] = []
    timings = []
    for sample, prediction in predict_dataset(model, dataset, cfg, device, progress=progress):
        if categories is not None:
            entries.extend(ytvis_entries(prediction, sample.video_id, categories))
        if davis_dir is not None:
            write_davis_sequence(prediction, Path(davis_dir) / str(sample.video_id), sample.frame_names)
        timings.append(prediction.timing)
    return entries, timing_summary(timings)


def timing_summary(timings: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One run's figures from the ``VideoPrediction.timing`` dicts of its videos.

    videos; frames (video frames) and network_frames (clip frames through the network); precision;
    network_fps = network frames / forward seconds; video_fps = video frames / end-to-end seconds.
    """
    frames = sum(t["frames"] for t in timings)
    network_frames = sum(t["network_frames"] for t in timings)
    model_s = sum(t["model_s"] for t in timings)
    total_s = sum(t["total_s"] for t in timings)
    precisions = sorted({t["precision"] for t in timings})
    return {"videos": len(timings), "frames": int(frames), "network_frames": int(network_frames),
            "precision": ",".join(precisions), "network_fps": network_frames / max(model_s, 1e-12),
            "video_fps": frames / max(total_s, 1e-12)}


def write_video_outputs(frames: np.ndarray, prediction: VideoPrediction, out_dir: str | os.PathLike,
                        frame_names: Sequence[str], fps: float = 10.0, gif_width: int = 480) -> dict[str, Any]:
    """Per-frame palette PNGs (``masks/``), ``overlay.mp4`` and ``overlay.gif`` of a raw video.

    frames: uint8 (L, H, W, 3). Instances are numbered by descending score and coloured by tag.
    Returns {"masks": dir, "mp4": path, "gif": path}.
    """
    from ..notebook.figures import instance_colors, overlay_masks, write_gif, write_mp4

    out_dir = Path(out_dir)
    for labels, name in zip(prediction.labels, png_names(frame_names)):
        write_palette_png(out_dir / "masks" / name, labels)
    overlay = overlay_masks(frames, prediction.labels, instance_colors(prediction.instance_tags))
    mp4, gif = out_dir / "overlay.mp4", out_dir / "overlay.gif"
    write_mp4(mp4, overlay, fps=fps)
    write_gif(gif, overlay, fps=fps, max_width=gif_width)
    return {"masks": str(out_dir / "masks"), "mp4": str(mp4), "gif": str(gif)}

