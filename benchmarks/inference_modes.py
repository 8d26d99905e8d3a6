"""YouTube-VIS AP and frames/s of the inference options: clips, top-k classes, grouping, interpolation.

Rows (all other settings from the checkpoint's config): the paper's single 32-frame clip against
overlapping clips linked by tags, top-1 against top-3 classes per mask, the three tag groupings, and
nearest against linear mask interpolation. AP, AP50, AR10 from ``tagvis_lib.metrics.evaluate_ytvis``
on the split's annotations; network fps (frames through the network / forward seconds) and video
fps (video frames / end-to-end seconds), after the warm-up runs.

Without ``--checkpoint`` it writes the synthetic benchmark and a random-weights smoke model into a
temporary folder (AP is then near 0 and only the fps columns mean something). With a trained model:

    python benchmarks/inference_modes.py --checkpoint runs/cpu/last.pt --ytvis data/synth/ytvis --split valid
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from tagvis_lib.config import ExperimentConfig, apply_overrides, profile_config
from tagvis_lib.data import YTVISDataset, write_benchmark
from tagvis_lib.inference import predict_dataset, ytvis_entries
from tagvis_lib.model import build_model, load_model, save_checkpoint
from tagvis_lib.training.distributed import resolve_device

ROWS = [
    ("single clip, top-1 (paper)", {}),
    ("single clip, top-3", {"inference.topk_classes": 3}),
    ("overlapping clips, top-1", {"inference.long_video": "overlapping"}),
    ("overlapping clips, top-3", {"inference.long_video": "overlapping", "inference.topk_classes": 3}),
    ("grouping seed_grow", {"inference.grouping": "seed_grow"}),
    ("grouping histogram (D = 1)", {"inference.grouping": "histogram"}),
    ("linear interpolation", {"inference.interpolation": "linear"}),
]


def run_row(model: torch.nn.Module, dataset: YTVISDataset, cfg: ExperimentConfig, categories: list, device: torch.device) -> dict:
    """Predict the split with ``cfg``; AP numbers (when the metrics exist) and fps."""
    entries, frames, network_frames, model_s, total_s = [], 0, 0, 0.0, 0.0
    start = time.perf_counter()
    for sample, pred in predict_dataset(model, dataset, cfg, device, progress=False):
        entries += ytvis_entries(pred, sample.video_id, categories)
        frames += pred.timing["frames"]
        network_frames += pred.timing["network_frames"]
        model_s += pred.timing["model_s"]
        total_s += pred.timing["total_s"]
    row = {"entries": len(entries), "network_fps": network_frames / model_s, "video_fps": frames / total_s,
           "seconds": time.perf_counter() - start}
    try:
        from tagvis_lib.metrics import evaluate_ytvis
    except ImportError:
        return row
    row.update(evaluate_ytvis(dataset.json_path, entries))
    return row


def smoke_setup(folder: Path, videos: int) -> tuple[Path, Path, str]:
    """Synthetic benchmark (``videos`` valid videos of 96x160) and a random smoke-profile checkpoint."""
    paths = write_benchmark(folder, n_train=0, n_valid=videos)
    dataset = YTVISDataset(paths["ytvis"], "valid")
    cfg = apply_overrides(profile_config("smoke"), {"model.num_classes": dataset.num_classes})
    torch.manual_seed(0)
    save_checkpoint(folder / "random_smoke.pt", build_model(cfg.model), cfg, dataset.categories)
    return folder / "random_smoke.pt", paths["ytvis"], "valid"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="tagvis checkpoint (default: a random smoke model)")
    parser.add_argument("--ytvis", help="YouTube-VIS root (default: the synthetic benchmark)")
    parser.add_argument("--split", default="valid", help="annotated split to score (default %(default)s)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--videos", type=int, default=10, help="synthetic valid videos when no --ytvis (default %(default)s)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed forward passes before each row")
    args = parser.parse_args()
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint, root, split = args.checkpoint, args.ytvis, args.split
        if checkpoint is None or root is None:
            smoke_ck, smoke_root, smoke_split = smoke_setup(Path(tmp), args.videos)
            checkpoint = checkpoint or smoke_ck
            root, split = (root, split) if root else (smoke_root, smoke_split)
        dataset = YTVISDataset(root, split)
        model, cfg, categories = load_model(checkpoint, device, num_classes=dataset.num_classes)
        cfg = apply_overrides(cfg, {"inference.warmup_runs": args.warmup})
        print(f"checkpoint {checkpoint}; {len(dataset)} videos of {root} [{split}]; device {device}; "
              f"clip {cfg.inference.clip_length} frames at "
              f"{cfg.inference.height or cfg.data.height}x{cfg.inference.width or cfg.data.width}, D = {cfg.model.tag_dim}")
        header = f"| {'setting':<28} | {'AP':>5} | {'AP50':>5} | {'AR10':>5} | {'entries':>7} | {'network fps':>11} | {'video fps':>9} | {'s':>5} |"
        print(header)
        print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
        for name, overrides in ROWS:
            if overrides.get("inference.grouping") == "histogram" and cfg.model.tag_dim != 1:
                continue
            row = run_row(model, dataset, apply_overrides(cfg, overrides), categories, device)
            ap = [f"{100 * row[k]:5.1f}" if k in row else "  n/a" for k in ("AP", "AP50", "AR10")]
            print(f"| {name:<28} | {' | '.join(ap)} | {row['entries']:>7} | {row['network_fps']:>11.1f} | "
                  f"{row['video_fps']:>9.1f} | {row['seconds']:>5.1f} |", flush=True)


if __name__ == "__main__":
    main()
