"""numpy helpers the scan uses on millions of integers."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

Ints = npt.NDArray[np.int64]
UInts = npt.NDArray[np.uint64]
Bools = npt.NDArray[np.bool_]


def is_sorted(a: npt.NDArray[Any]) -> bool:
    """Whether a is in ascending order (one comparison pass, far cheaper than a sort)."""
    return bool((a[1:] >= a[:-1]).all())


def stable_order(a: npt.NDArray[Any]) -> npt.NDArray[np.intp]:
    """np.argsort(a, kind="stable"), without the sort when a is in order already."""
    return np.arange(len(a)) if is_sorted(a) else np.argsort(a, kind="stable")


def unique(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Sorted distinct values. (numpy 2.x np.unique without return_* takes a hash path that
    is ~100x slower than sorting on millions of integers.) The arrays here are sorted runs
    end to end (per chunk, per table): those need no sort at all, or the stable sort, which
    merges runs (7x faster than quicksort on them, a quarter slower on random values)."""
    if not is_sorted(a):
        a = np.sort(a, kind="stable")
    return a[np.concatenate(([True], a[1:] != a[:-1]))] if len(a) else a


def unique_sums(keys: Ints, weights: Ints) -> tuple[Ints, Ints]:
    """(sorted distinct keys, the sum of the weights of each), exact in int64."""
    order = stable_order(keys)
    keys, weights = keys[order], weights[order]
    if not len(keys):
        return keys, weights
    first = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    return keys[first], np.add.reduceat(weights, first).astype(np.int64)


def unique_counts(a: Ints) -> tuple[Ints, Ints]:
    """(sorted distinct values, how often each occurs), by sorting (see unique)."""
    a = np.sort(a, kind="stable")
    if not len(a):
        return a, np.zeros(0, np.int64)
    first = np.flatnonzero(np.concatenate(([True], a[1:] != a[:-1])))
    return a[first], np.diff(np.append(first, len(a))).astype(np.int64)


def spans(lo: Ints, cnt: Ints) -> Ints:
    """Concatenation of arange(lo[i], lo[i] + cnt[i]) for all i, vectorized."""
    total = int(cnt.sum())
    return np.repeat(lo, cnt) + (np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt))


def mask(ids: Ints, n: int) -> Bools:
    m = np.zeros(n, bool)
    m[ids[ids >= 0]] = True
    return m
