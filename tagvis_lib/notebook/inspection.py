"""Views of the model and the loss for notebook 02: the module table, the parameters of every Table III
network, and the four tagging terms on toy tag maps whose statistics are set exactly."""
from __future__ import annotations

from typing import Any, Callable, Iterable

import numpy as np
import torch

from ..ablations import TABLE3_ABLATIONS
from ..config import ExperimentConfig, apply_overrides

def module_table(model: torch.nn.Module, input_shape: tuple[int, int, int, int, int]) -> list[dict[str, Any]]:
    """Rows ``{"Module", "Output shape", "Parameters"}`` in the order the forward pass runs them.

    ``input_shape`` = (B, 3, T, H, W) of a random clip pushed through ``model`` (in eval mode, no
    gradient). Rows are the encoder stages (``encoder.<stage>``) and the model's other top-level
    modules; a module returning several tensors lists each shape. A last row sums the parameters.
    """
    watched = [(f"encoder.{n}", m) for n, m in model.encoder.named_children()] if hasattr(model, "encoder") else []
    watched += [(n, m) for n, m in model.named_children() if n != "encoder"]
    seen: dict[str, str] = {}
    order: list[str] = []

    def hook(name: str) -> Callable[..., None]:
        def record(_module: torch.nn.Module, _inputs: Any, output: Any) -> None:
            outputs = output if isinstance(output, (tuple, list)) else (output,)
            if name not in seen:
                order.append(name)
            seen[name] = ", ".join(str(tuple(o.shape)) for o in outputs if isinstance(o, torch.Tensor))
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in watched]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.randn(input_shape, device=next(model.parameters()).device))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    modules = dict(watched)
    rows = [{"Module": n, "Output shape": seen[n], "Parameters": sum(p.numel() for p in modules[n].parameters())}
            for n in order]
    rows += [{"Module": n, "Output shape": "(not called)", "Parameters": sum(p.numel() for p in m.parameters())}
             for n, m in watched if n not in seen]
    rows.append({"Module": "total", "Output shape": "", "Parameters": sum(p.numel() for p in model.parameters())})
    return rows


def ablation_parameters(cfg: ExperimentConfig) -> list[dict[str, Any]]:
    """Rows ``{"w/o", "Parameters", "Removed modules"}``: the network of every Table III row built
    from ``cfg`` and the top-level modules it lacks compared with the full model."""
    from ..model import build_model

    def children(c: ExperimentConfig) -> tuple[set[str], int]:
        model = build_model(apply_overrides(c, {"model.encoder_weights": None}))  # counting needs no weights
        return {n for n, _ in model.named_children()}, sum(p.numel() for p in model.parameters())

    full, _ = children(cfg)
    rows = []
    for row, overrides in TABLE3_ABLATIONS.items():
        names, count = children(apply_overrides(cfg, overrides))
        rows.append({"w/o": row, "Parameters": count, "Removed modules": ", ".join(sorted(full - names)) or "-"})
    return rows


def toy_tag_clip(offset: float, spread: float, drift: float, frames: int = 4, height: int = 8,
                 width: int = 12, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two instances with scalar tags whose statistics are set exactly, for looking at the loss terms.

    Instance 1 covers columns 0..3, instance 2 columns ``width-4..width-1``, the rest is background.
    In frame t the tags of instance n are ``base_n + drift * (t - (T-1)/2) + spread * z``, with
    ``base = (0, offset)`` and ``z`` standardised noise (mean 0, std 1 within each instance and frame).
    So the clip means differ by ``offset``, frame means stray from the clip mean by the drift, and pixels
    from the frame mean by ``spread``. Returns tags (1, 1, T, H, W) and instance ids (1, T, H, W).
    """
    g = torch.Generator().manual_seed(seed)
    ids = torch.zeros(frames, height, width, dtype=torch.long)
    ids[..., :4], ids[..., width - 4:] = 1, 2
    tags = torch.zeros(frames, height, width)
    times = torch.arange(frames, dtype=torch.float32) - (frames - 1) / 2
    for n, base in ((1, 0.0), (2, float(offset))):
        z = torch.randn(frames, height, 4, generator=g)
        z = (z - z.mean((1, 2), keepdim=True)) / z.std((1, 2), unbiased=False, keepdim=True)
        cols = slice(0, 4) if n == 1 else slice(width - 4, width)
        tags[:, :, cols] = base + drift * times[:, None, None] + spread * z
    return tags[None, None], ids[None]


def tagging_term_sweep(parameter: str, values: Iterable[float], offset: float = 1.0, spread: float = 0.3,
                       drift: float = 0.2, margin: float = 3.0) -> dict[str, np.ndarray]:
    """The four tagging terms on :func:`toy_tag_clip` while one of ``offset``, ``spread`` or ``drift``
    takes ``values`` (the others fixed). Returns ``{"values": (V,), "spectra": (V,), ...}``."""
    from ..losses import TaggingLoss

    if parameter not in ("offset", "spread", "drift"):
        raise ValueError(f"parameter {parameter!r}: expected offset, spread or drift")
    loss = TaggingLoss(margin=margin)
    values = np.asarray(list(values), dtype=np.float64)
    out: dict[str, list[float]] = {}
    for v in values:
        kwargs = {"offset": offset, "spread": spread, "drift": drift, parameter: float(v)}
        for term, value in loss(*toy_tag_clip(**kwargs)).items():
            out.setdefault(term, []).append(float(value))
    return {"values": values, **{k: np.asarray(v) for k, v in out.items()}}
