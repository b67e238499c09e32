"""`invoke bench`: options -> runtime.bench plan -> the matrix run -> bench.json/md/png + table."""

from __future__ import annotations

from pathlib import Path

from tfforge import console, paths, settings
from tfforge.errors import Interrupted, TfforgeError
from tfforge.runtime import bench as runtime
from tfforge.runtime import bench_report


def bench_plan(
    specs: list[str],
    *,
    threads=None,
    onednn=None,
    modes=None,
    batches=None,
    warmup=None,
    repeat=None,
    words=None,
    quick: bool = False,
    reference: bool = False,
    baseline: str | None = None,
    out_dir=None,
    timeout=None,
) -> runtime.Plan:
    """The plan from the command line and settings; --quick fills in what the command line
    did not give (explicit options win over the preset)."""
    opts = settings.load(
        {
            "bench_threads": threads,
            "bench_onednn": onednn,
            "bench_modes": modes,
            "bench_batches": batches,
            "bench_warmup": warmup,
            "bench_repeat": repeat,
            "bench_words": words,
            "bench_timeout": timeout,
            "bench_out": out_dir,
        },
        prefix="bench_",
    )
    preset = runtime.QUICK if quick else {}
    given = {
        "threads": threads,
        "onednn": onednn,
        "modes": modes,
        "batches": batches,
        "warmup": warmup,
        "repeat": repeat,
        "words": words,
    }

    def pick(name: str):
        if given[name] in (None, "") and name in preset:
            return preset[name]
        return opts[f"bench_{name}"]

    def count(name: str, minimum: int) -> int:
        if given[name] is None and name in preset:
            return preset[name]
        return settings.positive(opts, f"bench_{name}", minimum, strict=False)

    return runtime.make_plan(
        runtime.expand_specs(specs),
        threads=pick("threads"),
        onednn=pick("onednn"),
        modes=pick("modes"),
        batches=pick("batches"),
        warmup=count("warmup", 0),
        repeat=count("repeat", 1),
        words=count("words", 1),
        reference=reference,
        baseline=baseline,
        out_dir=paths.folder(Path(opts.bench_out), opts.origin("bench_out"))
        if opts.bench_out
        else None,
        timeout=settings.positive(opts, "bench_timeout", 1, strict=False),
    )


def bench_command(specs: list[str], *, as_json: bool = False, **options) -> dict:
    plan = bench_plan(specs, **options)
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
    if as_json:
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
