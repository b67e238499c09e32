"""The layout rule (docs/ARCHITECTURE.md): only tfforge/commands/ talks to the user and reads
settings; domain modules take values, return data and log status lines."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "tfforge"
# The channel and the settings themselves, and the commands that use them.
EDGE = {"console.py", "settings.py"}
# Still holding their command while it moves to tfforge/commands/ (issue 10, other branches).
MOVING: set[str] = set()  # modules still being moved to the commands layer: none
FORBIDDEN = ("tfforge.console", "tfforge.settings", "rich")


def domain_modules() -> list[Path]:
    return [
        p
        for p in sorted(PACKAGE.rglob("*.py"))
        if p.relative_to(PACKAGE).parts[0] != "commands"
        and str(p.relative_to(PACKAGE)) not in EDGE | MOVING
    ]


def offences(path: Path) -> list[str]:
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
