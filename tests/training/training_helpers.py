"""Helpers of the training tests: the smoke settings, subprocess commands, weight comparison."""
from __future__ import annotations

import os
import socket
import sys

import torch

#: Overrides every test run uses on top of the smoke profile (no max_steps: whole epochs).
DETERMINISTIC = ["train.max_steps=None", "train.deterministic=true"]


def tagvis_cmd(*args: str) -> list[str]:
    """``python -m tagvis_lib ARGS`` with this interpreter."""
    return [sys.executable, "-m", "tagvis_lib", *args]


def torchrun_cmd(nproc: int, *args: str) -> list[str]:
    """``torchrun`` (static rendezvous on 127.0.0.1, a free port) running ``python -m tagvis_lib ARGS``."""
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", str(nproc),
            "--master_addr", "127.0.0.1", "--master_port", str(free_port()), "-m", "tagvis_lib", *args]


def subprocess_env() -> dict[str, str]:
    """One thread per process (the same float results in every run) and gloo on the loopback device."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if sys.platform.startswith("linux"):
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def final_weights(run_dir) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "model_final.pt", weights_only=True)["model"]
