"""Symbol-name handling on generated hostile input: name_words (the identifiers of a mangled
name), the dispatch-name matcher and the c++filt batch never raise, and name_words recovers the
identifiers of well-formed names. Property-based (hypothesis, derandomized, bounded)."""

from __future__ import annotations

import string

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
