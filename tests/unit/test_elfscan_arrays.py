"""The scan's numpy helpers and string-table readers against naive Python, on generated input:
sorted runs end to end (as the decode hands them over) and arbitrary values; string tables with
shared tails, unterminated and over-long names, offsets past the end, chunks far smaller than
the table."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from unittest import mock

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tfforge.elfscan import arrays, tables
from tfforge.elfscan.tables import Section

values = st.integers(-(1 << 62), 1 << 62)
ints = st.lists(values, max_size=200).map(lambda v: np.array(v, np.int64))
small = st.lists(st.integers(0, 40), max_size=200).map(lambda v: np.array(v, np.int64))
# Sorted runs end to end: the shape of per-chunk results concatenated.
runs = st.lists(st.lists(st.integers(0, 1000), max_size=60).map(sorted), max_size=6).map(
    lambda parts: np.array([x for p in parts for x in p], np.int64)
)
any_ints = st.one_of(ints, small, runs)


@given(any_ints)
def test_unique_and_order_agree_with_plain_python(a):
    assert arrays.unique(a).tolist() == sorted(set(a.tolist()))
    assert arrays.is_sorted(a) == (a.tolist() == sorted(a.tolist()))
    order = arrays.stable_order(a).tolist()
    assert order == sorted(range(len(a)), key=lambda i: a[i])  # Python's sort is stable


@given(any_ints)
def test_unique_counts_agree_with_counter(a):
    keys, counts = arrays.unique_counts(a)
    assert dict(zip(keys.tolist(), counts.tolist(), strict=True)) == Counter(a.tolist())
    assert keys.tolist() == sorted(set(a.tolist()))


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 1 << 40)), max_size=200))
def test_unique_sums_agree_with_a_dict(pairs):
    keys = np.array([k for k, _ in pairs], np.int64)
    weights = np.array([w for _, w in pairs], np.int64)
    expected: dict[int, int] = {}
    for k, w in pairs:
        expected[k] = expected.get(k, 0) + w
    got_keys, sums = arrays.unique_sums(keys, weights)
    assert got_keys.tolist() == sorted(expected)
    assert dict(zip(got_keys.tolist(), sums.tolist(), strict=True)) == expected
    assert sums.dtype == np.int64


@given(st.lists(st.tuples(st.integers(-100, 100), st.integers(0, 8)), max_size=50))
def test_spans_is_the_concatenated_ranges(pairs):
    lo = np.array([p[0] for p in pairs], np.int64)
    cnt = np.array([p[1] for p in pairs], np.int64)
    assert arrays.spans(lo, cnt).tolist() == [x for a, n in pairs for x in range(a, a + n)]


@given(st.lists(st.integers(-3, 30), max_size=40), st.integers(31, 40))
def test_mask_marks_exactly_the_ids(ids, n):
    m = arrays.mask(np.array(ids, np.int64), n)
    assert np.flatnonzero(m).tolist() == sorted({i for i in ids if i >= 0})


@given(st.binary(min_size=4, max_size=64), st.data())
def test_le32_reads_little_endian_words(buf, data):
    at = data.draw(st.lists(st.integers(0, len(buf) - 4), max_size=10))
    b = np.frombuffer(buf, np.uint8)
    idx = np.array(at, np.intp)
    for signed in (True, False):
        got = tables.le32(b, idx, signed=signed).tolist()
        assert got == [int.from_bytes(buf[i : i + 4], "little", signed=signed) for i in at]


# -- string tables

name = st.binary(max_size=40).map(lambda b: b.replace(b"\0", b"x"))


@st.composite
def string_tables(draw):
    """(file bytes, section, wanted offsets): names NUL-terminated end to end, maybe an
    unterminated last one, behind a random prefix; offsets at names, inside them (a shared
    tail) and past the end."""
    names = draw(st.lists(name, max_size=30))
    body = b"".join(n + b"\0" for n in names)
    if draw(st.booleans()):
        body += draw(name.filter(bool))  # unterminated
    prefix = draw(st.binary(max_size=16))
    sec = Section(".strtab", offset=len(prefix), size=len(body), addr=0)
    offsets = draw(st.lists(st.integers(0, len(body) + 4), max_size=40))
    return prefix + body + draw(st.binary(max_size=8)), sec, offsets


def _expected(body: bytes, size: int, off: int, chunk: int) -> bytes:
    """What a reader of at most `chunk` bytes at a time gives: the name, or b'' when it is
    unterminated within the table or does not fit in a chunk."""
    end = body.find(b"\0", off, size)
    return b"" if end < 0 or end - off >= chunk else body[off:end]


def _holding_x(buf: bytes, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    return np.array([b"x" in buf[i:j] for i, j in zip(starts, ends, strict=True)], bool)


@settings(max_examples=300)
@given(string_tables(), st.sampled_from([8, 32, 1 << 20]), st.sampled_from([1, 4, 64 << 10]))
def test_strings_at_reads_every_wanted_name(tmp_path_factory, table, chunk, slack):
    raw, sec, offsets = table
    path = Path(tmp_path_factory.mktemp("strtab")) / "t"
    path.write_bytes(raw)
    body = raw[sec.offset : sec.offset + sec.size]
    fd = os.open(path, os.O_RDONLY)
    try:
        with (
            mock.patch.object(tables, "CHUNK", chunk),
            mock.patch.object(tables, "NAME_SLACK", slack),
        ):
            got = tables.strings_at(fd, sec, offsets)
            keep_x = tables.strings_at(fd, sec, offsets, _holding_x)
            hits = tables.offsets_matching(
                fd, sec, np.array(offsets, np.int64), ends=("ab",), holds=("x",), begins=("q",)
            )
    finally:
        os.close(fd)
    want = {o: _expected(body, sec.size, o, chunk) for o in offsets}
    assert got == {o: w.decode("utf-8", "replace") for o, w in want.items()}
    assert keep_x == {o: got[o] for o, w in want.items() if b"x" in w}
    matching = {o for o, w in want.items() if w.endswith(b"ab") or b"x" in w or w.startswith(b"q")}
    assert hits.tolist() == sorted(matching)
