"""Write (or --check) the per-release table in docs/reference/releases.md from toolchains.toml.

python tools/release_table.py          rewrite the table between the markers
python tools/release_table.py --check  exit 1 when the table is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tfforge.build import toolchains

TABLE_DOC = Path(__file__).resolve().parents[1] / "docs" / "reference" / "releases.md"
START = "<!-- release-table:start (tools/release_table.py writes this) -->"
END = "<!-- release-table:end -->"


def _span(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}-{hi}"


def _evidence(tc: toolchains.Toolchain) -> str:
    """The most common level, then the facts that rest on another one, by level."""
    levels = [e.level for e in tc.evidence.values()]
    main = max(sorted(set(levels)), key=levels.count)
    other = {}
    for fact, e in tc.evidence.items():
        if e.level != main:
            other.setdefault(e.level, []).append(fact)
    return "; ".join([main] + [f"{lvl}: {', '.join(sorted(f))}" for lvl, f in other.items()])


def table() -> str:
    rows = [
        "| TF | Bazel | wheel target | GCC (default) | Clang | C++ toolchain | base image "
        "(default GCC) | evidence |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for version in toolchains.known_versions():
        tc = toolchains.toolchain(version)
        image = toolchains.base_image_for("gcc", tc.gcc_default)
        cc = (
            "local (configure)"
            if tc.cc_toolchain == "local"
            else f"hermetic clang, off via --config={tc.local_cc_config}"
        )
        rows.append(
            f"| {version} | {tc.bazel} | `{tc.wheel_target.removeprefix('//tensorflow/tools/')}`"
            f" | {_span(*tc.gcc)} ({tc.gcc_default}) | {_span(*tc.clang)} | {cc} | "
            f"{image.suite if image else '?'} | {_evidence(tc)} |"
        )
    return "\n".join(rows)


def updated(text: str) -> str:
    if START not in text or END not in text:
        raise SystemExit(f"{TABLE_DOC}: markers {START!r} and {END!r} are missing")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table()}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if stale")
    opts = parser.parse_args(argv)
    text = TABLE_DOC.read_text()
    new = updated(text)
    if opts.check:
        if new != text:
            print(
                f"{TABLE_DOC}: the release table is out of date; run python tools/release_table.py",
                file=sys.stderr,
            )
            return 1
        return 0
    TABLE_DOC.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
