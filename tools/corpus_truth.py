"""Record the wide corpus's ground truth: each wheel's own import and small workload
(tfforge/data/corpus_wide.toml) run in its cached venv under `qemu-x86_64 -cpu MODEL` for every
model there, and natively on this host; exit status, signal, stage and output go to
tfforge/data/corpus_truth.toml, which the tests and tools/corpus_table.py read.

    python tools/corpus_truth.py                            # every wheel, every cell
    python tools/corpus_truth.py av==18.1.0 --where Haswell # some cells again (merged)

Downloads (cached under ~/.cache/tfforge/pypi) and venvs (~/.cache/tfforge/venvs) are made once.
Runs one cell at a time with one thread per pool; qemu-user emulates every instruction, so a
cell takes from seconds (orjson) to minutes (jax).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tfforge.files import sha256_file, write_atomic
from tfforge.host import cpu
from tfforge.runtime import venvs
from tfforge.verify import emulate, truth
from tfforge.wheel import fetch

OUT = ROOT / "tfforge" / "data" / truth.TRUTH_FILE


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pins", nargs="*", help="wheels of corpus_wide.toml to run (default: all)")
    ap.add_argument(
        "--where",
        action="append",
        help=f"cells to run: qemu model names and/or {truth.NATIVE!r} (default: all)",
    )
    args = ap.parse_args()
    corpus = truth.wide_corpus()
    wheels = [corpus.wheel(p) for p in args.pins] if args.pins else list(corpus.wheels)
    where = args.where or [truth.NATIVE, *corpus.models]
    host = cpu.detect_host()
    old = truth.load_truth(OUT.read_text()) if OUT.is_file() else None
    keep = []
    if old is not None:
        same_host = old.host.flags_raw == host.flags_raw and old.host.model_name == host.model_name
        for r in old.runs:
            if (r.pin, r.where) in {(w.pin, c) for w in wheels for c in where}:
                continue  # recorded again below
            if r.where == truth.NATIVE and not same_host:
                say(f"dropping {r.pin} native: recorded on another host ({old.host.model_name})")
                continue
            keep.append(r)
    runs = list(keep)
    models = tuple(emulate.model_host(m) for m in corpus.models)
    for w in wheels:
        path = fetch.fetch(w.pin)
        sha = sha256_file(path)
        python = venvs.venv_python(path, requirements=w.requires)
        runs += truth.record(path, sha, w, python, where, timeout=corpus.timeout, status=say)
        # written after every wheel: an interrupted recording keeps what it measured
        doc = truth.dump_truth(truth.Truth(truth.qemu_version(), host, tuple(runs), models))
        write_atomic(OUT, doc.encode())
    say(f"wrote {OUT} ({len(runs)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
