"""Forward speed and peak memory of TagVIS for T in {8, 16, 32} at two resolutions.

For the full model and the tags-only ablation (Table III's last row), on CPU and on CUDA when
present. Prints one table row per (device, variant, T, H x W) with frames/s, ms per clip, the peak
memory of the forward and that peak divided by the voxel count T*H*W, which stays about constant
when memory grows linearly with T*H*W.

Memory: on CPU each configuration runs in a fresh process and the peak is the growth of the
process's maximum resident set size (``resource.getrusage``) over the forward passes; on CUDA it is
``torch.cuda.max_memory_allocated`` minus the memory held before the forward.

Usage: python benchmarks/model_speed.py [--width 0.25 --embed-dim 64 --repeats 3 --threads 1]
"""
from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import resource
import time

import numpy as np
import torch

from tagvis_lib.ablations import TABLE3_ABLATIONS
from tagvis_lib.config import ExperimentConfig, apply_overrides
from tagvis_lib.model import build_model

TAGS_ONLY = "Tag-Based Attention + Self-Attention + Decoder + Connector"
VARIANTS = {"full": {}, "tags-only": TABLE3_ABLATIONS[TAGS_ONLY]}


def measure(args: argparse.Namespace, device: str, variant: str, t: int, h: int, w: int) -> dict:
    """Build the model, run ``args.warmup`` + ``args.repeats`` forwards of one (1, 3, t, h, w) clip."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    base = ExperimentConfig()
    base.model.encoder_width, base.model.embed_dim = args.width, args.embed_dim
    cfg = apply_overrides(base, VARIANTS[variant]).model
    model = build_model(cfg).to(device).eval()
    frames = torch.randn(1, 3, t, h, w, device=device)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        held = torch.cuda.memory_allocated()
    else:
        held = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with torch.inference_mode():
        for _ in range(args.warmup):
            model(frames)
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(args.repeats):
            model(frames)
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - start) / args.repeats
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() - held
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - held
    params = sum(p.numel() for p in model.parameters())
    return dict(device=device, variant=variant, t=t, h=h, w=w, seconds=seconds, peak=peak, params=params)


def run_isolated(args: argparse.Namespace, *config) -> dict:
    """``measure`` in a fresh process, so that the resident-set peak belongs to this configuration."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(measure, args, *config).result()


def linear_fit(voxels: np.ndarray, peaks: np.ndarray) -> tuple[float, float, float]:
    """Least-squares ``peaks ~ a + b * voxels``; returns a, b and the largest relative residual."""
    b, a = np.polyfit(voxels, peaks, 1)
    return a, b, float(np.max(np.abs(a + b * voxels - peaks) / peaks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=float, default=0.25, help="encoder_width (cpu profile: 0.25)")
    parser.add_argument("--embed-dim", type=int, default=64, help="embed_dim (cpu profile: 64)")
    parser.add_argument("--frames", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--sizes", nargs="+", default=["96x160", "192x320"], help="HxW")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu, and cuda when present")
    args = parser.parse_args()
    devices = args.devices or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes]

    print(f"TagVIS forward, batch 1, encoder_width={args.width}, embed_dim={args.embed_dim}, "
          f"{args.threads} CPU thread(s), {args.repeats} timed run(s) after {args.warmup} warm-up")
    header = f"{'device':6} {'variant':9} {'T':>3} {'HxW':>8} {'params':>10} {'frames/s':>9} {'ms/clip':>9} {'peak MB':>9} {'B/voxel':>8}"
    print(header)
    print("-" * len(header))
    fits = []
    for device in devices:
        for variant in VARIANTS:
            voxels, peaks = [], []
            for h, w in sizes:
                for t in args.frames:
                    config = (device, variant, t, h, w)
                    r = run_isolated(args, *config) if device == "cpu" else measure(args, *config)
                    print(
                        f"{device:6} {variant:9} {t:3d} {f'{h}x{w}':>8} {r['params']:10,d} {t / r['seconds']:9.1f} "
                        f"{1000 * r['seconds']:9.1f} {r['peak'] / 2**20:9.1f} {r['peak'] / (t * h * w):8.1f}",
                        flush=True,
                    )
                    voxels.append(t * h * w)
                    peaks.append(r["peak"])
            fits.append((device, variant, *linear_fit(np.array(voxels, float), np.array(peaks, float))))
    print("\nPeak memory fitted as a + b * T*H*W (least squares over the rows above):")
    for device, variant, a, b, dev in fits:
        print(f"{device:6} {variant:9} a = {a / 2**20:7.1f} MB, b = {b:6.1f} B/voxel, largest deviation {100 * dev:4.1f}%")


if __name__ == "__main__":
    main()
