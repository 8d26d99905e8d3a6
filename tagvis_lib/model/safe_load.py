"""``torch.load(weights_only=True)`` with errors that name the file and never advise ``weights_only=False``."""
from __future__ import annotations

import os
from typing import Any

import torch

from ..errors import CheckpointError

#: First bytes of what ``torch.save`` writes: a zip archive (since torch 1.6) or a legacy pickle.
_TORCH_MAGIC = (b"PK\x03\x04", b"\x80")


def load_weights_only(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """The object ``torch.save`` wrote to ``path``, read with ``weights_only=True``.

    Raises :class:`CheckpointError` naming ``path`` when it is not a ``torch.save`` file, is
    truncated or corrupt, or holds objects other than tensors, containers and numbers (the refused
    type is named; the file is never unpickled without ``weights_only``).
    """
    with open(path, "rb") as fh:
        head = fh.read(4)
    if not head.startswith(_TORCH_MAGIC):
        raise CheckpointError(path, None, f"not a file torch.save wrote (it starts with {head!r}, "
                                          "not a zip archive or a pickle)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # unpickling errors of every kind: report the file, not torch's advice
        raise CheckpointError(path, None, f"not a loadable torch checkpoint ({_reason(exc)})") from None


def _reason(exc: Exception) -> str:
    """The informative line of a ``torch.load`` error (its weights_only advice dropped)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if "WeightsUnpickler error" in line:
            detail = line.split("WeightsUnpickler error:", 1)[1].strip()
            return f"it holds objects weights_only=True does not read: {detail.split('. ')[0]}"
    text = lines[0] if lines else type(exc).__name__
    return text if "weights_only" not in text else type(exc).__name__
