"""Validation of COCO compressed RLE strings before pycocotools sees them.

pycocotools decodes a ``counts`` string without bounds checks: a string whose run lengths add up to
more or less than h x w, or whose last character announces another one, makes it read past the
mask (the evaluation then hangs or counts garbage). :func:`rle_string_totals` decodes many strings
at once with numpy, exactly as pycocotools' ``rleFrString`` reads them (5 bits per character from
``'0'``, bit 0x20 "more", bit 0x10 the sign of a run's last character, and from the fourth run on
each value is a difference to the run two places before), and returns what each adds up to.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def rle_string_totals(counts: Sequence[str | bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Per string: the sum of its run lengths (int64, (N,)) and whether it is well formed (bool, (N,)).

    Well formed: every character in ``'0'..'o'``, the last character ends a run, and every run
    length is >= 0. The sum is meaningful only where the string is well formed.
    """
    n = len(counts)
    bufs = [c.encode("ascii", "replace") if isinstance(c, str) else bytes(c) for c in counts]
    lengths = np.array([len(b) for b in bufs], dtype=np.int64)
    ok = np.ones(n, dtype=bool)
    totals = np.zeros(n, dtype=np.int64)
    if not lengths.sum():
        return totals, ok
    v = np.frombuffer(b"".join(bufs), dtype=np.uint8).astype(np.int64) - 48
    owner = np.repeat(np.arange(n), lengths)
    ok &= np.bincount(owner, weights=(v < 0) | (v > 63), minlength=n) == 0
    v = np.clip(v, 0, 63)
    ends = (v & 0x20) == 0
    last = np.cumsum(lengths) - 1
    ok[lengths > 0] &= ends[last[lengths > 0]]
    ends[last[lengths > 0]] = True  # a malformed string stops at its own end, not in the next one
    token = np.concatenate([[0], np.cumsum(ends)[:-1]])  # token id of every character
    first = np.concatenate([[True], ends[:-1]])
    start = np.maximum.accumulate(np.where(first, np.arange(len(v)), 0))
    k = np.arange(len(v)) - start  # position of the character in its token
    ok &= np.bincount(owner, weights=k > 12, minlength=n) == 0
    # exact integer sums per token (np.add.reduceat over each token's characters)
    value = np.add.reduceat((v & 0x1F) << (5 * np.minimum(k, 12)), np.flatnonzero(first))
    end_idx = np.flatnonzero(ends)
    negative = (v[end_idx] & 0x10) != 0
    value[negative] -= np.left_shift(1, 5 * (k[end_idx][negative] + 1))
    tok_owner = owner[end_idx]
    # index of each token within its string
    tok_first = np.concatenate([[True], tok_owner[1:] != tok_owner[:-1]])
    tok_start = np.maximum.accumulate(np.where(tok_first, np.arange(len(tok_owner)), 0))
    j = np.arange(len(tok_owner)) - tok_start
    # c[j] = t[j] + c[j - 2] for j > 2: running sums over odd j and over even j >= 2, per string
    group = tok_owner * 3 + np.where(j == 0, 0, np.where(j % 2 == 1, 1, 2))
    order = np.lexsort((j, group))
    sums = np.cumsum(value[order])
    g = group[order]
    g_first = np.concatenate([[True], g[1:] != g[:-1]])
    offset = np.maximum.accumulate(np.where(g_first, np.arange(len(g)), 0))
    before = np.where(offset > 0, sums[offset - 1], 0)
    runs = np.empty_like(value)
    runs[order] = sums - before
    ok &= np.bincount(tok_owner, weights=runs < 0, minlength=n) == 0
    present = np.flatnonzero(lengths > 0)
    totals[present] = np.add.reduceat(runs, np.flatnonzero(tok_first))
    return totals, ok
