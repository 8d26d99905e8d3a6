"""An exponential moving average of a network's weights (``train.ema_decay``; not in the paper).

After every optimiser step ``w_avg <- d_t * w_avg + (1 - d_t) * w`` for every floating-point
parameter and buffer (BatchNorm running statistics included); integer buffers are copied. The
decay rises from 0 as ``d_t = min(decay, (1 + t) / (10 + t))`` after t updates, so the initial
weights do not linger in a short run. ``model_final.pt`` then holds the averaged weights.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage:
    """Moving average of ``model``'s weights: ``update(model)`` after each step, ``module`` the
    averaged network (a copy of ``model``: same layout, memory format and device)."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"train.ema_decay: expected a decay in (0, 1) (0: off), got {decay}")
        self.decay = decay
        self.updates = 0
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    def current_decay(self) -> float:
        """d_t for the next update."""
        return min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s current weights (same architecture)."""
        weight = 1.0 - self.current_decay()
        mine = [*self.module.parameters(), *self.module.buffers()]
        theirs = [*model.parameters(), *model.buffers()]
        if len(mine) != len(theirs):
            raise ValueError("WeightAverage.update: the model has another architecture than the average")
        floats = [(a, b) for a, b in zip(mine, theirs) if a.is_floating_point()]
        if floats:
            torch._foreach_lerp_([a for a, _ in floats], [b.detach() for _, b in floats], weight)
        for a, b in zip(mine, theirs):
            if not a.is_floating_point():
                a.copy_(b)
        self.updates += 1

    def state_dict(self) -> dict:
        """The update count and the averaged network's state dict (the decay is the run's config)."""
        return {"updates": self.updates, "model": self.module.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.module.load_state_dict(state["model"])
        self.updates = int(state["updates"])
