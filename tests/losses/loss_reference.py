"""Plain-loop transcription of paper eqs. (1)-(5) for one clip, written independently of the library.

Every sum of the paper is a Python loop here: over pixels for eqs. (1)-(2), over frames for (4)-(5),
over instance pairs for (3) and (5). Only for tiny clips (it visits each pixel in Python).
"""
from __future__ import annotations

import math

import torch

VOID = 255


def _norm(v: torch.Tensor) -> torch.Tensor:
    return torch.sqrt((v * v).sum())


def loop_terms(
    tags: torch.Tensor, ids: torch.Tensor, margin: float, reduction: str = "sum"
) -> dict[str, torch.Tensor]:
    """tags (D, T, H, W), ids (T, H, W) of one clip -> the four terms, using every pixel (M' = M)."""
    _, t_size, h_size, w_size = tags.shape
    pixels: dict[int, list[torch.Tensor]] = {}
    frame_pixels: dict[tuple[int, int], list[torch.Tensor]] = {}
    for t in range(t_size):
        for y in range(h_size):
            for x in range(w_size):
                n = int(ids[t, y, x])
                if n == 0 or n == VOID:
                    continue
                pixels.setdefault(n, []).append(tags[:, t, y, x])
                frame_pixels.setdefault((n, t), []).append(tags[:, t, y, x])
    instances = sorted(pixels)
    big_n = len(instances)
    zero = tags.sum() * 0

    h = {}
    for n in instances:  # eq. (1)
        total = zero
        for p in pixels[n]:
            total = total + p
        h[n] = total / len(pixels[n])
    h_t = {}
    for (n, t), plist in frame_pixels.items():
        total = zero
        for p in plist:
            total = total + p
        h_t[(n, t)] = total / len(plist)

    spectra = zero
    for n in instances:  # eq. (2)
        inner = zero
        for p in pixels[n]:
            inner = inner + ((h[n] - p) ** 2).sum()
        if reduction == "mean":
            inner = inner / len(pixels[n])
        spectra = spectra + inner
    if big_n:
        spectra = spectra / big_n

    specter = zero
    for i in range(big_n):  # eq. (3)
        for j in range(i + 1, big_n):
            specter = specter + torch.clamp(margin - _norm(h[instances[i]] - h[instances[j]]), min=0)

    tempra = zero
    for n in instances:  # eq. (4)
        for t in range(t_size):
            if (n, t) in h_t:
                tempra = tempra + ((h[n] - h_t[(n, t)]) ** 2).sum()
    if big_n:
        tempra = tempra / big_n

    temper = zero
    for i in range(big_n):  # eq. (5), N' = all pairs
        for j in range(i + 1, big_n):
            for t in range(t_size):
                a, b = (instances[i], t), (instances[j], t)
                if a in h_t and b in h_t:
                    temper = temper + torch.clamp(margin - _norm(h_t[a] - h_t[b]), min=0)
    return {"spectra": spectra, "specter": specter, "tempra": tempra, "temper": temper}


def loop_batch(tags: torch.Tensor, ids: torch.Tensor, margin: float, reduction: str = "sum") -> dict:
    """tags (B, D, T, H, W), ids (B, T, H, W) -> each term averaged over the clips."""
    clips = [loop_terms(tags[b], ids[b], margin, reduction) for b in range(tags.shape[0])]
    return {k: sum(c[k] for c in clips) / len(clips) for k in clips[0]}


def pairs(n: int) -> int:
    return math.comb(n, 2)
