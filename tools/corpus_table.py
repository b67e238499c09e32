"""Check verify's static verdict against real runs for the corpus of PyPI wheels and print the
table in docs/explanation/how-verify-decides.md (markdown) and, with --json FILE, the rows as JSON.

    python tools/corpus_table.py                  # every wheel in tfforge/data/corpus.toml
    python tools/corpus_table.py numpy==2.1.3     # some of them

Per wheel: the ISA scan (cached per sha256), the probe (tfforge/verify/probes.py) run on this
host in the wheel's cached venv, and under qemu-x86_64 on the model just below and just at the
wheel's baseline. Exit 1 when any run disagrees with the static verdict.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tfforge.host import cpu
from tfforge.verify import corpus
from tfforge.wheel import fetch


def cell(run: corpus.Run) -> str:
    said = "runs" if run.predicted else "cannot run"
    got = "ran" if run.ran else run.detail.split(";")[0]
    mark = {True: "agree", False: "**DISAGREE**", None: "not confirmable under qemu"}[run.agrees]
    return f"{run.where}: verify says {said}, {got} ({mark})"


def markdown(rows: list[corpus.CorpusRow], host: cpu.HostProfile) -> str:
    out = [
        f"Host: {host.model_name}. Each run: what verify's static verdict says, what "
        "really happened.",
        "",
        "| wheel | requires | dispatched only | this host | emulated (qemu-x86_64) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        here = [x for x in r.runs if x.where == "this host"]
        emu = [x for x in r.runs if x.where != "this host"]
        out.append(
            f"| {r.pin} | {', '.join(r.baseline) or 'x86-64'} | "
            f"{len(r.dispatched)} features | "
            f"{'; '.join(cell(x).split(': ', 1)[1] for x in here)} | "
            f"{'<br>'.join(cell(x) for x in emu)} |"
        )
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pins", nargs="*", help="wheels of the corpus to check (default: all)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", type=Path, help="also write the rows to this file")
    args = ap.parse_args()
    pins = args.pins or corpus.corpus()[0]
    host = cpu.detect_host()
    rows = []
    for pin in pins:
        wheel = fetch.fetch(pin)
        rows.append(
            corpus.check(
                wheel,
                pin,
                host=host,
                jobs=args.jobs,
                status=lambda m: print(m, file=sys.stderr, flush=True),
            )
        )
    print(markdown(rows, host))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1) + "\n")
    return 1 if any(r.disagreements for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
