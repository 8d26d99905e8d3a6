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


#: Characters decoded per batch: temporaries stay a few MB, which the allocator reuses (fresh
#: pages are what costs most in a short-lived process).
_CHUNK_CHARS = 1 << 18


def rle_string_totals(counts: Sequence[str | bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Per string: the sum of its run lengths (int64, (N,)) and whether it is well formed (bool, (N,)).

    Well formed: every character in ``'0'..'o'``, the last character ends a run, and every run
    length is >= 0. The sum is meaningful only where the string is well formed.
    """
    bufs = [c.encode("ascii", "replace") if isinstance(c, str) else bytes(c) for c in counts]
    totals, ok = np.zeros(len(bufs), dtype=np.int64), np.ones(len(bufs), dtype=bool)
    start, size = 0, 0
    for i, b in enumerate(bufs):
        size += len(b)
        if size >= _CHUNK_CHARS or i == len(bufs) - 1:
            totals[start:i + 1], ok[start:i + 1] = _totals(bufs[start:i + 1])
            start, size = i + 1, 0
    return totals, ok


def _totals(bufs: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    n = len(bufs)
    lengths = np.fromiter(map(len, bufs), dtype=np.int64, count=n)
    ok = np.ones(n, dtype=bool)
    totals = np.zeros(n, dtype=np.int64)
    full = np.flatnonzero(lengths)
    if not len(full):
        return totals, ok
    data = np.frombuffer(b"".join(bufs), dtype=np.uint8)
    starts = np.cumsum(lengths)[full] - lengths[full]  # first character of each non-empty string
    v = data - np.uint8(48)  # wraps below '0' to >= 208
    bad_char = v > 63
    ends = v < 32  # bit 0x20 clear: the character ends a run value
    last = starts + lengths[full] - 1
    ok[full] = (np.add.reduceat(bad_char, starts) == 0) & ends[last]
    ends[last] = True  # a malformed string stops at its own end, not in the next one
    tok_end = np.flatnonzero(ends)  # (M,) last character of every run value
    tok_start = np.empty_like(tok_end)
    tok_start[0] = 0
    tok_start[1:] = tok_end[:-1] + 1
    tok_len = tok_end - tok_start + 1
    longest = int(tok_len.max())
    if longest > 7:  # no 32-bit run needs more than 7 characters
        too_long = np.zeros(len(v), dtype=bool)
        too_long[tok_start[tok_len > 7]] = True
        ok[full] &= np.add.reduceat(too_long, starts) == 0
    low = (v & np.uint8(0x1F)).astype(np.int64)
    value = low[tok_start]
    for i in range(1, min(longest, 7)):  # characters beyond the first, 5 more bits each
        has = np.flatnonzero(tok_len > i)
        value[has] += low[tok_start[has] + i] << (5 * i)
    sign = (v[tok_end] & 0x10) != 0
    value[sign] -= np.left_shift(np.int64(1), 5 * np.minimum(tok_len[sign], 7))
    first_tok = np.searchsorted(tok_start, starts)  # first run of each non-empty string
    counts_per = np.diff(np.append(first_tok, len(tok_start)))
    owner = np.repeat(np.arange(len(full)), counts_per)  # (M,) index into ``full``
    j = np.arange(len(tok_start)) - np.repeat(first_tok, counts_per)
    # c[j] = t[j] + c[j - 2] for j > 2: running sums of the odd j and of the even j >= 2, per string
    runs = value.copy()
    for stream in ((j % 2 == 1), (j >= 2) & (j % 2 == 0)):
        idx = np.flatnonzero(stream)
        if not len(idx):
            continue
        csum = np.cumsum(value[idx])
        own = owner[idx]
        head = np.flatnonzero(np.r_[True, own[1:] != own[:-1]])  # first element of each string's stream
        base = np.repeat(np.r_[0, csum[head[1:] - 1]], np.diff(np.r_[head, len(idx)]))
        runs[idx] = csum - base
    ok[full] &= np.add.reduceat(runs < 0, first_tok) == 0
    totals[full] = np.add.reduceat(runs, first_tok)
    return totals, ok
