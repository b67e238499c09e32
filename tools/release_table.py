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


CODES = {"release-artifact": "A", "release-file": "F", "nearby-master": "M", "secondary": "S"}
LEGEND = (
    "Evidence of each fact, strongest first: **A** the release's own official wheels "
    "(`tfforge/data/release_evidence.toml`), **F** a file of the release "
    "(`../shared/tf-interface`), **M** the nearest master snapshot, **S** secondary "
    "(a named public recipe or report). Sources: `tfforge/data/toolchains.toml`."
)


def _cell(tc: toolchains.Toolchain, fact: str, text: str) -> str:
    return f"{text} ({CODES[tc.evidence[fact].level]})"


def table() -> str:
    rows = [
        "| TF | official compiler | clang flags | Pythons | glibc | commit | Bazel | wheel target "
        "| Python variable | version type | GCC (default) | C++ toolchain | packaging |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for version in toolchains.known_versions():
        tc = toolchains.toolchain(version)
        cc = (
            "local (configure)"
            if tc.cc_toolchain == "local"
            else f"hermetic clang, off via --config={tc.local_cc_config}"
        )
        cells = [
            version,
            _cell(
                tc, "official_compiler", f"{tc.official_compiler} {tc.official_compiler_version}"
            ),
            _cell(tc, "clang_args", f"{len(tc.clang_args)} flags"),
            _cell(tc, "pythons", f"{tc.pythons[0]}-{tc.pythons[-1]}"),
            _cell(tc, "glibc", tc.glibc),
            _cell(tc, "git_commit", f"`{tc.git_commit[:10]}`"),
            _cell(tc, "bazel", tc.bazel),
            _cell(tc, "wheel_target", f"`{tc.wheel_target.removeprefix('//tensorflow/tools/')}`"),
            _cell(tc, "python_env", " + ".join(f"`{e}`" for e in tc.python_env)),
            _cell(tc, "wheel_type", tc.wheel_type or "no switch"),
            _cell(tc, "gcc", f"{_span(*tc.gcc)} ({tc.gcc_default})"),
            _cell(tc, "cc_toolchain", cc),
            _cell(tc, "packages", ", ".join(tc.packages)),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n\n" + LEGEND


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
