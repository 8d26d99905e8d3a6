"""Wall time of the two evaluations on generated cases the size the issue names.

YouTube-VIS: 50 videos x 36 frames x 10 instances at 360x640, ground truth with uncompressed RLEs
(as train.json has them) and noisy detections (shifted, rescaled, dropped frames, false positives).
DAVIS: 10 sequences x 50 frames at 480x854, 4 objects with void, 5 proposals per sequence (noisy,
permuted copies of the objects and a spurious one) as palette PNGs.

Both cases are written to a temporary folder. Timed (best of --repeat runs): YouTube-VIS on the
parsed JSON (as the official seconds are measured) and from the files; DAVIS from the PNG files with
1 and 2 threads. The official code's seconds on these cases on the project's machines (from the
issue) are the reference for the speed-up column.

    python benchmarks/eval_speed.py [--repeat 3] [--workers 1 2]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from tagvis_lib.metrics import evaluate_davis, evaluate_ytvis

#: Seconds the official evaluations take on these cases on the project's machines (issue 4).
OFFICIAL_SECONDS = {"ytvis": 1.2, "davis": 90.0}
#: Speed-up the issue asks for.
TARGET_SPEEDUP = {"ytvis": 5.0, "davis": 50.0}


def _ellipse(h: int, w: int, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    """(h, w) bool ellipse, drawn only inside its bounding box."""
    out = np.zeros((h, w), bool)
    y0, y1 = max(int(cy - ry), 0), min(int(cy + ry) + 1, h)
    x0, x1 = max(int(cx - rx), 0), min(int(cx + rx) + 1, w)
    if y1 > y0 and x1 > x0:
        yy, xx = np.ogrid[y0:y1, x0:x1]
        out[y0:y1, x0:x1] = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
    return out


def _tracks(rng: np.random.Generator, n: int, t: int, h: int, w: int) -> list[np.ndarray]:
    """n moving ellipses as (t, 5) arrays of (cy, cx, ry, rx, present)."""
    out = []
    for _ in range(n):
        size = rng.choice([0.04, 0.1, 0.25]) * min(h, w) * rng.uniform(0.7, 1.6)
        start = rng.uniform([0.1 * h, 0.1 * w], [0.9 * h, 0.9 * w])
        vel = rng.normal(0, 2.0, 2)
        steps = np.arange(t)[:, None]
        pos = np.clip(start + vel * steps, 0, [h - 1, w - 1])
        radii = np.tile([size, size * rng.uniform(0.6, 1.8)], (t, 1))
        present = np.ones((t, 1))
        if rng.random() < 0.3:  # enters late or leaves early
            cut = rng.integers(1, t)
            present[:cut] = 0 if rng.random() < 0.5 else 1
            present[cut:] = 1 - present[0]
        out.append(np.hstack([pos, radii, present]))
    return out


def _uncompressed(mask: np.ndarray) -> dict:
    """Uncompressed (list counts) RLE of a (h, w) bool mask, as train.json stores them."""
    flat = mask.flatten(order="F").astype(np.int8)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat[0]:
        counts = [0] + counts
    return {"size": list(mask.shape), "counts": counts}


def make_ytvis_case(root: Path, videos: int = 50, frames: int = 36, instances: int = 10,
                    size: tuple[int, int] = (360, 640), categories: int = 10, seed: int = 0
                    ) -> tuple[Path, Path]:
    """Write gt.json (YouTube-VIS schema) and results.json under root; returns their paths."""
    rng = np.random.default_rng(seed)
    h, w = size
    gt = {"videos": [], "categories": [{"id": c, "name": f"c{c}", "supercategory": "thing"}
                                       for c in range(1, categories + 1)], "annotations": []}
    results = []
    for v in range(1, videos + 1):
        gt["videos"].append({"id": v, "height": h, "width": w, "length": frames,
                             "file_names": [f"v{v}/{f:05d}.jpg" for f in range(frames)]})
        for track in _tracks(rng, instances, frames, h, w):
            cat = int(rng.integers(1, categories + 1))
            segs, areas = [], []
            for cy, cx, ry, rx, present in track:
                m = _ellipse(h, w, cy, cx, ry, rx)
                ok = present > 0 and m.any()
                segs.append(_uncompressed(m) if ok else None)
                areas.append(int(m.sum()) if ok else None)
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "video_id": v,
                                      "category_id": cat, "iscrowd": int(rng.random() < 0.03),
                                      "segmentations": segs, "areas": areas,
                                      "bboxes": [None] * frames})
            if rng.random() < 0.15:
                continue  # missed instance
            shift, scale = rng.normal(0, 6, 2), rng.uniform(0.8, 1.2)
            det_cat = cat if rng.random() < 0.85 else int(rng.integers(1, categories + 1))
            results.append(_detection(v, det_cat, track, shift, scale, rng, h, w))
        for track in _tracks(rng, int(rng.integers(2, 7)), frames, h, w):  # false positives
            results.append(_detection(v, int(rng.integers(1, categories + 1)), track,
                                      np.zeros(2), 1.0, rng, h, w))
    gt_path, res_path = root / "gt.json", root / "results.json"
    gt_path.write_text(json.dumps(gt))
    res_path.write_text(json.dumps(results))
    return gt_path, res_path


def _detection(video: int, cat: int, track: np.ndarray, shift: np.ndarray, scale: float,
               rng: np.random.Generator, h: int, w: int) -> dict:
    segs = []
    for cy, cx, ry, rx, present in track:
        if present <= 0 or rng.random() < 0.05:
            segs.append(None)
            continue
        m = _ellipse(h, w, cy + shift[0], cx + shift[1], ry * scale, rx * scale)
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        segs.append({"size": [h, w], "counts": rle["counts"].decode()})
    return {"video_id": video, "category_id": cat, "score": round(float(rng.random()), 3),
            "segmentations": segs}


def _save_png(labels: np.ndarray, path: Path) -> None:
    img = Image.fromarray(labels.astype(np.uint8))
    palette = np.random.default_rng(1).integers(0, 256, (256, 3), dtype=np.uint8)
    palette[0] = 0
    img.putpalette(palette.flatten().tolist())
    img.save(path)


def make_davis_case(root: Path, sequences: int = 10, frames: int = 50, objects: int = 4,
                    proposals: int = 5, size: tuple[int, int] = (480, 854), seed: int = 0
                    ) -> tuple[Path, Path]:
    """Write a DAVIS tree (Annotations_unsupervised, ImageSets) and results; returns both roots."""
    rng = np.random.default_rng(seed)
    h, w = size
    davis, results = root / "DAVIS", root / "results"
    names = [f"seq{s:02d}" for s in range(sequences)]
    (davis / "ImageSets" / "2017").mkdir(parents=True)
    (davis / "ImageSets" / "2017" / "val.txt").write_text("\n".join(names) + "\n")
    for name in names:
        ann_dir = davis / "Annotations_unsupervised" / "480p" / name
        res_dir = results / name
        ann_dir.mkdir(parents=True)
        res_dir.mkdir(parents=True)
        tracks = _tracks(rng, objects, frames, h, w)
        for tr in tracks:
            tr[0, 4] = 1  # every object is in the first frame (it fixes K)
        perm = rng.permutation(max(proposals, objects))  # proposal id (0-based) of each object
        shifts = rng.normal(0, 4, (objects, 2))
        extra = _tracks(rng, max(proposals - objects, 0), frames, h, w)
        for f in range(frames):
            gt = np.zeros((h, w), np.uint8)
            res = np.zeros((h, w), np.uint8)
            for k, tr in enumerate(tracks):
                cy, cx, ry, rx, present = tr[f]
                if present > 0:
                    m = _ellipse(h, w, cy, cx, ry, rx)
                    gt[m] = k + 1
                    gt[m & ~_ellipse(h, w, cy, cx, ry - 2, rx - 2) & (rng.random() < 0.2)] = 255
                if perm[k] < proposals and (present > 0 or rng.random() < 0.1):
                    dy, dx = shifts[k] + rng.normal(0, 1.5, 2)
                    res[_ellipse(h, w, cy + dy, cx + dx, ry * 1.05, rx * 0.95)] = perm[k] + 1
            for j, tr in enumerate(extra):
                cy, cx, ry, rx, _ = tr[f]
                res[_ellipse(h, w, cy, cx, ry, rx)] = perm[objects + j] + 1
            _save_png(gt, ann_dir / f"{f:05d}.png")
            _save_png(res, res_dir / f"{f:05d}.png")
    return davis, results


def _best_of(fn, repeat: int) -> tuple[float, dict]:
    best, out = float("inf"), {}
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="thread counts to time the DAVIS evaluation with")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        gt_json, res_json = make_ytvis_case(root)
        davis_root, davis_res = make_davis_case(root)
        gt, res = json.loads(gt_json.read_text()), json.loads(res_json.read_text())
        sec, out = _best_of(lambda: evaluate_ytvis(gt, res), args.repeat)
        rows.append(("ytvis", "JSON already parsed", sec, f"AP={out['AP']:.4f}"))
        sec, out = _best_of(lambda: evaluate_ytvis(gt_json, res_json), args.repeat)
        rows.append(("ytvis", "from the JSON files", sec, f"AP={out['AP']:.4f}"))
        for workers in args.workers:
            sec, out = _best_of(lambda: evaluate_davis(davis_root, davis_res, "val",
                                                       workers=workers), args.repeat)
            rows.append(("davis", f"PNG files, {workers} thread(s)", sec,
                         f"J&F={out['J&F-Mean']:.4f}"))
    print("ytvis: 50 videos x 36 frames x 10 instances, 360x640; "
          "davis: 10 sequences x 50 frames, 480x854")
    print(f"{'evaluation':<10} {'input':<26} {'seconds':>8} {'official s':>10} {'speed-up':>9} "
          f"{'target':>7}  result")
    for name, case, sec, result in rows:
        print(f"{name:<10} {case:<26} {sec:8.3f} {OFFICIAL_SECONDS[name]:10.1f} "
              f"{OFFICIAL_SECONDS[name] / sec:8.1f}x {TARGET_SPEEDUP[name]:6.0f}x  {result}")


if __name__ == "__main__":
    main()
