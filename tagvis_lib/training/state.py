"""What a training checkpoint holds beyond the weights, so that a resumed run repeats exactly.

- :class:`ResumableSampler`: a :class:`~torch.utils.data.DistributedSampler` whose epoch order is a
  function of ``(seed, epoch)`` only and which can start part-way through an epoch.
- :func:`rng_state` / :func:`set_rng_state`: torch (CPU and CUDA), numpy and python ``random``
  generator states as plain tensors and lists (``torch.load(weights_only=True)`` reads them).
- :func:`check_model_config`: a resumed run must build the same network as the checkpoint.
"""
from __future__ import annotations

import math
import random
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler

from ..errors import CheckpointError


class ResumableSampler(DistributedSampler):
    """Shuffled indices of one epoch for one rank, resumable in the middle of the epoch.

    The epoch order is a permutation drawn from ``seed + epoch``, padded by wrapping around to a
    multiple of the global batch ``batch_size * num_replicas``, so every step of every rank gets a full
    batch. Rank ``r`` takes positions ``r, r + W, r + 2W, ...`` (``W`` = world size); the clips of
    global step ``k`` are positions ``k*B*W .. (k+1)*B*W - 1`` whatever ``W`` is, so one process with
    batch ``B*W`` and ``W`` processes with batch ``B`` see the same clips at every step.

    :meth:`batch_positions` gives the epoch positions of a batch; :func:`clip_seed` of a position
    seeds that clip's loss sampling, so it does not depend on the rank either.
    """

    def __init__(self, dataset: Dataset, batch_size: int, num_replicas: int = 1, rank: int = 0,
                 seed: int = 0, shuffle: bool = True):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed)
        self.batch_size = batch_size
        global_batch = batch_size * num_replicas
        self.steps_per_epoch = max(1, math.ceil(len(dataset) / global_batch))
        self.total_size = self.steps_per_epoch * global_batch
        self.num_samples = self.total_size // num_replicas
        self.start = 0  #: samples of this rank's share already consumed in the current epoch

    def set_start(self, start: int) -> None:
        """Skip the first ``start`` samples of this rank's share of the epoch (resume)."""
        if not 0 <= start <= self.num_samples:
            raise ValueError(f"start {start} outside 0..{self.num_samples}")
        self.start = start

    def epoch_order(self) -> list[int]:
        """Dataset indices of the whole epoch (all ranks), padded to the global batch."""
        n = len(self.dataset)
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(n, generator=g).tolist()
        else:
            order = list(range(n))
        reps = math.ceil(self.total_size / n)
        return (order * reps)[: self.total_size]

    def __iter__(self) -> Iterator[int]:
        order = self.epoch_order()
        return iter(order[self.rank:self.total_size:self.num_replicas][self.start:])

    def __len__(self) -> int:
        return self.num_samples - self.start

    def batch_positions(self, k: int) -> list[int]:
        """Epoch positions of the clips in this rank's batch ``k`` (the same for any world size)."""
        return [i * self.num_replicas + self.rank for i in range(k * self.batch_size, (k + 1) * self.batch_size)]

    def state_dict(self) -> dict[str, int]:
        """Epoch, seed, layout and the samples of this rank already consumed in the epoch."""
        return {"epoch": int(self.epoch), "seed": int(self.seed), "batch_size": self.batch_size,
                "num_replicas": self.num_replicas, "start": self.start}


def clip_seed(seed: int, epoch: int, position: int) -> int:
    """A 63-bit seed for the clip at ``position`` of ``epoch`` (independent of the rank)."""
    ss = np.random.SeedSequence([seed, epoch, position])
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def rng_state() -> dict[str, Any]:
    """Generator states of torch (CPU, CUDA), numpy and python ``random``, as tensors and lists."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": [int(py_version), [int(v) for v in py_internal], py_gauss],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    npy = state["numpy"]
    np.random.set_state((npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"],
                         npy["has_gauss"], npy["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and python ``random``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def check_model_config(saved: dict[str, Any], current: dict[str, Any], path: str) -> None:
    """Raise :class:`CheckpointError` naming the first model field where the configs differ."""
    for key in sorted(set(saved) | set(current)):
        if saved.get(key) != current.get(key):
            raise CheckpointError(
                path, f"config.model.{key}",
                f"checkpoint has {saved.get(key)!r}, this run asks for {current.get(key)!r} "
                "(resume needs the same model; start a new run directory instead)",
            )
