"""Validation during training: YouTube-VIS AP (``evaluate_ytvis``) or DAVIS J&F (``evaluate_davis``)."""
from __future__ import annotations

import os
import tempfile

import torch
from torch import nn

from ..config import ExperimentConfig, apply_overrides
from ..data import DAVISDataset, YTVISDataset
from ..inference.export import predict_split


def validate(
    model: nn.Module,
    cfg: ExperimentConfig,
    split: str,
    device: torch.device,
    ytvis_root: str | os.PathLike | None = None,
    davis_root: str | os.PathLike | None = None,
) -> dict[str, float]:
    """Predict every video of ``split`` and score it: AP, AP50, ... for YouTube-VIS, J&F, J, F for DAVIS.

    Leaves ``model`` in eval mode. Returns the scalar metrics only (per-sequence DAVIS values are
    dropped).
    """
    cfg = apply_overrides(cfg, {"inference.warmup_runs": 0})
    model.eval()
    if ytvis_root is not None:
        from ..metrics import evaluate_ytvis

        dataset = YTVISDataset(ytvis_root, split)
        entries, _ = predict_split(model, dataset, cfg, device, categories=dataset.categories)
        metrics = evaluate_ytvis(dataset.json_path, entries)
    else:
        from ..metrics import evaluate_davis

        dataset = DAVISDataset(davis_root, split)
        with tempfile.TemporaryDirectory(prefix="tagvis-val-") as tmp:
            predict_split(model, dataset, cfg, device, davis_dir=tmp)
            metrics = evaluate_davis(davis_root, tmp, split=split)
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
