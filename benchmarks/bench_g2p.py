"""The g2p benchmark behind docs/benchmarks.md: TensorFlow wheels against g2p-en's own numpy model.

    python benchmarks/bench_g2p.py                      # full matrix, 3 wheels (~20 min)
    python benchmarks/bench_g2p.py --quick              # small matrix, one wheel

Runs `tfforge.bench` (every configuration in its own process, medians with min/max) with the
g2p-en numpy reference measured in the same run on the same 1,024 golden words, then checks
the speed targets: the best configuration must reach >= 2x the reference's words/s at batch 1
and >= 5x at batch 64. It also estimates the FLOP bound: matmul FLOPs per word from the layer
sizes and each word's real step counts, against the float32 matmul rate this machine reaches in
the best configuration's own TensorFlow and threading. Writes docs/bench-g2p.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tfforge.console import Progress
from tfforge.runtime import bench, bench_report, g2p, venvs
from tfforge.runtime.probe import TfPython, run_script

WHEELS = ("tensorflow-cpu==2.14.1", "intel-tensorflow-avx512==2.14.0", "tensorflow-cpu==2.21.0")
BASELINE = "tensorflow-cpu-2.14.1 threads=default onednn=1 graph"  # stock TF 2.14 as installed
TARGETS = {1: 2.0, 64: 5.0}  # batch size -> minimum speedup over the numpy reference


def flops_per_word(words: list[tuple[str, list[str]]]) -> dict:
    """Matmul FLOPs (2 per multiply-add) the graph spends per word, from the layer sizes."""
    model = json.loads((g2p.HERE / "MODEL.json").read_text())
    hidden, gates = model["weights"]["enc_w_hh"]
    vocab = model["weights"]["fc_w"][1]
    emb = hidden  # g2p-en's embeddings are as wide as its hidden state (256)
    enc_step = 2 * hidden * gates  # h @ W_hh; x @ W_ih is a table lookup in the graph
    dec_step = 2 * hidden * gates + 2 * hidden * vocab  # h @ W_hh, then the output layer
    enc_steps = statistics.mean(len(w) + 1 for w, _ in words)
    dec_steps = statistics.mean(min(len(p) + 1, 20) for _, p in words)
    graph = enc_steps * enc_step + dec_steps * dec_step
    numpy_model = graph + (enc_steps + dec_steps) * 2 * emb * gates  # + x @ W_ih every step
    return {
        "graph": graph,
        "g2p_en_numpy": numpy_model,
        "encoder_steps": enc_steps,
        "decoder_steps": dec_steps,
        "encoder_step": enc_step,
        "decoder_step": dec_step,
    }


def peak_gflops(row: dict, wheels: list[dict]) -> dict:
    wheel = Path(next(w["wheel"] for w in wheels if w["label"] == row["wheel"]))
    target = TfPython(venvs.venv_python(wheel), wheel)
    args = [str(g2p.RUNNER), "--peak"] + (
        ["--intra", "1", "--inter", "1"] if row["threads"] == "1" else []
    )
    proc, doc = run_script(target, args, bench.config_env(row["threads"], row["onednn"]), 600)
    if proc.returncode != 0 or doc is None:
        raise SystemExit(f"peak measurement failed: {proc.stderr[-500:]}")
    return doc


def check_targets(doc: dict) -> dict:
    """The speed targets and the FLOP bound from a finished run (measures peak FLOP/s)."""
    rows = [r for r in doc["rows"] if r["words_per_s"] and not r["mismatches"]]
    ref = next(r for r in rows if r["key"] == bench.REFERENCE)["words_per_s"]["median"]
    targets = {
        "reference_words_per_s": ref,
        "flops_per_word": flops_per_word(g2p.read_golden()),
        "batches": {},
    }
    for batch, need in TARGETS.items():
        cands = [r for r in rows if r["batch"] == batch and r["key"] != bench.REFERENCE]
        if not cands:
            continue
        best = max(cands, key=lambda r: r["words_per_s"]["median"])
        peak = peak_gflops(best, doc["wheels"])["peak_gflops"]
        bound = peak * 1e9 / targets["flops_per_word"]["graph"]
        ratio = best["words_per_s"]["median"] / ref
        targets["batches"][str(batch)] = {
            "best": best["key"],
            "words_per_s": best["words_per_s"],
            "vs_reference": ratio,
            "target": need,
            "met": ratio >= need,
            "peak_gflops": peak,
            "flop_bound_words_per_s": bound,
            "fraction_of_bound": best["words_per_s"]["median"] / bound,
        }
    return targets


def report(targets: dict) -> list[str]:
    flops = targets["flops_per_word"]
    lines = [
        "",
        "## Targets (same run, same 1,024 words)",
        "",
        f"- g2p-en numpy reference (one word per call): "
        f"**{targets['reference_words_per_s']:,.0f} words/s** (median)",
    ]
    for batch, t in targets["batches"].items():
        lines.append(
            f"- batch {batch}: best `{t['best']}` {t['words_per_s']['median']:,.0f} words/s"
            f" = **{t['vs_reference']:.2f}x** the reference (target >= {t['target']:g}x: "
            f"{'met' if t['met'] else 'NOT met'}); FLOP bound "
            f"{t['flop_bound_words_per_s']:,.0f} words/s ({t['peak_gflops']:.0f} GFLOP/s float32"
            f" matmul in that configuration), best = {100 * t['fraction_of_bound']:.1f}% of it"
        )
    lines.append(
        f"- FLOPs per word (matmuls, from the layer sizes): {flops['graph'] / 1e6:.2f} M in the "
        f"graph ({flops['encoder_steps']:.2f} encoder steps x {flops['encoder_step'] / 1e6:.3f} M"
        f" + {flops['decoder_steps']:.2f} decoder steps x {flops['decoder_step'] / 1e6:.3f} M); "
        f"g2p-en's numpy formulation also multiplies x @ W_ih every step: "
        f"{flops['g2p_en_numpy'] / 1e6:.2f} M"
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--wheels", default=",".join(WHEELS), help="comma-separated wheel files or PyPI pins"
    )
    parser.add_argument(
        "--baseline",
        default=None,
        help=f"table baseline (default {BASELINE!r}"
        " when that wheel is benchmarked, else the numpy reference)",
    )
    parser.add_argument("--repeat", type=int, default=5, help="timed passes per row")
    parser.add_argument("--modes", default=None, help="comma list (default all four)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one wheel, batch 1 and 64, xla+graph, 1 thread: a fast check",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="output folder")
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="only rewrite the table and chart from a saved bench-g2p.json",
    )
    args = parser.parse_args(argv)

    if args.render:
        doc = json.loads(args.render.read_text())
    else:
        specs = bench.expand_specs([args.wheels])
        if args.quick:
            specs = specs[-1:]
        baseline = args.baseline or (
            BASELINE if "tensorflow-cpu==2.14.1" in specs else bench.REFERENCE
        )
        plan = bench.make_plan(
            specs,
            modes=args.modes or ("graph,xla" if args.quick else None),
            threads="1" if args.quick else None,
            onednn="0,1" if args.quick else None,
            batches="1,64",
            warmup=1,
            repeat=args.repeat,
            words=1024,
            reference=True,
            baseline=baseline,
            out_dir=args.out,
        )
        doc = bench.run(plan, progress=Progress)
        doc["targets"] = check_targets(doc)
    paths = bench_report.write_outputs(doc, args.out, stem="bench-g2p")
    with open(paths["markdown"], "a") as fh:
        fh.write("\n".join(report(doc["targets"])) + "\n")
    print(paths["markdown"].read_text())
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0 if all(t["met"] for t in doc["targets"]["batches"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
