"""TagVIS speed, peak memory and accuracy by precision and memory format, side by side in one run.

Variants: fp32, bf16 (autocast), channels_last_3d, bf16 + channels_last_3d, and with ``--compile``
also ``torch.compile`` of the fastest eager variant (its compile time reported apart; on the CPU with
256-bit vectors, since torch 2.13's AVX-512 bf16 code generation does not compile). Shapes:

- ``cpu``: the cpu profile's network (encoder width 0.25, embed dim 64, D = 4) on its training batch,
  2 clips of 8 x 96 x 160;
- ``cpu@256x448``: the same network, 1 clip of 8 x 256 x 448;
- ``paper@256x448``: the paper profile's network (full R(2+1)D-18), 1 clip of 8 x 256 x 448;
- ``paper@96x160``: the paper profile's network, 1 clip of 32 x 96 x 160;
- ``paper``: the paper profile's network at its own clip shape (1 clip of 32 x 360 x 640), one
  training step's time and peak memory; by default on CUDA only (tens of GB and minutes a step on a CPU).

For each (shape, variant): forward (inference mode) and forward + backward (training mode) time,
frames/s (clip frames x batch / seconds), peak memory and the largest absolute difference of the
tags and of the logits against fp32 contiguous (same weights and input, eval mode). Every cell runs
in a fresh process: on the CPU the peak is the growth of the process's maximum resident set over
the timed passes, on CUDA ``torch.cuda.max_memory_allocated`` minus the memory held before.

    python benchmarks/model_speed.py [--shapes cpu paper] [--repeats 3] [--threads 2] [--compile] [--devices cpu cuda]
"""
from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import resource
import time
import traceback
from dataclasses import replace

import torch

from tagvis_lib.config import profile_config
from tagvis_lib.model import build_model
from tagvis_lib.model.precision import autocast, resolve_precision

VARIANTS = {
    "fp32": ("fp32", "contiguous"),
    "bf16": ("bf16", "contiguous"),
    "channels_last_3d": ("fp32", "channels_last_3d"),
    "bf16+channels_last_3d": ("bf16", "channels_last_3d"),
}
COMPILED = "compile(bf16+channels_last_3d)"


def shape_config(name: str) -> tuple[object, int, tuple[int, int, int]]:
    """(model config, batch, (T, H, W)) of a shape name (see the module docstring)."""
    cpu, paper = profile_config("cpu"), profile_config("paper")
    if name == "cpu":
        return cpu.model, cpu.train.batch_size, (cpu.data.clip_length, cpu.data.height, cpu.data.width)
    if name == "cpu@256x448":
        return cpu.model, 1, (8, 256, 448)
    if name == "paper@256x448":
        return paper.model, 1, (8, 256, 448)
    if name == "paper@96x160":
        return paper.model, 1, (paper.data.clip_length, 96, 160)
    if name == "paper":
        return paper.model, 1, (paper.data.clip_length, paper.data.height, paper.data.width)
    raise ValueError(f"unknown shape {name!r}")


