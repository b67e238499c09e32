"""numpy helpers the scan uses on millions of integers."""

from __future__ import annotations

import numpy as np


def unique(a: np.ndarray) -> np.ndarray:
    """Sorted distinct values. (numpy 2.x np.unique without return_* takes a hash path that
    is ~100x slower than sorting on millions of integers.)"""
    a = np.sort(a)
    return a[np.concatenate(([True], a[1:] != a[:-1]))] if len(a) else a


def spans(lo: np.ndarray, cnt: np.ndarray) -> np.ndarray:
    """Concatenation of arange(lo[i], lo[i] + cnt[i]) for all i, vectorized."""
    total = int(cnt.sum())
    return np.repeat(lo, cnt) + (np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt))


def mask(ids: np.ndarray, n: int) -> np.ndarray:
    m = np.zeros(n, bool)
    m[ids[ids >= 0]] = True
    return m
