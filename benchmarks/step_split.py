"""Where a cpu-profile training step goes, and what the encoder's BatchNorm costs, in one run.

Three tables, each measured inside this one process on the same batches (2 threads by default):

1. every BatchNorm layer of the cpu-profile encoder at its own input shape (bf16, channels-last, as
   in training): forward + backward with torch's ``nn.BatchNorm3d`` kernels against
   ``tagvis_lib.model.norm.BatchNorm3d`` (folded rows), alternating call by call, medians;
2. a whole training step (``Trainer._step``) with the encoder's BatchNorm as it is, with torch's
   kernels, and with every BatchNorm whose channel count is not a multiple of 16 replaced by a copy
   of its input (``x * 1.0``: not a network anyone trains, a bound on what those layers can still
   cost), alternating step by step, medians;
3. the step split into forward, objective, backward and optimiser, and the forward into the
   network's top-level modules (wall time between hooks; the CPU runs each call to its end), with
   the convolution arithmetic of each module's forward (2 x multiply-adds) and its rate, next to
   the rate of a 2048 x 2048 x 2048 bfloat16 matrix product on the same threads.

    python benchmarks/step_split.py [--ytvis ROOT] [--rounds 20] [--threads 2]

Without ``--ytvis`` the embedded benchmark is written to a temporary folder. Frames/s or speed-up
claims in the README quote these tables; a shared machine drifts by 10-20% between runs, so only
the comparisons inside one table mean much.
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import nn


def alternate(variants: dict[str, Callable[[], None]], rounds: int, warmup: int = 3) -> dict[str, float]:
    """Median seconds of each variant's call, the variants alternating (order flipped every round)."""
    names = list(variants)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(warmup + rounds):
        for n in names if r % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            variants[n]()
            if r >= warmup:
                times[n].append(time.perf_counter() - start)
    return {n: statistics.median(t) for n, t in times.items()}


@contextlib.contextmanager
def batchnorm_forward(forward: Callable | None) -> Iterator[None]:
    """``tagvis_lib.model.norm.BatchNorm3d.forward`` replaced by ``forward`` (None: as it is)."""
    from tagvis_lib.model.norm import BatchNorm3d

    kept = BatchNorm3d.forward
    if forward is not None:
        BatchNorm3d.forward = forward
    try:
        yield
    finally:
        BatchNorm3d.forward = kept


def copy_if_unaligned(module: nn.BatchNorm3d, x: torch.Tensor) -> torch.Tensor:
    """The bound of table 2: a copy of ``x`` where the channel count is not a multiple of 16."""
    from tagvis_lib.model.norm import CHANNEL_MULTIPLE

    return x * 1.0 if x.shape[1] % CHANNEL_MULTIPLE else nn.BatchNorm3d.forward(module, x)


def trainer_for(ytvis: Path, out: str, overrides: list[str] | None = None):
    """A cpu-profile Trainer (with dotted ``overrides``) in training mode and 8 of its batches."""
    from tagvis_lib.config import apply_overrides, profile_config
    from tagvis_lib.training.distributed import init_distributed
    from tagvis_lib.training.trainer import Trainer

    cfg = apply_overrides(profile_config("cpu"), overrides or [])
    trainer = Trainer(cfg, init_distributed("cpu"), out, "train", ytvis, None, False)
    trainer._build(False)
    trainer._train_mode()
    batches = []
    for epoch in range(8):
        trainer.sampler.set_epoch(epoch)
        trainer.clips.set_epoch(epoch)
        batches += list(trainer.loader)
        if len(batches) >= 8:
            break
    return trainer, batches[:8]


def batchnorm_table(trainer, batch, rounds: int) -> None:
    from tagvis_lib.model.norm import BatchNorm3d
    from tagvis_lib.model.precision import autocast

    shapes: dict[str, tuple[BatchNorm3d, torch.Size, torch.dtype]] = {}

    def record(name: str) -> Callable:
        def hook(module, args) -> None:
            shapes[name] = (module, args[0].shape, args[0].dtype)
        return hook

    hooks = [m.register_forward_pre_hook(record(name)) for name, m in trainer.model.named_modules()
             if isinstance(m, BatchNorm3d)]
    with torch.no_grad(), autocast(trainer.device, trainer.precision):
        trainer.model(batch["frames"])
    for hook in hooks:
        hook.remove()
    print("| BatchNorm3d input (B, C, T, H, W), bf16 channels-last | layers | torch's kernel, ms | folded rows, ms | ratio |")
    print("|---|---:|---:|---:|---:|")
    groups: dict[tuple, list[BatchNorm3d]] = {}
    for module, shape, dtype in shapes.values():
        groups.setdefault((tuple(shape), dtype), []).append(module)
    totals = [0.0, 0.0]
    for (shape, dtype), modules in groups.items():
        module = BatchNorm3d(shape[1]).train()
        x = torch.randn(shape).to(dtype).contiguous(memory_format=torch.channels_last_3d).requires_grad_()
        grad = torch.randn(shape).to(dtype).contiguous(memory_format=torch.channels_last_3d)

        def run(forward) -> Callable[[], None]:
            return lambda: forward(module, x).backward(grad)

        med = alternate({"torch": run(nn.BatchNorm3d.forward), "folded": run(BatchNorm3d.forward)}, rounds * 3)
        totals[0] += med["torch"] * len(modules)
        totals[1] += med["folded"] * len(modules)
        print(f"| {shape} | {len(modules)} | {med['torch'] * 1e3:.2f} | {med['folded'] * 1e3:.2f} | "
              f"{med['torch'] / med['folded']:.2f}x |")
    print(f"| all layers, forward + backward once each | {sum(len(m) for m in groups.values())} | "
          f"{totals[0] * 1e3:.1f} | {totals[1] * 1e3:.1f} | {totals[0] / totals[1]:.2f}x |")