def _memory(device: str) -> int:
    if device == "cuda":
        return torch.cuda.max_memory_allocated()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def measure(shape: str, variant: str, device: str, repeats: int, warmup: int, threads: int) -> dict:
    """Times, peak memory and differences to fp32 of one (shape, variant) on ``device``."""
    torch.set_num_threads(threads)
    model_cfg, batch, (t, h, w) = shape_config(shape)
    compiled = variant == COMPILED
    precision, memory_format = VARIANTS["bf16+channels_last_3d" if compiled else variant]
    precision = resolve_precision(precision, device, "precision")
    torch.manual_seed(0)
    model_cfg = replace(model_cfg, num_classes=40, memory_format=memory_format)
    model = build_model(model_cfg).to(device)
    frames = torch.randn(batch, 3, t, h, w, device=device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    held = _memory(device)
    net = model
    compile_s = 0.0
    if compiled:
        if device == "cpu":  # torch 2.13's AVX-512 bf16 code generation fails to compile (CppCompileError)
            import torch._inductor.config as inductor_config

            inductor_config.cpp.simdlen = 256
        net = torch.compile(model)
        start = time.perf_counter()
        with torch.inference_mode(), autocast(device, precision):
            net(frames)
        compile_s = time.perf_counter() - start

    def forward() -> None:
        with torch.inference_mode(), autocast(device, precision):
            net(frames)

    def train_step() -> None:
        with autocast(device, precision):
            out = net(frames)
        (out.tags.float().square().mean() + out.logits.float().logsumexp(1).mean()).backward()
        model.zero_grad(set_to_none=True)

    seconds = {}
    for name, fn, mode in (("forward", forward, False), ("train", train_step, True)):
        model.train(mode)
        for _ in range(warmup):
            fn()
        _sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        _sync(device)
        seconds[name] = (time.perf_counter() - start) / repeats
    peak = _memory(device) - held
    # differences to fp32 contiguous with the same weights and buffers, eval mode
    reference = build_model(replace(model_cfg, memory_format="contiguous")).to(device).eval()
    reference.load_state_dict(model.state_dict())
    model.eval()
    with torch.inference_mode():
        ref = reference(frames)
        with autocast(device, precision):
            low = net(frames)
    diff_tags = float((low.tags.float() - ref.tags).abs().max())
    diff_logits = float((low.logits.float() - ref.logits).abs().max())
    return {"forward_s": seconds["forward"], "train_s": seconds["train"], "frames": batch * t, "peak": peak,
            "diff_tags": diff_tags, "diff_logits": diff_logits, "compile_s": compile_s, "precision": precision}


def run_isolated(*args) -> dict:
    """:func:`measure` in a fresh process; a failure becomes ``{"error": ...}``."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        try:
            return pool.submit(measure, *args).result()
        except Exception as exc:  # noqa: BLE001 - a failed variant is a row of the table
            return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]}" if str(exc) else
                    traceback.format_exception_only(exc)[-1].strip()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", nargs="+", default=None,
                        help="default: cpu, cpu@256x448, paper@256x448, paper@96x160, and paper (1x32x360x640) with CUDA")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--compile", action="store_true", help=f"add {COMPILED}")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu, and cuda when present")
    args = parser.parse_args()
    devices = args.devices or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    variants = args.variants + ([COMPILED] if args.compile else [])
    print(f"torch {torch.__version__}, {args.threads} CPU thread(s), {args.repeats} timed run(s) after {args.warmup} "
          "warm-up; frames/s = clip frames x batch / s; diff = max |x - x_fp32| (eval mode)")
    header = ("device", "shape", "B x T x H x W", "variant", "fwd fps", "fwd speed-up", "train fps", "train speed-up",
              "peak MB", "diff tags", "diff logits")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for device in devices:
        shapes = args.shapes or ["cpu", "cpu@256x448", "paper@256x448", "paper@96x160"] + (["paper"] if device == "cuda" else [])
        for shape in shapes:
            _, batch, (t, h, w) = shape_config(shape)
            base = None
            for variant in variants:
                r = run_isolated(shape, variant, device, args.repeats, args.warmup, args.threads)
                dims = f"{batch}x{t}x{h}x{w}"
                if "error" in r:
                    print(f"| {device} | {shape} | {dims} | {variant} | failed: {r['error']} |" + " |" * 6, flush=True)
                    continue
                base = base or r
                name = variant + (f" (compile {r['compile_s']:.0f} s)" if r["compile_s"] else "")
                print(f"| {device} | {shape} | {dims} | {name} | {r['frames'] / r['forward_s']:.1f} | "
                      f"{base['forward_s'] / r['forward_s']:.2f}x | {r['frames'] / r['train_s']:.1f} | "
                      f"{base['train_s'] / r['train_s']:.2f}x | {r['peak'] / 2**20:.0f} | {r['diff_tags']:.2e} | "
                      f"{r['diff_logits']:.2e} |", flush=True)


if __name__ == "__main__":
    main()
