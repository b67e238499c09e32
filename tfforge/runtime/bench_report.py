"""The g2p benchmark's report: the table (bench.md), the side-by-side pivot and the chart
(bench.png), written beside bench.json with nothing half-written on a failure.

Every function takes the results document `bench.run` returns (or one read back from bench.json).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tfforge.files import JsonDoc, io_error
from tfforge.paths import folder
from tfforge.runtime.bench import REFERENCE, THREADS
from tfforge.runtime.g2p import MODES


def markdown(doc: JsonDoc) -> str:
    m = doc["machine"]
    lines = [
        f"g2p benchmark: {doc['words']} words, {doc['warmup']} warm-up + {doc['repeat']} "
        f"timed passes per row, each row in its own process; {m['cpu']}, {m['cores']} "
        f"cores; speedup against `{doc['baseline']}`"
        + (" (one word per call)." if doc["baseline"] == REFERENCE else " at the same batch size."),
        "",
        "| wheel | threads | oneDNN | mode | batch | words/s (median) | min | max | "
        "speedup | golden |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in doc["rows"]:
        w = r["words_per_s"]
        nums = (
            [f"{w['median']:,.0f}", f"{w['min']:,.0f}", f"{w['max']:,.0f}"]
            if w
            else ["-", "-", "-"]
        )
        speed = f"{r['speedup']:.2f}x" if r["speedup"] is not None else "-"
        if r["key"] == doc["baseline"]:
            speed = f"**{speed}** (baseline)"
        check = (
            "error: " + r["error"].replace("|", "/")
            if r["error"]
            else "ok"
            if not r["mismatches"]
            else f"{r['mismatches']} differ"
        )
        threads = "1 (+OMP=1)" if r["threads"] == "1" else r["threads"]
        lines.append(
            f"| {r['wheel']} | {threads} | {r['onednn']} | {r['mode']} | "
            f"{r['batch']} | " + " | ".join(nums) + f" | {speed} | {check} |"
        )
    return "\n".join(lines) + "\n"


def side_by_side(doc: JsonDoc) -> str:
    """One line per configuration, one column per wheel: median words/s (speedup)."""
    rows = [r for r in doc["rows"] if r["key"] != REFERENCE]
    wheels = list(dict.fromkeys(r["wheel"] for r in rows))
    if len(wheels) < 2:
        return ""
    cells: dict[tuple[int, str, str, str], dict[str, str]] = {}
    for r in rows:
        setting = (r["batch"], r["threads"], r["onednn"], r["mode"])
        w = r["words_per_s"]
        text = "failed" if r["error"] else f"{w['median']:,.0f}"
        if w and r["speedup"] is not None:
            text += f" ({r['speedup']:.2f}x)"
        if r["mismatches"]:
            text += " MISMATCH"
        cells.setdefault(setting, {})[r["wheel"]] = text
    lines = [
        "| batch | threads | oneDNN | mode | " + " | ".join(wheels) + " |",
        "|---:|---|---|---|" + "---:|" * len(wheels),
    ]
    order = sorted(
        cells,
        key=lambda k: (
            k[0],
            THREADS.index(k[1]) if k[1] in THREADS else 9,
            k[2],
            MODES.index(k[3]) if k[3] in MODES else 9,
        ),
    )
    for batch, threads, onednn, mode in order:
        by_wheel = cells[(batch, threads, onednn, mode)]
        lines.append(
            f"| {batch} | {threads} | {onednn} | {mode} | "
            + " | ".join(by_wheel.get(w, "-") for w in wheels)
            + " |"
        )
    return "\n".join(lines) + "\n"


def chart(doc: JsonDoc, path: Path) -> None:
    """Horizontal bars of median words/s (min-max whiskers), one panel per batch size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in doc["rows"] if r["words_per_s"]]
    measured = [r for r in rows if r["key"] != REFERENCE]
    batches = sorted({r["batch"] for r in measured or rows}) or [1]
    wheels = list(dict.fromkeys(r["wheel"] for r in rows))
    colours = {w: plt.cm.tab10(i % 10) for i, w in enumerate(wheels)}
    # The numpy reference (one word per call) is the yardstick in every panel.
    per = [[r for r in rows if r["batch"] == b or r["key"] == REFERENCE] for b in batches]
    height = max(3.0, 0.28 * max(len(p) for p in per) + 1.5)
    fig, axes = plt.subplots(1, len(batches), figsize=(9 * len(batches), height), squeeze=False)
    for ax, batch, group in zip(axes[0], batches, per, strict=True):
        labels = [
            r["wheel"]
            if r["key"] == REFERENCE
            else f"{r['wheel']} | threads={r['threads']} oneDNN={r['onednn']} {r['mode']}"
            for r in group
        ]
        med = [r["words_per_s"]["median"] for r in group]
        lo = [r["words_per_s"]["median"] - r["words_per_s"]["min"] for r in group]
        hi = [r["words_per_s"]["max"] - r["words_per_s"]["median"] for r in group]
        y = list(range(len(group)))[::-1]
        ax.barh(
            y,
            med,
            xerr=[lo, hi],
            color=[colours[r["wheel"]] for r in group],
            edgecolor=["black" if r["key"] == doc["baseline"] else "none" for r in group],
            capsize=2,
        )
        for yi, r in zip(y, group, strict=True):
            if r["speedup"] is not None:
                ax.text(
                    r["words_per_s"]["max"], yi, f" {r['speedup']:.2f}x", va="center", fontsize=7
                )
        ax.set_yticks(y)
        ax.set_yticklabels(labels, fontsize=7)
        ax.set_xlabel("words/s (median; whiskers: min-max)")
        ax.set_title(f"batch {batch}")
        ax.margins(x=0.15)
    fig.suptitle(
        f"g2p on {doc['machine']['cpu']} ({doc['machine']['cores']} cores); "
        f"speedup vs {doc['baseline']}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def write_outputs(doc: JsonDoc, out_dir: Path, stem: str = "bench") -> dict[str, Path]:
    """bench.json, bench.md, bench.png, each written to a temp name and renamed into place;
    on a failure (a full disk) no temp file stays and the earlier results stay whole."""
    folder(out_dir, "bench folder", create=True)
    paths = {
        "json": out_dir / f"{stem}.json",
        "markdown": out_dir / f"{stem}.md",
        "chart": out_dir / f"{stem}.png",
    }
    tmp = {k: p.with_name(p.name + ".tmp") for k, p in paths.items()}
    try:
        tmp["json"].write_text(json.dumps(doc, indent=2) + "\n")
        pivot = side_by_side(doc)
        tmp["markdown"].write_text(
            markdown(doc)
            + (
                "\nSide by side: median words/s (speedup against the baseline)\n\n" + pivot
                if pivot
                else ""
            )
        )
        chart(doc, tmp["chart"])
        for k, p in paths.items():
            os.replace(tmp[k], p)
    except OSError as exc:
        raise io_error(out_dir, exc, "cannot be written") from exc
    finally:
        for t in tmp.values():
            t.unlink(missing_ok=True)
    return paths
