"""Symbol-name handling on generated hostile input: name_words (the identifiers of a mangled
name), the dispatch-name matcher and the c++filt batch never raise, and name_words recovers the
identifiers of well-formed names; the byte-level pretest on the string table finds exactly the
names holding a needle, and passes every name a pattern matches. Property-based (hypothesis,
derandomized, bounded)."""

from __future__ import annotations

import re
import string

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfforge.elfscan.names import Matcher, demangle, name_words

BOUNDED = settings(
    derandomize=True,
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
_HEAD = string.ascii_letters + "_"
IDENT = st.builds(
    lambda a, b: a + b,
    st.sampled_from(_HEAD),
    st.text(alphabet=_HEAD + string.digits, max_size=30),
)
# numbers a mangled name may hold: lengths, template literals, std::span's dynamic extent,
# and runs of digits far beyond any machine integer
NUMBERS = st.one_of(
    st.integers(0, 40),
    st.just(18446744073709551615),
    st.integers(0, 2**64),
    st.integers(10**20, 10**60),
)
PIECE = st.one_of(
    st.builds(lambda n, i: f"{n}{i}", NUMBERS, IDENT),
    st.builds(lambda n: f"Lm{n}E", NUMBERS),
    st.sampled_from(["N", "E", "I", "S_", "St", "v", "Kf", "Ev", "Emmm", "."]),
    st.text(alphabet=string.printable, max_size=8),
    st.builds(lambda k: "9" * k, st.integers(1, 6000)),
)


@BOUNDED
@given(st.lists(PIECE, max_size=12))
def test_name_words_and_matcher_take_any_mangled_looking_name(pieces):
    symbol = "_Z" + "".join(pieces)
    words = name_words(symbol)
    base, dot, clone = symbol.partition(".")
    if dot:
        assert words.endswith(f" .{clone}")
        words = words[: -len(clone) - 2]
    for word in words.split(" "):
        assert word in base
    Matcher("libx.so").match(symbol)  # total: a pattern or None, never an exception


@BOUNDED
@given(st.text(max_size=300))
def test_matcher_takes_any_text(symbol):
    Matcher("libx.so").match(symbol)
    Matcher("libiomp5.so").match(symbol)
    name_words(symbol)


@BOUNDED
@given(st.lists(IDENT, min_size=1, max_size=6), st.sampled_from(["Ev", "Emmm", "EPKfm", "E"]))
def test_name_words_recovers_the_identifiers(idents, tail):
    symbol = "_ZN" + "".join(f"{len(i)}{i}" for i in idents) + tail
    assert name_words(symbol).split(" ") == idents


def test_span_extent_is_not_a_length():
    # std::span<const float, std::dynamic_extent>::size(): the extent is a literal
    symbol = "_ZNKSt4spanIKfLm18446744073709551615EE4sizeEv"
    assert name_words(symbol) == "span size"


@settings(derandomize=True, max_examples=25, deadline=None)
@given(st.lists(st.text(max_size=60), max_size=20))
def test_demangle_batch_maps_every_name(names):
    out = demangle(names)
    assert set(out) == {n for n in names if n}


def _table(names: list[bytes], tails: list[int]) -> tuple[bytes, np.ndarray, np.ndarray]:
    """A string table of the names (NUL-terminated, in order) and the offsets of each name
    and of some of their tails (a linker shares tails between names): buf, starts, ends."""
    buf, starts, ends = b"", [], []
    for name, tail in zip(names, tails, strict=True):
        starts.append(len(buf))
        if 0 < tail < len(name):
            starts.append(len(buf) + tail)
        buf += name + b"\0"
        ends += [len(buf) - 1] * (len(starts) - len(ends))
    return buf, np.array(starts, np.int64), np.array(ends, np.int64)


MATCHERS = [Matcher(lib) for lib in ("libx.so", "libiomp5.so", "_simd.cpython-311.so")]
NEEDLE_TEXT = st.sampled_from(
    sorted({w.decode() for m in MATCHERS for w in m.needles or ()} | {"AVX", "Sse4_1", "x"})
)
NAME = st.lists(
    st.one_of(NEEDLE_TEXT, st.text(max_size=12).map(lambda t: t.replace("\0", ""))),
    max_size=6,
).map(lambda parts: "".join(parts).encode("utf-8", "surrogatepass"))


@BOUNDED
@given(st.lists(st.tuples(NAME, st.integers(0, 40)), max_size=40), st.sampled_from(MATCHERS))
def test_pretest_finds_exactly_the_names_holding_a_needle(rows, matcher):
    buf, starts, ends = _table([r[0] for r in rows], [r[1] for r in rows])
    got = matcher.maybe(buf, starts, ends).tolist()
    want = [
        any(w in buf[s:e].lower() for w in matcher.needles or ())
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True)
    ]
    assert got == want


def _patterns() -> list[tuple[Matcher, re.Pattern[str]]]:
    out = []
    for m in MATCHERS:
        out += [(m, p.regex) for p in (*m.generic, *m.anchored)]
        out += [(m, p.regex) for _, p in m.floating]
    return out


@BOUNDED
@given(st.data(), st.sampled_from(_patterns()))
def test_a_name_a_pattern_matches_passes_the_pretest(data, pair):
    """Only names that pass the byte-level pretest are read at all: every name a pattern
    matches (made from the pattern, in plain and in mangled form, with a crate prefix or a
    clone suffix) must pass it."""
    matcher, regex = pair
    core = data.draw(st.from_regex(regex, fullmatch=True, alphabet=string.printable))
    core = core.replace("\0", "")
    words = [w for w in re.split(r"\s+", core) if w]
    forms = [
        core,
        f"ring_core_0_17_14_{core}",
        f"{core}.constprop.0",
        "_ZN" + "".join(f"{len(w)}{w}" for w in words) + "Ev",
    ]
    for name in forms:
        if matcher.match(name) is None:
            continue
        buf, starts, ends = _table([name.encode()], [0])
        assert matcher.maybe(buf, starts, ends).tolist() == [True], name
