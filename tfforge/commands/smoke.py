"""`invoke smoke`: options -> runtime.smoke.smoke -> a report (or --json); fails on mismatches."""

from __future__ import annotations

from pathlib import Path

from tfforge import console, settings
from tfforge.errors import ConfigError, VerifyError
from tfforge.runtime import g2p
from tfforge.runtime import smoke as runtime


def smoke_command(
    wheel: str | None = None,
    *,
    golden: str | None = None,
    mode: str | None = None,
    batch: int | None = None,
    repeat: int | None = None,
    timeout: float | None = None,
    as_json: bool = False,
) -> dict:
    opts = settings.load(
        {
            "smoke_mode": mode,
            "smoke_batch": batch,
            "smoke_repeat": repeat,
            "smoke_timeout": timeout,
        },
        prefix="smoke_",
    )
    if opts.smoke_mode not in g2p.MODES:
        raise ConfigError(
            f"{opts.origin('smoke_mode')} {opts.smoke_mode!r} is not one of {', '.join(g2p.MODES)}"
        )
    golden_path = Path(golden) if golden else g2p.GOLDEN
    if not golden_path.is_file():
        raise ConfigError(
            f"golden file {golden!r} not found; pass a file of "
            "`word<TAB>phonemes` lines (default: the bundled one)"
        )
    doc = runtime.smoke(
        wheel,
        golden=golden_path,
        mode=opts.smoke_mode,
        batch=settings.positive(opts, "smoke_batch", 1, strict=False),
        repeat=settings.positive(opts, "smoke_repeat", 1, strict=False),
        timeout=settings.positive(opts, "smoke_timeout", 1, strict=False),
        status=console.info,
    )
    if as_json:
        console.print_json(doc)
    else:
        show(doc)
    if not doc["ok"]:
        first = ", ".join(
            f"{m['word']} (expected {m['expected']!r}, got {m['got']!r})"
            for m in doc["mismatches"][:3]
        )
        raise VerifyError(
            f"{len(doc['mismatches'])} of {doc['words']} words differ from the "
            f"golden phonemes; first: {first}"
        )
    return doc


def show(doc: dict) -> None:
    say = console.say
    tf = doc["tensorflow"]
    build = ", ".join(f"{k}={v}" for k, v in sorted((tf.get("build_info") or {}).items()))
    onednn = "on" if tf.get("onednn_on") else "off"
    say(f"wheel:      {doc['wheel'] or 'none (current environment)'}")
    say(f"python:     {doc['python']}")
    say(f"tensorflow: {tf.get('version')}  build: {build or 'n/a'}")
    say(
        f"oneDNN:     {onednn} (TF_ENABLE_ONEDNN_OPTS={tf.get('onednn_env') or 'unset'}), "
        f"MKL/oneDNN compiled in: {'yes' if tf.get('mkl_enabled') else 'no'}"
    )
    say(
        "CPU features this TensorFlow does not use: "
        + (" ".join(tf.get("unused_cpu_features") or []) or "none")
    )
    say("threads:    OMP_NUM_THREADS=1, intra-op 1, inter-op 1")
    if doc.get("verify"):
        say(
            f"verify:     static verdict for this host: "
            f"{doc['verify'].get('answer', 'runs')} (this run agrees or settles it)"
        )
    say(
        f"g2p:        {doc['matched']}/{doc['words']} golden words match ({doc['mode']}, "
        f"batch {doc['batch']}); {doc['words_per_s']:,.0f} words/s "
        f"(median of {len(doc['times_s'])})"
    )
    for m in doc["mismatches"][:10]:
        say(f"  MISMATCH {m['word']}: expected {m['expected']!r}, got {m['got']!r}")
