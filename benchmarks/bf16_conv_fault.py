"""The oneDNN fault that ``tagvis_lib.model.conv.Conv3d`` avoids, reproduced side by side.

Under bf16 autocast on the CPU, torch 2.13's ``nn.Conv3d`` with a ``(3, 1, 1)`` kernel over few
frames (layer3 of the encoder sees 2 frames of an 8-frame clip) now and then returns NaN weight
gradients, or crashes the process, depending on what freed memory holds. Each (convolution, memory
format, shape) runs ``--trials`` backward passes in a fresh process, after each one filling freed
memory with NaN; the table counts the passes with a non-finite gradient and says whether the process
crashed.

A second table trains the cpu-profile network (random weights, random 2-frame clips and labels,
cross-entropy, bf16) for ``--steps`` Adam steps with its bottleneck's 3x3x3 convolution as
``nn.Conv3d`` or as this package's ``Conv3d``, and counts the steps whose weight gradient of that
convolution is not finite (alone, that kernel did not fail; inside the network it does).

    python benchmarks/bf16_conv_fault.py [--trials 10] [--steps 60]
"""
from __future__ import annotations

import argparse
import subprocess
import sys

SHAPES = [(32, 2, 12, 20), (16, 2, 24, 40), (64, 1, 6, 10), (16, 8, 48, 80)]  # channels, T, H, W

CHILD = """
import sys, torch
from torch import nn
from tagvis_lib.model.conv import Conv3d
kind, fmt, c, t, h, w, trials = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
torch.manual_seed(0)
conv = (nn.Conv3d if kind == "nn.Conv3d" else Conv3d)(c, c, (3, 1, 1), padding=(1, 0, 0), bias=False)
x = torch.randn(2, c, t, h, w)
if fmt == "channels_last_3d":
    conv, x = conv.to(memory_format=torch.channels_last_3d), x.contiguous(memory_format=torch.channels_last_3d)
bad = 0
for _ in range(trials):
    torch.full((50_000_000,), float("nan"))
    conv.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv(x)
    y.float().sum().backward()
    bad += not bool(torch.isfinite(conv.weight.grad).all())
print(bad)
"""

NETWORK_CHILD = """
import sys, torch
from torch import nn
from tagvis_lib.config import apply_overrides, profile_config
from tagvis_lib.model import build_model
from tagvis_lib.model.precision import autocast
kind, steps = sys.argv[1], int(sys.argv[2])
torch.manual_seed(0)
model = build_model(apply_overrides(profile_config("cpu"), {"model.num_classes": 5}))
conv = model.bottleneck[1][0]
if kind == "nn.Conv3d":
    plain = nn.Conv3d(conv.in_channels, conv.out_channels, conv.kernel_size, padding=conv.padding, bias=False)
    plain.load_state_dict(conv.state_dict())
    conv = model.bottleneck[1][0] = plain.to(memory_format=torch.channels_last_3d)
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
bad = 0
for _ in range(steps):
    x = torch.randn(2, 3, 2, 96, 160).contiguous(memory_format=torch.channels_last_3d)
    with autocast(torch.device("cpu"), "bf16"):
        logits = model(x).logits.float()
    opt.zero_grad()
    nn.functional.cross_entropy(logits, torch.randint(0, 6, (2, 2, 96, 160))).backward()
    if not torch.isfinite(conv.weight.grad).all():
        bad += 1
        conv.weight.grad.zero_()
    opt.step()
print(bad)
"""


def child_cell(script: str, *args: object) -> str:
    """Run ``script`` in a fresh Python with ``args``: its printed count, or how the process crashed."""
    proc = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else f"crashed (exit {proc.returncode})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    import torch

    print(f"torch {torch.__version__}; kernel (3, 1, 1), batch 2, bf16 autocast, {args.trials} backward passes each")
    print("| C x T x H x W | memory format | nn.Conv3d: NaN passes | Conv3d (2-D dispatch): NaN passes |")
    print("|---|---|---|---|")
    for c, t, h, w in SHAPES:
        for fmt in ("contiguous", "channels_last_3d"):
            cells = []
            for kind in ("nn.Conv3d", "Conv3d"):
                cells.append(child_cell(CHILD, kind, fmt, c, t, h, w, args.trials))
            print(f"| {c}x{t}x{h}x{w} | {fmt} | {cells[0]} | {cells[1]} |", flush=True)

    print(f"\ncpu-profile network, 2-frame clips, bottleneck kernel (3, 3, 3), bf16, {args.steps} training steps each")
    print("| bottleneck convolution | steps with a non-finite weight gradient |")
    print("|---|---|")
    for kind in ("nn.Conv3d", "Conv3d"):
        print(f"| {kind} | {child_cell(NETWORK_CHILD, kind, args.steps)} |", flush=True)


if __name__ == "__main__":
    main()