def bound_table(trainer, batches, rounds: int) -> None:
    state = {"k": 0}

    def step(forward) -> Callable[[], None]:
        def run() -> None:
            batch = batches[state["k"] % len(batches)]
            state["k"] += 1
            with batchnorm_forward(forward):
                trainer._step(batch, list(range(len(batch["video_id"]))))
        return run

    reference = "torch's kernels"
    variants = {"folded rows (now)": step(None), reference: step(nn.BatchNorm3d.forward),
                "unaligned BatchNorms replaced by a copy (bound)": step(copy_if_unaligned)}
    med = alternate(variants, rounds)
    print()
    print("| cpu-profile training step, encoder BatchNorm | ms / step | ratio to torch's kernels |")
    print("|---|---:|---:|")
    for name, s in med.items():
        print(f"| {name} | {s * 1e3:.1f} | {med[reference] / s:.2f}x |")


def split_table(trainer, batches, rounds: int) -> None:
    from tagvis_lib.losses.objective import tagging_scale
    from tagvis_lib.model.precision import autocast

    model = trainer.model
    tops = [(f"encoder.{n}", m) for n, m in model.encoder.named_children()]
    tops += [(n, m) for n, m in model.named_children() if n != "encoder" and m is not None]
    started: dict[str, float] = {}
    module_times: dict[str, list[float]] = {n: [] for n, _ in tops}
    flops = conv_flops(tops, model, batches[0]["frames"].shape)
    for name, module in tops:
        module.register_forward_pre_hook(lambda m, a, name=name: started.__setitem__(name, time.perf_counter()))
        module.register_forward_hook(lambda m, a, o, name=name: module_times[name].append(time.perf_counter() - started[name]))
    parts: dict[str, list[float]] = {"forward": [], "objective": [], "backward": [], "optimiser": []}
    warmup = 3
    for k in range(warmup + rounds):
        batch = batches[k % len(batches)]
        seeds = list(range(len(batch["video_id"])))
        trainer.optimizer.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        with autocast(trainer.device, trainer.precision):
            tags, logits = model(batch["frames"])
        t1 = time.perf_counter()
        terms = trainer.objective.clip_mean((tags.float(), logits.float()),
                                            {"instance_ids": batch["instance_ids"], "semantic": batch["semantic"]},
                                            seeds, tag_scale=tagging_scale(trainer.step, trainer.cfg.loss))
        t2 = time.perf_counter()
        terms["total"].backward()
        t3 = time.perf_counter()
        trainer.optimizer.step()
        t4 = time.perf_counter()
        if k >= warmup:
            for name, s in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                parts[name].append(s)
    print()
    print("| part of a cpu-profile training step | ms (median) |")
    print("|---|---:|")
    for name, values in parts.items():
        print(f"| {name} | {statistics.median(values) * 1e3:.1f} |")
    print()
    print("| forward of | ms (median) | convolution GFLOP | GFLOP/s |")
    print("|---|---:|---:|---:|")
    for name, values in module_times.items():
        ms = statistics.median(values[warmup:]) * 1e3
        print(f"| {name} | {ms:.2f} | {flops[name] / 1e9:.3f} | {flops[name] / 1e6 / ms:.0f} |")
    print(f"| bf16 matrix product 2048 x 2048 x 2048 | | | {matmul_rate(torch.bfloat16):.0f} |")
    print(f"| fp32 matrix product 2048 x 2048 x 2048 | | | {matmul_rate(torch.float32):.0f} |")


def conv_flops(tops: list[tuple[str, nn.Module]], model: nn.Module, batch_shape: torch.Size) -> dict[str, float]:
    """2 x multiply-adds of the convolutions inside each named module of ``tops``, from one forward
    of ``model`` on a batch of ``batch_shape``."""
    total = {name: 0.0 for name, _ in tops}

    def count(name: str) -> Callable:
        def hook(conv, args, out) -> None:
            total[name] += 2.0 * out.numel() * conv.weight[0].numel()
        return hook

    hooks = [m.register_forward_hook(count(name)) for name, module in tops for m in module.modules()
             if isinstance(m, nn.modules.conv._ConvNd)]
    with torch.no_grad():
        model(torch.zeros(batch_shape))
    for hook in hooks:
        hook.remove()
    return total


def matmul_rate(dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    """GFLOP/s of an n x n x n matrix product in ``dtype`` (median of ``repeats``)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    seconds = alternate({"mm": lambda: torch.mm(a, b)}, repeats)["mm"]
    return 2.0 * n ** 3 / seconds / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ytvis", type=Path, default=None, help="a YouTube-VIS root with a train split")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory(prefix="tagvis-step-split-") as tmp:
        ytvis = args.ytvis
        if ytvis is None:
            from tagvis_lib.data import write_benchmark

            ytvis = Path(write_benchmark(Path(tmp) / "synth")["ytvis"])
        trainer, batches = trainer_for(ytvis, str(Path(tmp) / "run"))
        batchnorm_table(trainer, batches[0], args.rounds)
        bound_table(trainer, batches, args.rounds)
        split_table(trainer, batches, args.rounds)


if __name__ == "__main__":
    main()
