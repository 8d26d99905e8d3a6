"""TagVIS checkpoints: the weights, the resolved config and the category list in one file.

Layout (a dict, loadable with ``torch.load(..., weights_only=True)``)::

    {"format": "tagvis-checkpoint-v1", "model": state_dict, "config": ExperimentConfig.to_dict(),
     "categories": [{"id", "name", ...}, ...], ...optional training state (optimizer, epoch, ...)}

Extra entries must themselves be ``weights_only``-loadable (tensors, numbers, strings, lists,
dicts). Files are written atomically (temporary file, then rename).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Sequence

import torch
from torch import nn

from ..config import ExperimentConfig
from ..errors import CheckpointError
from ..utils.atomic import atomic_path
from .encoder import check_state_dict
from .network import TagVIS, build_model
from .safe_load import load_weights_only

FORMAT = "tagvis-checkpoint-v1"
REQUIRED_KEYS = ("model", "config", "categories")


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    cfg: ExperimentConfig,
    categories: Sequence[dict[str, Any]],
    **extra: Any,
) -> None:
    """Write ``model``'s weights, ``cfg`` and ``categories`` (plus ``extra`` entries) to ``path``."""
    clash = set(extra) & {"format", *REQUIRED_KEYS}
    if clash:
        raise ValueError(f"extra checkpoint entries may not be named {sorted(clash)}")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {"format": FORMAT, "model": state, "config": cfg.to_dict(), "categories": [dict(c) for c in categories], **extra}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and validate a checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    Raises :class:`CheckpointError` naming the file and the field when it is missing, unreadable,
    not a tagvis checkpoint (e.g. a bare ``r2plus1d_18`` state dict), or malformed.
    """
    if not os.path.isfile(path):
        raise CheckpointError(path, None, "checkpoint file not found")
    ckpt = load_weights_only(path, map_location)
    if not isinstance(ckpt, dict) or "format" not in ckpt:
        hint = " (encoder weights go to model.encoder_weights)" if isinstance(ckpt, dict) and "stem.0.weight" in ckpt else ""
        raise CheckpointError(path, "format", f"not a tagvis checkpoint: expected a dict with format {FORMAT!r}{hint}")
    if ckpt["format"] != FORMAT:
        raise CheckpointError(path, "format", f"expected {FORMAT!r}, got {ckpt['format']!r}")
    for key in REQUIRED_KEYS:
        if key not in ckpt:
            raise CheckpointError(path, key, "missing")
    if not isinstance(ckpt["model"], dict):
        raise CheckpointError(path, "model", "expected a state dict")
    if not isinstance(ckpt["config"], dict):
        raise CheckpointError(path, "config", "expected a dict (ExperimentConfig.to_dict())")
    cats = ckpt["categories"]
    if not isinstance(cats, list) or not all(isinstance(c, dict) and "id" in c and "name" in c for c in cats):
        raise CheckpointError(path, "categories", 'expected a list of {"id", "name", ...} dicts')
    return ckpt


def load_model(
    path: str | os.PathLike, device: str | torch.device = "cpu", num_classes: int | None = None
) -> tuple[TagVIS, ExperimentConfig, list[dict[str, Any]]]:
    """Rebuild the network of a checkpoint and load its weights (strict): ``(model.eval(), cfg, categories)``.

    ``num_classes``, when given, must equal the checkpoint's class count. Raises
    :class:`CheckpointError` naming the first mismatching key and both shapes, or the class counts.
    The Kinetics file named by ``cfg.model.encoder_weights`` is not read: the checkpoint holds
    every weight.
    """
    ckpt = load_checkpoint(path)
    try:
        cfg = ExperimentConfig.from_dict(ckpt["config"])
    except (KeyError, AttributeError, TypeError) as exc:
        raise CheckpointError(path, "config", f"not a valid ExperimentConfig ({exc})") from exc
    from ..inference.grouping import check_inference_config

    try:  # a bad stored value is the checkpoint's fault, not the command line's
        check_inference_config(cfg)
    except (KeyError, ValueError) as exc:
        raise CheckpointError(path, "config", f"{exc.args[0] if exc.args else exc} (the value stored in the checkpoint)") from None
    categories = ckpt["categories"]
    have = cfg.model.num_classes
    if num_classes is not None and num_classes != have:
        raise CheckpointError(path, "model.num_classes", f"checkpoint has {have} classes, expected {num_classes}")
    if len(categories) != have:
        raise CheckpointError(path, "categories", f"{len(categories)} categories for model.num_classes={have}")
    try:
        model = build_model(dataclasses.replace(cfg.model, encoder_weights=None))
    except ValueError as exc:
        raise CheckpointError(path, "config.model", str(exc)) from exc
    check_state_dict(model, ckpt["model"], path)
    model.load_state_dict(ckpt["model"], strict=True)
    return model.to(device).eval(), cfg, categories


def check_categories(checkpoint: str, have: list[dict[str, Any]], want: list[dict[str, Any]], source: str) -> None:
    """Raise :class:`CheckpointError` when the checkpoint's categories are not the dataset's."""
    pairs = [(c["id"], c["name"]) for c in have], [(c["id"], c["name"]) for c in want]
    if pairs[0] != pairs[1]:
        first = next((i for i, (a, b) in enumerate(zip(*pairs)) if a != b), min(map(len, pairs)))
        got = pairs[0][first] if first < len(pairs[0]) else "nothing"
        expected = pairs[1][first] if first < len(pairs[1]) else "nothing"
        raise CheckpointError(checkpoint, "categories",
                              f"the checkpoint's {len(have)} categories are not the {len(want)} of {source} "
                              f"(position {first}: checkpoint {got}, dataset {expected})")
