"""Training clips per second from the synthetic benchmark, with 0 and 2 DataLoader workers.

Writes the benchmark (default: 40 train videos of 96x160) into a temporary folder, then times
full training epochs of ``ClipDataset(YTVISDataset(root, "train"), DataConfig())`` (T = 32 frames
at 96x160, random drops, crop, flips; one clip per video) through ``torch.utils.data.DataLoader``
with ``collate_clips``. The first epoch of each setting is a warm-up (worker start-up, file cache)
and is not timed. The main process uses ``--threads`` torch threads (default 1, as each worker).
Usage: ``python benchmarks/data_loading.py [--epochs 3] [--batch-size 2] [--threads 1]``.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from tagvis_lib.config import DataConfig
from tagvis_lib.data import YTVISDataset, write_benchmark
from tagvis_lib.data.torch_dataset import ClipDataset, collate_clips


def clips_per_second(dataset: ClipDataset, workers: int, epochs: int, batch_size: int) -> float:
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                                         collate_fn=collate_clips, persistent_workers=workers > 0)
    clips, seconds = 0, 0.0
    for epoch in range(epochs + 1):
        dataset.set_epoch(epoch)
        start = time.perf_counter()
        for batch in loader:
            clips += len(batch["video_id"]) if epoch else 0
        seconds += time.perf_counter() - start if epoch else 0.0
    return clips / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per setting")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--videos", type=int, default=40, help="train videos of the benchmark")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the main process")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = DataConfig()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        paths = write_benchmark(tmp, n_train=args.videos, n_valid=0, height=cfg.height, width=cfg.width)
        written = time.perf_counter() - start
        dataset = ClipDataset(YTVISDataset(paths["ytvis"], "train"), cfg, train=True, seed=0)
        rates = {w: clips_per_second(dataset, w, args.epochs, args.batch_size) for w in (0, 2)}
    print(f"synthetic benchmark: {args.videos} train videos written in {written:.1f} s; "
          f"clips of T={cfg.clip_length} at {cfg.height}x{cfg.width}, batch {args.batch_size}, "
          f"{args.epochs} timed epochs; {os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}")
    print(f"{'workers':>8} | {'clips/s':>8} | {'vs 0 workers':>12}")
    print(f"{'-' * 8}-+-{'-' * 8}-+-{'-' * 12}")
    for workers, rate in rates.items():
        print(f"{workers:>8} | {rate:>8.1f} | {rate / rates[0]:>11.2f}x")


if __name__ == "__main__":
    main()
