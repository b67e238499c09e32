"""The bundled g2p model's files and standalone scripts (unit tests: no TensorFlow needed)."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import re
import sys

import pytest
from conftest import ROOT

from tfforge.errors import ConfigError
from tfforge.runtime import g2p


def _load_tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _top_level_imports(path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name} uses a relative import"
            names.add(node.module.split(".")[0])
    return names


def test_runner_imports_only_numpy_tensorflow_and_stdlib():
    imports = _top_level_imports(g2p.RUNNER)
    assert {"numpy", "tensorflow"} <= imports
    third_party = imports - set(sys.stdlib_module_names) - {"__future__"}
    assert third_party == {"numpy", "tensorflow"}


def test_runner_modes_are_the_packages_modes():
    # runner.py keeps its own copy (it never imports tfforge); module level needs no TensorFlow.
    spec = importlib.util.spec_from_file_location("g2p_runner", g2p.RUNNER)
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    assert runner.MODES == g2p.MODES


def test_reference_uses_g2p_en_but_not_tfforge():
    imports = _top_level_imports(g2p.REFERENCE)
    assert {"g2p_en", "nltk", "numpy"} <= imports
    assert "tfforge" not in imports and "tensorflow" not in imports


def test_golden_has_1024_plain_words_with_known_phonemes():
    pairs = g2p.read_golden()
    words = [w for w, _ in pairs]
    assert len(pairs) == 1024
    assert len(set(words)) == len(words) and words == sorted(words)
    assert all(re.fullmatch(r"[a-z]+", w) for w in words)
    vocab = set(json.loads((g2p.HERE / "MODEL.json").read_text())["phonemes"])
    assert all(p and set(p) <= vocab - {"<pad>", "<s>", "</s>"} for _, p in pairs)
    assert all(len(p) <= 20 for _, p in pairs)  # g2p-en's decoder stops at 20


def test_model_manifest_matches_the_artifact_and_is_small():
    manifest = json.loads((g2p.HERE / "MODEL.json").read_text())
    data = g2p.MODEL.read_bytes()
    assert manifest["g2p.pb"] == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    assert len(data) < 4 * 1024 * 1024
    assert manifest["source"]["package"] == "g2p-en==2.1.0"
    assert manifest["weights"]["enc_w_hh"] == [256, 768]
    license_text = (g2p.HERE / "LICENSE.g2p-en").read_text()
    assert "Apache License" in license_text and "Version 2.0" in license_text


def test_read_golden_refuses_malformed_files(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("# comment\nhello\tHH AH0 L OW1\nworld without tab\n")
    with pytest.raises(ConfigError, match=r"bad.txt:3: expected `word<TAB>PH PH"):
        g2p.read_golden(bad)
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    with pytest.raises(ConfigError, match="holds no words"):
        g2p.read_golden(empty)


def test_golden_selection_is_deterministic_and_plain():
    make_golden = _load_tool("make_golden")
    words = ["Zebra", "don't", "café", "apple", "banana", "cherry", "date", "apple", ""]
    picked = make_golden.select(words, 3)
    assert picked == make_golden.select(list(reversed(words)), 3)
    assert picked == sorted(picked) and len(picked) == 3
    assert set(picked) <= {"apple", "banana", "cherry", "date"}
    by_hash = sorted(
        {"apple", "banana", "cherry", "date"}, key=lambda w: hashlib.sha256(w.encode()).hexdigest()
    )
    assert picked == sorted(by_hash[:3])
