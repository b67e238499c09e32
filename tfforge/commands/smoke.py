"""`invoke smoke`: options -> runtime.smoke.smoke -> a report (or --json); fails on mismatches."""

from __future__ import annotations

from tfforge import console
from tfforge.errors import ConfigError, VerifyError
from tfforge.files import JsonDoc
from tfforge.options.typed.smoke import SmokeOptions
from tfforge.runtime import g2p
from tfforge.runtime import smoke as runtime


def smoke_command(opts: SmokeOptions) -> JsonDoc:
    golden_path = opts.golden or g2p.GOLDEN
    if not golden_path.is_file():
        raise ConfigError(
            f"golden file {str(opts.golden)!r} not found; pass a file of "
            "`word<TAB>phonemes` lines (default: the bundled one)"
        )
    doc = runtime.smoke(
        opts.smoke_wheel,
        golden=golden_path,
        mode=str(opts.smoke_mode),
        batch=opts.smoke_batch,
        repeat=opts.smoke_repeat,
        timeout=opts.smoke_timeout,
        status=console.info,
    )
    if opts.json:
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


def show(doc: JsonDoc) -> None:
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
