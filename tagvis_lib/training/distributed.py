"""Devices and PyTorch's distributed engine (DDP) for training.

A run started by ``torchrun`` (environment ``WORLD_SIZE`` > 1) joins a process group: NCCL when the
device is CUDA, gloo otherwise. A plain ``python`` run (or a notebook) is a world of one and never
touches ``torch.distributed``. Rank 0 is the only process that logs, checkpoints and validates.
"""
from __future__ import annotations

import os
import warnings
from datetime import timedelta
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..errors import TagvisError


@dataclass
class DistContext:
    """Where this process stands in the run: its rank, the world size and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    initialized: bool  #: True when this call created the process group (and must destroy it)

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs, checkpoints and validates."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``"auto"`` picks CUDA, then Apple MPS, then the CPU; other strings are torch device names.

    Under torchrun on CUDA, ``"auto"`` and ``"cuda"`` become ``cuda:<local_rank>``.
    """
    if name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            name = "mps"
        else:
            name = "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise TagvisError(f"device {name!r} is not a torch device name (expected auto, cpu, cuda, cuda:N or mps)") from None
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise TagvisError(f"device {name!r} is not available: this torch ({torch.__version__}) sees no CUDA GPU")
        if device.index >= torch.cuda.device_count():
            raise TagvisError(f"device {name!r} is not available: there are {torch.cuda.device_count()} CUDA GPU(s), "
                              f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    elif device.type == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise TagvisError(f"device {name!r} is not available: Apple MPS needs macOS on Apple silicon")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise TagvisError(f"device {name!r} is not supported (expected auto, cpu, cuda, cuda:N or mps)")
    return device


def init_distributed(device_name: str = "auto") -> DistContext:
    """Join the process group that torchrun describes in the environment, or run alone.

    The backend is NCCL for CUDA devices and gloo for the CPU.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world_size <= 1:
        return DistContext(0, 1, 0, device, initialized=False)
    if device.type not in ("cuda", "cpu"):
        raise ValueError(f"distributed training supports CUDA and CPU devices, not {device.type!r}")
    backend = "nccl" if device.type == "cuda" else "gloo"
    created = not dist.is_initialized()
    if created:
        # rank 0 validates while the others wait at a barrier: allow an hour for that
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size, timeout=timedelta(minutes=60))
    return DistContext(rank, world_size, local_rank, device, initialized=created)


def cleanup_distributed(ctx: DistContext) -> None:
    """Destroy the process group if :func:`init_distributed` created it; no barrier, so it also runs
    after an error on one rank (torchrun then stops the others)."""
    if ctx.initialized and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    """Block until every rank arrives (no-op for a world of one)."""
    if ctx.distributed:
        dist.barrier(device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)


def all_reduce_mean(values: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Mean of ``values`` (any shape) over the ranks; the tensor itself for a world of one."""
    if not ctx.distributed:
        return values
    values = values.clone()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values / ctx.world_size


def all_gather_objects(obj: Any, ctx: DistContext) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (``[obj]`` for a world of one)."""
    if not ctx.distributed:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def freeze_batchnorm(model: nn.Module) -> None:
    """Put every BatchNorm layer in eval mode: running statistics fixed, affine parameters trained.

    A frozen BatchNorm is a per-channel affine map, so a clip's output does not depend on the other
    clips of its batch, nor on how a global batch is split over processes.
    """
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def wrap_model(model: nn.Module, ctx: DistContext, batchnorm: str, find_unused_parameters: bool = False) -> nn.Module:
    """Wrap ``model`` (already on ``ctx.device``) in DistributedDataParallel when the world is > 1.

    With ``batchnorm="batch"`` on CUDA, BatchNorm layers become SyncBatchNorm, so statistics are
    taken over the global batch. PyTorch's SyncBatchNorm has no CPU kernel: on gloo/CPU each rank
    keeps the statistics of its own clips (``batchnorm="frozen"`` removes the difference).
    ``find_unused_parameters`` is needed when a loss weight of 0 leaves parameters without gradient.
    """
    if not ctx.distributed:
        return model
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if batchnorm == "batch" and has_bn:
        if ctx.device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        elif ctx.is_main:
            warnings.warn(
                "SyncBatchNorm needs CUDA; on CPU each rank normalises with its own batch statistics "
                "(set train.batchnorm=frozen for results independent of the process count)",
                stacklevel=2,
            )
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids,
                                               find_unused_parameters=find_unused_parameters)


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside a DDP wrapper (or ``model`` itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
