"""Symbol names: dispatch-name matching (rule R1) and demangling for the report."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable

from tfforge.elfscan.rules import Pattern, rules

_SOURCE_NAME = re.compile(r"(\d+)([A-Za-z_])")


def name_words(symbol: str) -> str:
    """The identifiers of an Itanium-mangled name, space-separated (plain names unchanged).

    `_ZN3ynn22min_max_bf16_4x16_avx2Emmm` -> `ynn min_max_bf16_4x16_avx2`: in the mangled form
    the identifier runs into type codes, so word-boundary patterns could not see its end.
    A clone suffix (`.avx2`, `.arch_x86_64_v3`) is kept.
    """
    if not symbol.startswith("_Z"):
        return symbol
    base, dot, clone = symbol.partition(".")
    words, pos = [], 2
    while m := _SOURCE_NAME.search(base, pos):
        start = m.start(2)
        end = start + int(m[1])
        words.append(base[start:end])
        pos = max(end, start + 1)
    return " ".join(words) + (f" .{clone}" if dot else "")


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
        self.hints = r.name_hints
        allow = [p for p in r.allow if p.applies(lib_name)]
        self.anchored = [p for p in allow if p.regex.pattern.startswith("^")]
        # (literal the pattern starts with, pattern): `literal in name` is a cheap pre-test.
        self.floating = [
            (re.match(r"[\w]*", p.regex.pattern)[0], p)
            for p in allow
            if not p.regex.pattern.startswith("^")
        ]
        self._anchored_any = (
            re.compile("|".join(f"(?:{p.regex.pattern})" for p in self.anchored))
            if self.anchored
            else None
        )

    def match(self, symbol: str) -> Pattern | None:
        if self._anchored_any is not None and self._anchored_any.match(symbol):
            return next(p for p in self.anchored if p.regex.match(symbol))
        for literal, p in self.floating:
            if literal in symbol and p.regex.search(symbol):
                return p
        low = symbol.lower()
        if any(h in low for h in self.hints):
            words = name_words(symbol)
            return next((p for p in self.generic if p.regex.search(words)), None)
        return None


def demangle(names: Iterable[str]) -> dict[str, str]:
    """Readable C++ names via c++filt (binutils), one process for the batch."""
    names = [n for n in dict.fromkeys(names) if n]
    tool = shutil.which("c++filt")
    if not names or tool is None:
        return {n: n for n in names}
    proc = subprocess.run([tool], input="\n".join(names) + "\n", capture_output=True, text=True)
    lines = proc.stdout.splitlines()
    if proc.returncode != 0 or len(lines) != len(names):
        return {n: n for n in names}
    return dict(zip(names, lines))
