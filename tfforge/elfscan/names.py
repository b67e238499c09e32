"""Symbol names: dispatch-name matching (rule R1) and demangling for the report."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterable
from functools import lru_cache

import numpy as np

from tfforge.elfscan import arrays
from tfforge.elfscan.arrays import Bools, Ints
from tfforge.elfscan.rules import Pattern, rules

# A Rust crate's versioned prefix on the C and assembly symbols it bundles (ring_core_0_17_14_).
_CRATE_PREFIX = re.compile(
    r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z][A-Za-z0-9]*)*_\d+_\d+_\d+_{1,2}(?=\w)"
)
_COMPILER_CLONE = re.compile(r"(\.(constprop|isra|part|cold|lto_priv|localalias|llvm)(\.\d+)?)+$")
_DIGITS = re.compile(r"\d+")  # a <length> of a <source-name>, if an identifier follows
_MAX_DIGITS = 9  # no symbol name is a gigabyte long


def name_words(symbol: str) -> str:
    """The identifiers of an Itanium-mangled name, space-separated (plain names unchanged).

    `_ZN3ynn22min_max_bf16_4x16_avx2Emmm` -> `ynn min_max_bf16_4x16_avx2`: in the mangled form
    the identifier runs into type codes, so word-boundary patterns could not see its end.
    A clone suffix (`.avx2`, `.arch_x86_64_v3`) is kept. Numbers in the name are bounded:
    a length that runs past the name (a literal such as std::span's extent
    `18446744073709551615`, or a hostile one) is not an identifier, and a digit run longer
    than 9 is never converted to a number at all.
    """
    if not symbol.startswith("_Z"):
        return symbol
    base, dot, clone = symbol.partition(".")
    words, pos = [], 2
    while m := _DIGITS.search(base, pos):
        start = m.end()  # one search per digit run: linear in the name's length
        pos = start
        if len(m[0]) > _MAX_DIGITS or start >= len(base):
            continue  # a literal (or hostile) number, never a length
        if not (base[start].isascii() and (base[start].isalpha() or base[start] == "_")):
            continue
        end = start + int(m[0])
        if end > len(base):
            continue  # runs past the name: not a <source-name>
        words.append(base[start:end])
        pos = max(end, start + 1)
    return " ".join(words) + (f" .{clone}" if dot else "")


@lru_cache(maxsize=4)
def _first_three(needles: tuple[bytes, ...]) -> Bools:
    """A table over all three-byte values (little-endian): True where one of the needles
    starts so."""
    table = np.zeros(1 << 24, bool)
    table[[w[0] | (w[1] << 8) | (w[2] << 16) for w in needles]] = True
    return table


def _ascii_lower(text: str) -> str:
    """Lower case for ASCII letters only (str.lower maps the Kelvin sign to k): the patterns
    and the byte-level pretest know ASCII case alone."""
    return "".join(c.lower() if c.isascii() else c for c in text)


def _leading_literal(pattern: str) -> str:
    m = re.match(r"\w*", pattern)
    return m[0] if m else ""


def _contains_any(needles: Iterable[str]) -> Callable[[str], bool]:
    """A predicate: does the text contain one of the needles? Runs on hundreds of thousands
    of long names, so it is one `in` test per needle, chained, without a generator (a regex
    alternation or any() over a generator costs three times as much)."""
    needles = tuple(dict.fromkeys(needles))
    if not needles or "" in needles:
        return lambda _text: True
    if len(needles) == 1:
        (a,) = needles
        return lambda text: a in text

    def test(text: str) -> bool:
        for needle in needles:  # noqa: SIM110 - any() over a generator is slower here
            if needle in text:
                return True
        return False

    return test


class Matcher:
    """Dispatch-name matching for one library: which pattern (if any) a symbol matches.

    Runs on hundreds of thousands of long mangled names, so: allow-list patterns anchored with
    ^ are tried together at position 0 only, other allow-list patterns one by one (each starts
    with a literal, which re searches fast), and generic patterns only on names that contain
    an ISA word at all.
    """

    def __init__(self, lib_name: str):
        r = rules()
        self.generic = [p for p in r.generic if p.applies(lib_name)]
        self.has_hint = _contains_any(r.name_hints)
        self.has_tail_hint = _contains_any(r.tail_hints)
        allow = [p for p in r.allow if p.applies(lib_name)]
        self.anchored = [p for p in allow if p.regex.pattern.startswith("^")]
        # (cheap pre-test, pattern): the literals one of which a name must contain (the
        # entry's `contains`, else the literal the pattern starts with) before the search.
        floating = [p for p in allow if not p.regex.pattern.startswith("^")]
        needles = [p.contains or (_leading_literal(p.regex.pattern),) for p in floating]
        self.floating = [(_contains_any(n), p) for n, p in zip(needles, floating, strict=True)]
        self.floating_any = _contains_any(x for n in needles for x in n)  # one test first
        # What a name must hold (in any case) for any pattern to match it: the pretest
        # `maybe` runs on the raw string table, so only those names are read and matched.
        words = [*r.name_hints, *r.tail_hints, *(x for n in needles for x in n)]
        for p in self.anchored:
            words += p.contains or (_leading_literal(p.regex.pattern.lstrip("^")),)
        self.needles = (
            None if not all(words) else tuple(sorted({w.lower().encode() for w in words}))
        )
        self._anchored_any = (
            re.compile("|".join(f"(?:{p.regex.pattern})" for p in self.anchored))
            if self.anchored
            else None
        )

    def maybe(self, buf: bytes, starts: Ints, ends: Ints) -> Bools:
        """Which strings buf[starts[i]:ends[i]] hold one of the needles in any case (a name
        no pattern can match does not), for all strings at once in numpy: their bytes are
        taken out end to end, every three-byte window is looked up in tables of the
        needles' first bytes, and the few windows found are compared with the rest of
        their needle."""
        if self.needles is None or min(map(len, self.needles)) < 3:
            return np.ones(len(starts), bool)
        hit = np.zeros(len(starts), bool)
        # The strings as disjoint segments (a string table shares tails between names).
        seg_hi = np.maximum.accumulate(ends)
        new = np.ones(len(starts), bool)
        new[1:] = starts[1:] >= seg_hi[:-1]
        seg_lo = starts[new]
        seg_hi = (
            np.append(seg_hi[np.flatnonzero(new)[1:] - 1], seg_hi[-1]) if len(seg_lo) else seg_lo
        )
        raw = np.frombuffer(buf, np.uint8)
        keep = np.repeat(
            np.tile(np.array([False, True]), len(seg_lo)),
            np.column_stack([seg_lo - np.append(0, seg_hi[:-1]), seg_hi - seg_lo]).ravel(),
        )
        low = raw[: len(keep)][keep].tobytes().lower()  # bytes.lower: ASCII letters only
        if len(low) < 3:
            return hit
        text = np.frombuffer(low, np.uint8)
        # Every three-byte window, read as the low bytes of an unaligned little-endian 32-bit
        # word (one padding byte for the last window), looked up in a table of the needles'
        # first three bytes.
        n = len(low)
        words = np.ndarray((n - 2,), "<u4", low + b"\0", 0, (1,))
        at = np.flatnonzero(_first_three(self.needles)[words & 0xFFFFFF])
        tri = words[at] & 0xFFFFFF
        order = np.argsort(tri, kind="stable")  # windows grouped by their three bytes
        at, first3 = at[order], tri[order]
        in_text = np.cumsum(seg_hi - seg_lo) - (seg_hi - seg_lo)  # each segment's start
        for word in self.needles:
            code = word[0] | (word[1] << 8) | (word[2] << 16)
            lo, hi = np.searchsorted(first3, [code, code + 1])
            if lo == hi:
                continue
            pos = at[lo:hi]
            pos = pos[pos + len(word) <= len(text)]
            rest = np.frombuffer(word[3:], np.uint8)
            if len(rest):
                pos = pos[(text[pos[:, None] + np.arange(3, len(word))] == rest).all(axis=1)]
            seg = np.searchsorted(in_text, pos, side="right") - 1
            where = seg_lo[seg] + pos - in_text[seg]  # in buf
            # Strings holding it end at the first NUL after it (several, sharing a tail).
            first = np.searchsorted(ends, where + len(word))
            ok = first < len(ends)
            where, first = where[ok], first[ok]
            last = np.searchsorted(ends, ends[first], side="right")
            k = arrays.spans(first, last - first)
            holder = np.repeat(where, last - first)
            hit[k[starts[k] <= holder]] = True
        return hit

    def match(self, symbol: str) -> Pattern | None:
        """The pattern the symbol matches, tried on the name as compilers and crates changed it
        too: a copy GCC specialised or split off (foo.constprop.0, foo.isra.0, foo.part.0,
        foo.cold) is the same function for the allow-list, and so is a bundled assembly
        routine under a Rust crate's versioned prefix (ring_core_0_17_14__vpaes_encrypt)."""
        found = self._match(symbol)
        if found is None and "." in symbol:
            plain = _COMPILER_CLONE.sub("", symbol)
            if plain != symbol:
                found = self._match(plain)
        if found is None and (m := _CRATE_PREFIX.match(symbol)):
            found = self.match(symbol[m.end() :])  # ring_core_0_17_14__aes_hw_encrypt
        return found

    def _match(self, symbol: str) -> Pattern | None:
        if self._anchored_any is not None and self._anchored_any.match(symbol):
            return next(p for p in self.anchored if p.regex.match(symbol))
        if self.floating and self.floating_any(symbol):
            for pretest, p in self.floating:
                if pretest(symbol) and p.regex.search(symbol):
                    return p
        low = symbol.lower() if symbol.isascii() else _ascii_lower(symbol)
        if self.has_hint(low) or self.has_tail_hint(low[-32:]):
            words = name_words(symbol)
            return next((p for p in self.generic if p.regex.search(words)), None)
        return None


DEMANGLE_SECONDS = 60.0  # c++filt on a few hundred example names takes well under a second


def demangle(names: Iterable[str]) -> dict[str, str]:
    """Readable C++ names via c++filt (binutils), one process for the batch; the names as
    they are when c++filt is missing, fails, times out or answers out of step."""
    names = [n for n in dict.fromkeys(names) if n]
    tool = shutil.which("c++filt")
    if not names or tool is None:
        return {n: n for n in names}
    try:
        proc = subprocess.run(
            [tool],
            input="\n".join(names) + "\n",
            capture_output=True,
            text=True,
            errors="replace",
            timeout=DEMANGLE_SECONDS,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {n: n for n in names}
    lines = proc.stdout.splitlines()
    if proc.returncode != 0 or len(lines) != len(names):
        return {n: n for n in names}
    return dict(zip(names, lines, strict=True))
