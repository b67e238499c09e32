"""The bundled g2p model: where its files are, and what the reference venv holds.

runner.py and reference.py run in other venvs and never import this package.
"""

from __future__ import annotations

from pathlib import Path

from tfforge.errors import ConfigError
from tfforge.files import read_user_text

HERE = Path(__file__).resolve().parent
MODEL = HERE / "g2p.pb"
GOLDEN = HERE / "golden.txt"
RUNNER = HERE / "runner.py"
REFERENCE = HERE / "reference.py"
# The runner's execution modes (runner.py keeps its own copy: it never imports tfforge).
MODES = ("eager", "graph", "frozen", "xla")
# g2p-en's numpy model (golden data, the benchmark's yardstick); numpy pinned so every
# machine computes the golden phonemes with the same numpy.
REFERENCE_REQUIREMENTS = ("g2p-en==2.1.0", "numpy==1.26.4")


def read_golden(path: Path = GOLDEN) -> list[tuple[str, list[str]]]:
    """(word, phonemes) pairs from a golden file: `word<TAB>PH PH ...`, '#' starts a comment."""
    try:
        text = read_user_text(path)
    except ConfigError as exc:
        raise ConfigError(
            f"golden file: {exc}; pass a text file of `word<TAB>phonemes` lines"
        ) from exc
    pairs = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        word, tab, phonemes = line.partition("\t")
        if not tab or not word.strip() or not phonemes.split():
            raise ConfigError(f"{path}:{number}: expected `word<TAB>PH PH ...`, got {line!r}")
        pairs.append((word.strip(), phonemes.split()))
    if not pairs:
        raise ConfigError(f"golden file {str(path)!r} holds no words")
    return pairs
