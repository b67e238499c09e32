"""Write (or --check) tfforge/data/release_evidence.toml from the releases' official wheels.

python tools/release_evidence.py                      read every pinned release's wheels, write
python tools/release_evidence.py --release 2.21.0     re-read only these (the rest is kept)
python tools/release_evidence.py --check [--release ...]
                                                      re-read and compare byte for byte; exit 1
                                                      with a diff when the file is out of date
python tools/release_evidence.py --json ...           also print what was read, as JSON

Wheels are downloaded once into the tfforge cache (tfforge/wheel/fetch.py) and checked against
the sha256 PyPI's index serves; a release costs about 200-270 MB the first time, 5-10 s after.
Exit: 0 ok, 1 out of date or a read failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tfforge.build import evidence, toolchains
from tfforge.errors import ConfigError, TfforgeError
from tfforge.files import write_atomic
from tfforge.wheel import official

DATA = Path(__file__).resolve().parents[1] / "tfforge" / "data" / "release_evidence.toml"


def _say(message: str) -> None:
    print(f"release_evidence: {message}", file=sys.stderr, flush=True)


def current() -> tuple[str, dict[str, dict[str, Any]]]:
    """The data file's text and its releases as to_toml's input ('' and {} when absent)."""
    if not DATA.is_file():
        return "", {}
    text = DATA.read_text(encoding="utf-8")
    parsed = evidence.parse(tomllib.loads(text))
    return text, {v: evidence.as_doc(e) for v, e in parsed.items()}


def read(versions: list[str]) -> dict[str, dict[str, Any]]:
    lists: dict[str, list[official.IndexFile]] = {}
    out = {}
    for version in versions:
        t0 = time.perf_counter()
        out[version] = official.read_release(version, lists=lists, status=_say)
        w = out[version]["wheel"]
        vendor = w["compiler_vendor"] or "unbranded"
        _say(
            f"{version}: {w['compiler']} {w['compiler_version']} ({vendor}), {w['linker']} "
            f"{w['linker_version']}, glibc {out[version]['glibc']}, Pythons "
            f"{', '.join(out[version]['pythons'])} ({time.perf_counter() - t0:.1f} s)"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare; exit 1 when stale")
    parser.add_argument(
        "--release", action="append", default=[], help="a pinned release (repeatable)"
    )
    parser.add_argument("--json", action="store_true", help="print what was read as JSON")
    opts = parser.parse_args(argv)
    known = toolchains.known_versions()
    unknown = [v for v in opts.release if v not in known]
    if unknown:
        print(
            f"error: --release {unknown[0]!r} is not a pinned release; known: {', '.join(known)}"
            f" (pin it in {toolchains.DATA_FILE} first)",
            file=sys.stderr,
        )
        return 2
    versions = list(dict.fromkeys(opts.release)) or known
    try:
        text, docs = current()
        fresh = read(versions)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (TfforgeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if opts.json:
        print(json.dumps(fresh, indent=2, sort_keys=True))
    new = evidence.to_toml({**docs, **fresh})
    if opts.check:
        if new != text:
            diff = difflib.unified_diff(
                text.splitlines(True), new.splitlines(True), str(DATA), "regenerated"
            )
            sys.stderr.writelines(diff)
            _say(f"{DATA} is out of date for {', '.join(versions)}; run tools/release_evidence.py")
            return 1
        _say(f"{DATA} matches the official wheels of {', '.join(versions)}")
        return 0
    write_atomic(DATA, new.encode("utf-8"))
    _say(f"wrote {DATA} ({len(fresh)} release(s) read, {len(docs | fresh)} in the file)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
