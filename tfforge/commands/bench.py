"""`invoke bench`: options -> runtime.bench plan -> the matrix run -> bench.json/md/png + table."""

from __future__ import annotations

from typing import Any

from tfforge import console, paths
from tfforge.errors import Interrupted, TfforgeError
from tfforge.files import JsonDoc
from tfforge.options.typed.bench import BenchOptions
from tfforge.runtime import bench as runtime
from tfforge.runtime import bench_report

_AXES = ("threads", "onednn", "modes", "batches", "warmup", "repeat", "words")


def bench_plan(opts: BenchOptions) -> runtime.Plan:
    """The plan from the options; --quick fills in what the command line did not give
    (options given on the command line win over the preset)."""
    preset = runtime.QUICK if opts.quick else {}
    axes: dict[str, Any] = {}
    for name in _AXES:
        key = f"bench_{name}"
        use_preset = name in preset and not opts.given(key)
        axes[name] = preset[name] if use_preset else getattr(opts, key)
    out = opts.bench_out
    return runtime.make_plan(
        runtime.expand_specs([opts.bench_wheels, *opts.bench_more_wheels]),
        **axes,
        reference=opts.reference,
        baseline=opts.baseline,
        out_dir=paths.folder(out, opts.where("bench_out")) if out else None,
        timeout=opts.bench_timeout,
    )


def bench_command(opts: BenchOptions) -> JsonDoc:
    plan = bench_plan(opts)
    doc = runtime.run(plan, progress=console.Progress)
    # A run in which every row failed measured nothing: it never replaces earlier results.
    all_failed = bool(doc["rows"]) and all(r["error"] for r in doc["rows"])
    written = bench_report.write_outputs(
        doc, plan.out_dir, "bench-failed" if all_failed else "bench"
    )
    if all_failed:
        console.warn(
            f"every configuration failed; results kept in {written['json']}, "
            f"{plan.out_dir / 'bench.json'} left as it was"
        )
    doc["outputs"] = {k: str(p) for k, p in written.items()}
    if opts.json:
        console.print_json(doc)
    else:
        console.say(bench_report.markdown(doc))
        console.say("wrote " + ", ".join(str(p) for p in written.values()))
    if doc.get("interrupted"):
        raise Interrupted(
            f"interrupted; {len(doc['rows'])} finished rows kept in {written['json']}"
        )
    failed = [r for r in doc["rows"] if r["error"] or r["mismatches"]]
    if failed:
        raise TfforgeError(
            f"{len(failed)} of {len(doc['rows'])} configurations failed or "
            f"differ from the golden phonemes (see {written['markdown']})"
        )
    return doc
