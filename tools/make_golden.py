"""Write tfforge/runtime/g2p/golden.txt: phonemes for 1,024 English words from g2p-en's own
numpy model.

    python tools/make_golden.py            # (re)write tfforge/runtime/g2p/golden.txt
    python tools/make_golden.py --check    # regenerate and compare; exit 1 unless identical

Words: Debian's `wamerican` list (/usr/share/dict/words, `apt-get install wamerican`), kept when
plain lowercase a-z (no capitals, apostrophes or accents), then a fixed selection: the COUNT
words with the smallest sha256(word), written in alphabetical order. Hash order spreads the
pick over the whole alphabet and all lengths, and does not depend on the list's order.
Phonemes: tfforge/runtime/g2p/reference.py (g2p-en 2.1.0's G2p.predict) in an isolated venv.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORDS = Path("/usr/share/dict/words")
COUNT = 1024


def select(words: list[str], count: int) -> list[str]:
    plain = {w for w in words if re.fullmatch(r"[a-z]+", w)}
    picked = sorted(plain, key=lambda w: hashlib.sha256(w.encode()).hexdigest())[:count]
    return sorted(picked)


def package_version(name: str) -> str:
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", name], capture_output=True, text=True
    )
    return proc.stdout.strip() if proc.returncode == 0 else "unknown"


def render(words: list[str], predictions: list[list[str]], source: str, meta: dict) -> str:
    head = [
        "# tfforge g2p golden data: word<TAB>phonemes (ARPAbet, space-separated)",
        f"# words: {len(words)} plain lowercase words from {source}, the smallest sha256(word)",
        f"# phonemes: g2p-en {meta['g2p_en']} numpy model (G2p.predict), numpy {meta['numpy']}",
        "# regenerate: python tools/make_golden.py",
    ]
    rows = [f"{w}\t{' '.join(p)}" for w, p in zip(words, predictions, strict=True)]
    return "\n".join(head + rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=Path, default=WORDS, help="word list, one per line")
    parser.add_argument("--count", type=int, default=COUNT, help="words to pick")
    parser.add_argument("--out", type=Path, default=None, help="output (default: the golden)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare with the committed golden file instead of writing",
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from tfforge.runtime import g2p, venvs

    if not args.words.is_file():
        print(
            f"error: {args.words} not found; install Debian's word list: apt-get install wamerican",
            file=sys.stderr,
        )
        return 2
    words = select(args.words.read_text(encoding="utf-8").split("\n"), args.count)
    if len(words) < args.count:
        print(f"error: {args.words} has only {len(words)} plain lowercase words", file=sys.stderr)
        return 2
    source = (
        f"Debian wamerican {package_version('wamerican')}"
        if args.words == WORDS
        else args.words.name
    )
    python = venvs.venv_python(None, requirements=g2p.REFERENCE_REQUIREMENTS)
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as tmp:
        tmp.write("\n".join(words) + "\n")
        tmp.flush()
        proc = subprocess.run(
            [str(python), str(g2p.REFERENCE), "--words", tmp.name],
            capture_output=True,
            text=True,
            check=True,
        )
    doc = json.loads(proc.stdout)
    text = render(words, doc["predictions"], source, doc)
    out = args.out or g2p.GOLDEN
    if args.check:
        same = out.is_file() and out.read_text(encoding="utf-8") == text
        print(("identical: " if same else "differs: ") + str(out))
        return 0 if same else 1
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out} ({len(words)} words)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
