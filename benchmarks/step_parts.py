"""Parts of a training step, each against the way it was done before, side by side in one process.

A shared 2-core machine drifts by tens of percent between runs, so every comparison here alternates
the two variants step by step (or clip by clip) on the same inputs inside one process and reports
medians:

1. a cpu-profile training step (and the 2-frame x 8-clip setting of the textured recipe, README):
   attention through the fused ``scaled_dot_product_attention`` kernel against two matrix products
   (``tagvis_lib.model.attention.attention``), the objective scored clip by clip in a loop
   against ``TagVISObjective.clip_mean`` (one pass), and torch's ``nn.BatchNorm3d`` kernels against
   ``tagvis_lib.model.norm.BatchNorm3d`` (channels-last inputs of 11, 36, 57, ... channels folded
   into rows of a multiple of 16), and layers over one frame (layers 2-4 of 2-frame clips, layer 4
   of 8-frame ones) on their 5-D view against the plainly channels-last 4-D view
   (``tagvis_lib.model.precision.one_frame_channels_last``: BatchNorm and time kernels; the 5-D
   view left gradients in the contiguous layout); each change alone and all four together;
2. loading one training clip: frames opened by PIL from the path and resized as floats (before)
   against PIL on the file's bytes and a uint8 resize (now);
3. a whole training item (``ClipDataset[i]``) at both settings of table 1, its frames decoded from
   the files against read from a warm frame cache (``data.frame_cache_mb``).

    python benchmarks/step_parts.py [--ytvis ROOT] [--rounds 30]

Without ``--ytvis`` the embedded benchmark is written to a temporary folder.
"""
from __future__ import annotations

import argparse
import contextlib
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
# this folder's benchmark: alternating medians, a cpu-profile Trainer and 8 of its batches
from step_split import alternate, trainer_for

SETTINGS = {
    "cpu profile (8 frames x 2 clips)": [],
    "2 frames x 8 clips": ["data.clip_length=2", "train.batch_size=8", "inference.clip_overlap=1"],
}


def per_clip_loss(trainer, frames, ids, semantic, seeds):
    """The objective as training computed it before ``clip_mean``: one clip at a time."""
    from tagvis_lib.losses.objective import tagging_scale
    from tagvis_lib.model.precision import autocast
    from tagvis_lib.training.trainer import LOGGED

    with autocast(trainer.device, trainer.precision):
        output = trainer.model(frames)
    tags, logits = output[0].float(), output[1].float()
    per_clip, scale = [], tagging_scale(trainer.step, trainer.cfg.loss)
    for b, seed in enumerate(seeds):
        trainer.objective.tagging.generator.manual_seed(seed)
        part = {"instance_ids": ids[b:b + 1], "semantic": semantic[b:b + 1]}
        per_clip.append(trainer.objective((tags[b:b + 1], logits[b:b + 1]), part, tag_scale=scale))
    return {k: torch.stack([p[k] for p in per_clip]).mean() for k in LOGGED}


@contextmanager
def fused_attention() -> Iterator[None]:
    import tagvis_lib.model.attention as attention

    kept = attention.EXPLICIT_SCORES_MAX
    attention.EXPLICIT_SCORES_MAX = 0
    try:
        yield
    finally:
        attention.EXPLICIT_SCORES_MAX = kept


@contextmanager
def loop_objective() -> Iterator[None]:
    from tagvis_lib.training import trainer as trainer_module

    kept = trainer_module.Trainer._loss
    trainer_module.Trainer._loss = per_clip_loss
    try:
        yield
    finally:
        trainer_module.Trainer._loss = kept


@contextmanager
def torch_batchnorm() -> Iterator[None]:
    """No fold: every BatchNorm3d input takes torch's kernels (a one-frame input its 4-D view)."""
    from tagvis_lib.model import norm

    kept = norm.fold_factor
    norm.fold_factor = lambda channels, positions: None
    try:
        yield
    finally:
        norm.fold_factor = kept


@contextmanager
def five_d_one_frame() -> Iterator[None]:
    from tagvis_lib.model import precision

    kept = precision.one_frame_channels_last
    precision.one_frame_channels_last = lambda x: False
    try:
        yield
    finally:
        precision.one_frame_channels_last = kept


@contextmanager
def nothing() -> Iterator[None]:
    yield


