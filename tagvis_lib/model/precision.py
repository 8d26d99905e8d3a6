"""Numeric precision and memory format of the network, for training and for inference.

``precision`` (``train.precision``, ``inference.precision``):

- ``"fp32"``: plain float32, no autocast.
- ``"bf16"``: ``torch.autocast`` to bfloat16 on the CPU or a CUDA GPU. Refused where the hardware
  has no bfloat16 arithmetic (a CPU without AVX512-BF16 or AMX, a GPU before Ampere), since it would
  be emulated and slower than fp32.
- ``"fp16"``: autocast to float16, CUDA only; training adds a gradient scaler.
- ``"auto"``: bf16 where the device has it, else fp16 on CUDA, else fp32.

Weights, optimiser state and the losses stay float32 in every mode: autocast runs the convolutions,
matrix products and attention in the lower precision, and the network's outputs are cast back to
float32 before grouping or the loss.

``model.memory_format``: ``"contiguous"`` (NCDHW) or ``"channels_last_3d"`` (NDHWC strides, which
oneDNN and cuDNN convolutions run faster on); weights and inputs are converted, results are equal
up to floating-point summation order.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
MEMORY_FORMATS = ("contiguous", "channels_last_3d")
_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def has_bf16(device: torch.device) -> bool:
    """True when ``device`` has native bfloat16 arithmetic (CPU: oneDNN's AVX512-BF16/AMX check)."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def resolve_precision(name: str, device: str | torch.device, field: str) -> str:
    """The precision that runs on ``device`` for setting ``name`` ("auto" resolved): fp32, bf16 or fp16.

    Raises ``ValueError`` naming ``field`` (e.g. ``"train.precision"``) for an unknown value or one
    the device cannot run.
    """
    device = torch.device(device)
    if name not in PRECISIONS:
        raise ValueError(f"{field}={name!r}: expected one of {PRECISIONS}")
    if name == "auto":
        if has_bf16(device):
            return "bf16"
        return "fp16" if device.type == "cuda" else "fp32"
    if name == "fp16" and device.type != "cuda":
        raise ValueError(f"{field}=fp16: float16 autocast is for CUDA devices only, this run is on {device}; "
                         "use bf16 (where supported) or fp32")
    if name == "bf16" and not has_bf16(device):
        why = ("this CPU has no AVX512-BF16 or AMX instructions" if device.type == "cpu"
               else f"{device} has no native bfloat16 support")
        raise ValueError(f"{field}=bf16: {why}; use fp32 (or auto, which falls back to it)")
    return name


def autocast_dtype(precision: str) -> torch.dtype | None:
    """torch dtype of a resolved precision (None for fp32)."""
    return _DTYPES[precision]


@contextlib.contextmanager
def autocast(device: str | torch.device, precision: str) -> Iterator[None]:
    """``torch.autocast`` for a resolved precision on ``device`` (a no-op context for fp32)."""
    dtype = autocast_dtype(precision)
    if dtype is None:
        yield
        return
    with torch.autocast(torch.device(device).type, dtype=dtype):
        yield


def check_memory_format(name: str, field: str = "model.memory_format") -> None:
    """Raise ``ValueError`` naming ``field`` unless ``name`` is one of :data:`MEMORY_FORMATS`."""
    if name not in MEMORY_FORMATS:
        raise ValueError(f"{field}={name!r}: expected one of {MEMORY_FORMATS}")


def torch_memory_format(name: str) -> torch.memory_format:
    """``torch.channels_last_3d`` or ``torch.contiguous_format`` for a :data:`MEMORY_FORMATS` name."""
    check_memory_format(name)
    return torch.channels_last_3d if name == "channels_last_3d" else torch.contiguous_format


def apply_memory_format(model: nn.Module, name: str) -> nn.Module:
    """Convert the 5-D weights of ``model`` to memory format ``name`` in place; returns ``model``."""
    return model.to(memory_format=torch_memory_format(name))


def one_frame_channels_last(x: torch.Tensor) -> bool:
    """Whether ``x`` is a (B, C, 1, H, W) ``channels_last_3d`` CPU tensor with C > 1 and H*W > 1.

    With a single frame the 5-D layout is ambiguous to some CPU kernels: PyTorch's BatchNorm
    backward returns a contiguous gradient there, and a time kernel's 2-D view (B, C, 1, H*W) is
    ambiguous too, after which the layers below run on mixed layouts, several times slower. The
    4-D view (B, C, H, W) of the same memory is plainly channels-last.
    """
    return (x.dim() == 5 and x.shape[2] == 1 and x.device.type == "cpu" and x.shape[1] > 1
            and x.shape[3] * x.shape[4] > 1 and not x.is_contiguous()
            and x.is_contiguous(memory_format=torch.channels_last_3d))
