"""The proposal-to-object assignment of the DAVIS evaluation, without importing scipy when it is clear.

The official evaluation maximises the total pair score with ``scipy.optimize.linear_sum_assignment``.
When every object has one best proposal that beats its others by more than :data:`CLEAR_MARGIN` and
no two objects share it, that choice is the only optimum (any other assignment loses at least the
margin, far above rounding), so it is returned directly; otherwise scipy decides (it costs ~0.4 s
to import).
"""
from __future__ import annotations

import numpy as np

#: Smallest lead of an object's best proposal over its second best for the direct answer.
CLEAR_MARGIN = 1e-9


def clear_assignment(score: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(rows, cols) of the unique best assignment of ``score`` (P, K), P >= K, or None if unclear.

    rows ascending, as ``linear_sum_assignment(score, maximize=True)`` returns them.
    """
    n_rows, n_cols = score.shape
    if n_cols == 0 or n_rows < n_cols or not np.isfinite(score).all():
        return None
    best = np.argmax(score, axis=0)
    if np.unique(best).size != n_cols:
        return None
    if n_rows > 1:
        top2 = np.sort(score, axis=0)[-2:]
        if not (top2[1] - top2[0] > CLEAR_MARGIN).all():
            return None
    order = np.argsort(best)
    return best[order], order


def max_score_assignment(score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) maximising the summed ``score`` (P, K), P >= K: each column gets one row."""
    clear = clear_assignment(score)
    if clear is not None:
        return clear
    from scipy.optimize import linear_sum_assignment

    return linear_sum_assignment(-score)
