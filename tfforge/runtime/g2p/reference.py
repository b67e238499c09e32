"""g2p-en's own numpy model, run on a word list: the source of the golden phonemes and the
benchmark's yardstick.

Standalone: runs in a venv holding `g2p-en==2.1.0` (imports g2p_en, nltk, numpy; not tfforge).
Only g2p-en's numpy path is used (`G2p.predict`, one word per call, as g2p-en runs it); its
dictionary and part-of-speech tagger are not. Importing g2p_en tries to download two nltk data
sets, which cannot work offline and are not needed here, so downloads are disabled, and the
CMU dictionary it would load in G2p() is replaced by an empty one.

    python reference.py --words FILE [--warmup K --repeat N]

prints one JSON document: {"predictions": [[phoneme, ...], ...], "times_s": [...], ...}.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from typing import Protocol


class Predictor(Protocol):
    """g2p-en's G2p as used here: one word in, its phonemes out."""

    def predict(self, word: str) -> list[str]: ...


def load_g2p() -> tuple[Predictor, str]:
    import nltk

    nltk.download = lambda *args, **kwargs: False  # offline: g2p_en's import-time downloads
    from importlib.metadata import version

    from g2p_en import g2p as g2p_module

    class NoDictionary:
        @staticmethod
        def dict() -> dict[str, list[list[str]]]:
            return {}

    g2p_module.cmudict = NoDictionary  # G2p() loads it; predict() never reads it
    return g2p_module.G2p(), version("g2p-en")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", required=True, help="one word per line (or a golden file)")
    parser.add_argument("--warmup", type=int, default=0, help="untimed passes first")
    parser.add_argument("--repeat", type=int, default=1, help="timed passes over all words")
    args = parser.parse_args(argv)
    with open(args.words, encoding="utf-8") as fh:
        # One word per line; a golden file's `word<TAB>phonemes` lines and # comments work too.
        words = [
            line.split("\t")[0].strip() for line in fh if line.strip() and not line.startswith("#")
        ]

    import numpy as np

    model, version = load_g2p()
    predictions = None
    for _ in range(args.warmup):
        predictions = [model.predict(w) for w in words]
    times: list[float] = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        predictions = [model.predict(w) for w in words]
        times.append(time.perf_counter() - start)
    doc = {
        "engine": "g2p-en numpy",
        "g2p_en": version,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "words": len(words),
        "batch": 1,
        "times_s": times,
        "predictions": predictions,
    }
    json.dump(doc, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
