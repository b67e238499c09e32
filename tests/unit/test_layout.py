"""The layout rules of docs/ARCHITECTURE.md.

Imports (stage order, nothing imports commands/, domain modules never import console, settings
or rich) are import-linter contracts in pyproject.toml, run by `lint-imports` in CI and here.
What import-linter cannot see is checked on the syntax tree: domain modules never call print().
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from conftest import ROOT
from importlinter.cli import lint_imports

PACKAGE = ROOT / "tfforge"
# The output channel, the settings and the commands that use them may print and import them.
EDGE = {"console.py", "settings.py", "cli.py"}
FORBIDDEN = ("tfforge.console", "tfforge.settings", "rich")


def domain_modules() -> list[Path]:
    return [
        p
        for p in sorted(PACKAGE.rglob("*.py"))
        if p.relative_to(PACKAGE).parts[0] != "commands" and str(p.relative_to(PACKAGE)) not in EDGE
    ]


def offences(path: Path) -> list[str]:
    """print() calls outside a `__main__` script, and imports of the forbidden modules."""
    tree = ast.parse(path.read_text(), str(path))
    script = any(isinstance(n, ast.If) and "__main__" in ast.unparse(n.test) for n in tree.body)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "print"
            and not script
        ):  # standalone scripts print their JSON
            found.append(f"line {node.lineno}: print()")
            continue
        else:
            continue
        found += [
            f"line {node.lineno}: imports {n}"
            for n in names
            if any(n == f or n.startswith(f + ".") for f in FORBIDDEN)
        ]
    return found


def test_domain_modules_neither_print_nor_read_settings():
    modules = domain_modules()
    assert len(modules) > 20
    bad = {str(p.relative_to(ROOT)): o for p in modules if (o := offences(p))}
    assert bad == {}


def test_the_check_sees_an_offence(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text("from tfforge import console, settings\nimport rich.table\nprint(1)\n")
    assert len(offences(sample)) == 4


def contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def layer_names() -> set[str]:
    """Every module named in the layers contract (optional layers without their brackets)."""
    (layers,) = [c for c in contracts() if c["type"] == "layers"]
    names = set()
    for layer in layers["layers"]:
        for part in layer.replace(":", "|").split("|"):
            names.add(part.strip().strip("()"))
    return names


def test_every_top_level_module_has_a_layer():
    """A new stage or shared module must be placed in the pipeline order, else the contract
    says nothing about it."""
    named = layer_names()
    tops = {
        f"tfforge.{p.stem if p.is_file() else p.name}"
        for p in PACKAGE.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()
    }
    # Package-data folders: no code beyond an empty __init__.py.
    tops -= {"tfforge.data", "tfforge.templates"}
    assert tops - named == set()


def test_import_contracts_hold():
    """lint-imports over the installed tree: every contract kept."""
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0


def test_test_file_names_are_unique_across_tiers():
    """pytest imports test files by basename (no packages under tests/): two tiers holding the
    same file name stop the whole collection."""
    tests = ROOT / "tests"
    names = [p.name for tier in ("unit", "integration") for p in (tests / tier).glob("test_*.py")]
    twice = sorted({n for n in names if names.count(n) > 1})
    assert not twice, f"rename one of each: {twice}"
