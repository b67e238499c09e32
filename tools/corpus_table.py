"""Check verify's answers against real runs and print the tables
docs/explanation/how-verify-decides.md shows (markdown) and, with --json FILE, the rows as JSON.

    python tools/corpus_table.py                  # the TensorFlow corpus (data/corpus.toml)
    python tools/corpus_table.py numpy==2.1.3     # some of it
    python tools/corpus_table.py --wide           # the wide corpus against its recorded truth

TensorFlow corpus, per wheel: the ISA scan (cached per sha256), the probe
(tfforge/verify/probes.py) run on this host in the wheel's cached venv, and under qemu-x86_64
on the model just below and just at the wheel's requirements. Wide corpus: verify's answer for
each (wheel, machine) cell of data/corpus_truth.toml (recorded by tools/corpus_truth.py),
compared with what really happened. Exit 1 on a disagreement (a false pass or refusal), or when
the wide corpus misses its targets.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tfforge.host import cpu
from tfforge.verify import corpus, truth
from tfforge.wheel import fetch

# The wide corpus's targets: no false pass, no crash, at most one false refusal in ten cells.
FALSE_REFUSALS_PER_CELL = 0.1


def cell(run: corpus.Run) -> str:
    got = "ran" if run.ran else run.detail.split(";")[0]
    if run.settled:
        mark = f"settled: {run.settled}"
    elif run.predicted == "undecided":
        mark = "undecided"
    else:
        mark = {True: "agree", False: "**DISAGREE**", None: "not confirmable under qemu"}[
            run.agrees
        ]
    return f"{run.where}: verify says {run.predicted}, {got} ({mark})"


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


def wide_cell(c: truth.Cell) -> str:
    got = "ran" if c.truth.ran else (c.truth.signal or c.truth.status)
    if c.outcome == truth.OPEN:
        return f"undecided ({', '.join(c.lacks)}); {got}"
    mark = "" if c.outcome == truth.AGREE else f" **{c.outcome.upper()}**"
    return f"{c.answer}; {got}{mark}"


def wide_markdown(rows: list[truth.WheelCells], t: truth.Truth) -> str:
    where = [*truth.wide_corpus().models, truth.NATIVE]
    head = [*(f"qemu {m}" for m in where[:-1]), "this host"]
    counts = truth.tally(rows)
    cells = sum(counts.values())
    out = [
        f"Recorded on: {t.host.model_name} (this host: AVX-512), {t.qemu}. Each cell: verify's "
        "answer for that machine; what the wheel's import and workload really did.",
        "",
        "| wheel | how it picks SIMD code | " + " | ".join(head) + " |",
        "|---|---|" + "---|" * len(head),
    ]
    for r in rows:
        by = {c.where: c for c in r.cells}
        out.append(
            f"| {r.wheel.pin} | {r.wheel.style} | "
            + " | ".join(wide_cell(by[w]) if w in by else "-" for w in where)
            + " |"
        )
    out += [
        "",
        f"{cells} cells: {counts[truth.AGREE]} agree, {counts[truth.OPEN]} undecided (what "
        f"--emulate settles), {counts[truth.FALSE_PASS]} false passes, "
        f"{counts[truth.FALSE_REFUSAL]} false refusals.",
    ]
    return "\n".join(out)


def wide(args: argparse.Namespace) -> int:
    t = truth.load_truth()
    c = truth.wide_corpus()
    wheels = [c.wheel(p) for p in args.pins] if args.pins else list(c.wheels)
    rows = truth.evaluate(
        t,
        wheels,
        fetch=fetch.fetch,
        jobs=args.jobs,
        status=lambda m: print(m, file=sys.stderr, flush=True),
    )
    print(wide_markdown(rows, t))
    if args.json:
        doc = [
            {
                "pin": r.wheel.pin,
                "required": r.required,
                "unguarded": r.unguarded,
                "dispatched": r.dispatched,
                "cells": [
                    {
                        "where": x.where,
                        "answer": x.answer,
                        "lacks": x.lacks,
                        "outcome": x.outcome,
                        "truth": x.truth.to_dict(),
                    }
                    for x in r.cells
                ],
            }
            for r in rows
        ]
        args.json.write_text(json.dumps(doc, indent=1) + "\n")
    counts = truth.tally(rows)
    cells = sum(counts.values())
    met = counts[truth.FALSE_PASS] == 0 and (
        counts[truth.FALSE_REFUSAL] <= FALSE_REFUSALS_PER_CELL * cells
    )
    return 0 if met else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pins", nargs="*", help="wheels of the corpus to check (default: all)")
    ap.add_argument("--wide", action="store_true", help="the wide corpus (data/corpus_wide.toml)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", type=Path, help="also write the rows to this file")
    args = ap.parse_args()
    if args.wide:
        return wide(args)
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
