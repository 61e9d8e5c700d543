"""The compiled kernels' lazy import, and the position path and first difference the numpy side
computes."""

from __future__ import annotations

import math
from types import ModuleType

import numpy as np

from autonomy.engine.data import FloatArray


def kernels_import() -> ModuleType:
    """`autonomy.engine.kernels`, imported on first use: numba costs about half a second to import,
    which every process that merely loads the engine (web, consumers) would pay."""
    from autonomy.engine import kernels

    return kernels


def positions_from_orders(orders: FloatArray, lo: float, hi: float) -> FloatArray:
    """pos[t] = clip(pos[t-1] + orders[t], lo, hi) with pos[-1] = 0, without a Python loop.

    lo = 0, hi = inf (long only, uncapped) is the reflected walk
    pos = S - min(0, running min of S) with S = cumsum(orders). Otherwise the maps
    p -> clip(p + a, l, h) are closed under composition,
    clip(clip(p + a1, l1, h1) + a2, l2, h2) = clip(p + a1 + a2, clip(l1 + a2, l2, h2),
    clip(h1 + a2, l2, h2)), so a log-depth prefix scan (Hillis-Steele) composes them.
    """
    if lo > 0 or hi < 0:
        raise ValueError(f"position bounds must contain 0, got [{lo}, {hi}]")
    if lo == -math.inf and hi == math.inf:
        return np.cumsum(orders)
    if lo == 0.0 and hi == math.inf:
        return np.asarray(
            kernels_import().reflected_walk(np.ascontiguousarray(orders)), dtype=np.float64
        )
    n = orders.shape[0]
    a = np.array(orders, dtype=np.float64, copy=True)
    low = np.full(n, lo)
    high = np.full(n, hi)
    k = 1
    while k < n:
        a2, l2, h2 = a[k:], low[k:], high[k:]
        new_low = np.clip(low[:-k] + a2, l2, h2)
        new_high = np.clip(high[:-k] + a2, l2, h2)
        new_a = a[:-k] + a2
        a[k:], low[k:], high[k:] = new_a, new_low, new_high
        k *= 2
    return np.clip(a, low, high)


def first_difference(x: FloatArray) -> FloatArray:
    """x[t] - x[t-1] with x[-1] = 0 (np.diff with prepend copies the whole array first)."""
    out = np.empty_like(x)
    if x.shape[0]:
        out[0] = x[0]
        np.subtract(x[1:], x[:-1], out=out[1:])
    return out