def step_table(ytvis: Path, rounds: int) -> None:

    print("| setting | variant | ms / step | ratio to before |")
    print("|---|---|---:|---:|")
    for label, overrides in SETTINGS.items():
        with tempfile.TemporaryDirectory() as out:
            trainer, batches = trainer_for(ytvis, out, overrides)
            state = {"k": 0}

            def step(context) -> Callable[[], None]:
                def run() -> None:
                    batch = batches[state["k"] % len(batches)]
                    state["k"] += 1
                    with context():
                        trainer._step(batch, list(range(len(batch["video_id"]))))
                return run

            changes = {"explicit attention": fused_attention, "clip_mean objective": loop_objective,
                       "folded BatchNorm": torch_batchnorm, "one-frame layers in 4-D": five_d_one_frame}
            variants = {"before: fused attention, per-clip objective, torch BatchNorm, one frame in 5-D":
                            step(lambda: _all(*changes.values()))}
            for name, undo in changes.items():
                others = [c for c in changes.values() if c is not undo]
                variants[f"{name} only"] = step(lambda others=others: _all(*others))
            variants["now: all four"] = step(nothing)
            medians = alternate(variants, rounds, warmup=4)
        before = medians[next(iter(medians))]
        for name, s in medians.items():
            print(f"| {label} | {name} | {s * 1000:.1f} | {before / s:.2f}x |")


@contextmanager
def _all(*contexts) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for context in contexts:
            stack.enter_context(context())
        yield


def old_read(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def old_resize(frames: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True).clamp_(0, 255).contiguous()


def new_resize(frames: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True).float().contiguous()


def loading_table(ytvis: Path, rounds: int) -> None:
    from tagvis_lib.config import profile_config
    from tagvis_lib.data import YTVISDataset
    from tagvis_lib.data.video import read_image

    dataset = YTVISDataset(ytvis, "train")
    size = (profile_config("cpu").data.height, profile_config("cpu").data.width)
    clips = []
    for i in range(min(len(dataset), 16)):
        video = dataset._videos[i]
        names = video["file_names"][:8]
        clips.append([dataset.frames_dir / name for name in names])
    state = {"k": 0}

    def load(read, resize) -> Callable[[], None]:
        def run() -> None:
            paths = clips[state["k"] % len(clips)]
            state["k"] += 1
            resize(np.stack([read(p) for p in paths]), size)
        return run

    variants = {"before: PIL from the path, float resize": load(old_read, old_resize),
                "now: PIL on the file's bytes, uint8 resize": load(read_image, new_resize)}
    medians = alternate(variants, rounds * 4, warmup=4)
    print()
    print("| 8 frames read and resized to the cpu profile's 96x160 | ms / clip | ratio to before |")
    print("|---|---:|---:|")
    before = medians[next(iter(medians))]
    for name, s in medians.items():
        print(f"| {name} | {s * 1000:.2f} | {before / s:.2f}x |")


def item_table(ytvis: Path, rounds: int) -> None:
    """A whole training item (``ClipDataset[i]``: frames, masks, labels, augmentation), decoded afresh
    against read from a warm ``FrameCache`` (``data.frame_cache_mb``), at both settings."""
    import dataclasses

    from tagvis_lib.config import apply_overrides, profile_config
    from tagvis_lib.data import YTVISDataset
    from tagvis_lib.data.torch_dataset import ClipDataset

    videos = YTVISDataset(ytvis, "train")
    print()
    print("| setting | training item (one clip) | ms / clip | ratio to decoding |")
    print("|---|---|---:|---:|")
    for label, overrides in SETTINGS.items():
        data = apply_overrides(profile_config("cpu"), overrides).data
        fresh = ClipDataset(videos, dataclasses.replace(data, frame_cache_mb=0), seed=0)
        cached = ClipDataset(videos, dataclasses.replace(data, frame_cache_mb=max(data.frame_cache_mb, 1024)), seed=0)
        count = min(len(videos), 40)
        for i in range(count):  # warm: every frame of these clips is held
            cached[i]

        def item(dataset) -> Callable[[], None]:
            state = {"k": 0}

            def run() -> None:
                dataset[state["k"] % count]
                state["k"] += 1
            return run

        medians = alternate({"decoded from the files": item(fresh), "from a warm frame cache": item(cached)},
                            rounds * 4, warmup=4)
        before = medians["decoded from the files"]
        for name, s in medians.items():
            print(f"| {label} | {name} | {s * 1000:.2f} | {before / s:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ytvis", type=Path, default=None, help="a YouTube-VIS root with a train split")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory(prefix="tagvis-step-parts-") as tmp:
        ytvis = args.ytvis
        if ytvis is None:
            from tagvis_lib.data import write_benchmark

            ytvis = Path(write_benchmark(Path(tmp) / "synth")["ytvis"])
        step_table(ytvis, args.rounds)
        loading_table(ytvis, args.rounds)
        item_table(ytvis, args.rounds)


if __name__ == "__main__":
    main()
