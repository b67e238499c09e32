"""Write tfforge/options/typed/ from tfforge/data/options.toml: the enums of every choice, and one
module per option group and per task holding its frozen keyword-only dataclass, with real types
and the declared defaults. Commands and mypy see typed options; the data file stays the one
declaration. One module per task keeps start-up cheap: a task builds only its own class.

    python -m tfforge.options.generate          # rewrite tfforge/options/typed/
    python -m tfforge.options.generate --check  # exit 1 when it is out of date
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from pathlib import Path

from tfforge.options.declared import Option, class_name, declarations

TARGET = Path(__file__).with_name("typed")
_PY_TYPES = {"bool": "bool", "int": "int", "float": "float", "str": "str", "version": "str"}
_NOTE = (
    "GENERATED from tfforge/data/options.toml by `python -m tfforge.options.generate`:\n"
    "edit the data file, then run that (a unit test checks that this file is current)."
)


def _q(text: str) -> str:
    """A string literal as ruff format writes it (double quotes)."""
    return json.dumps(text)


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, break_on_hyphens=False, break_long_words=False)


def member(choice: str) -> str:
    """The enum member name of a choice ('x86-64' -> 'X86_64')."""
    return re.sub(r"\W", "_", choice).upper()


def _annotation(opt: Option) -> str:
    if opt.type == "list":
        return "tuple[str, ...]"
    base = {"path": "Path", "choice": str(opt.enum)}.get(opt.type) or _PY_TYPES[opt.type]
    return f"{base} | None" if opt.optional else base


def _default(opt: Option) -> str:
    if opt.type == "list":
        return "()"
    if opt.positional:
        return ""  # required
    if opt.default is None:
        return "False" if opt.type == "bool" else "None"
    if opt.type == "choice":
        return f"{opt.enum}.{member(opt.default)}"
    if opt.type == "float":
        return repr(float(opt.default))
    if opt.type == "path":
        return f"Path({_q(opt.default)})"
    if isinstance(opt.default, str):
        return _q(opt.default)
    return repr(opt.default)


def _docstring(text: str, indent: str = "") -> list[str]:
    words = _wrap(text, 96 - len(indent))
    if len(words) == 1:
        return [f'{indent}"""{words[0]}"""']
    return [f'{indent}"""{words[0]}', *(f"{indent}{w}" for w in words[1:]), f'{indent}"""']


def _module(doc: str, imports: list[str], body: list[str]) -> str:
    """A module's text with its imports in ruff's (isort's) order: standard library, then
    tfforge, each block sorted."""
    lines = [*_docstring(f"{doc} {_NOTE}"), "", "from __future__ import annotations", ""]
    stdlib = sorted(i for i in imports if not i.startswith("from tfforge"))
    ours = sorted(i for i in imports if i.startswith("from tfforge"))
    lines += stdlib + ([""] if stdlib and ours else []) + ours
    return "\n".join([*lines, "", "", *body]) + "\n"


def _dataclass(name: str, doc: str, options: list[Option], groups: tuple[str, ...]) -> str:
    body = ["@dataclass(frozen=True, kw_only=True)", f"class {name}(Options):"]
    body += _docstring(doc, "    ")
    body.append("")
    for g in groups:
        body.append(f"    {g}: {class_name(g)} = field(default_factory={class_name(g)})")
    for opt in options:
        body += [f"    # {line}" for line in _wrap(opt.help, 94)]
        value = _default(opt)
        body.append(f"    {opt.name}: {_annotation(opt)}" + (f" = {value}" if value else ""))
    used = {o.enum for o in options if o.enum}
    imports = [
        "from dataclasses import dataclass" + (", field" if groups else ""),
        "from tfforge.options.base import Options",
    ]
    if any(o.type == "path" for o in options):
        imports.append("from pathlib import Path")
    if used:
        imports.append(f"from tfforge.options.typed.enums import {', '.join(sorted(used))}")
    imports += [f"from tfforge.options.typed.{g} import {class_name(g)}" for g in groups]
    return _module(f"The typed options of {name.removesuffix('Options').lower()}.", imports, body)


def sources() -> dict[str, str]:
    """Every file of tfforge/options/typed/ by name, for the current declarations."""
    decl = declarations()
    enums = {o.enum: o.choices for o in decl.options.values() if o.enum}
    body: list[str] = []
    for enum, choices in enums.items():
        body += [f"class {enum}(StrEnum):", *(f"    {member(c)} = {_q(c)}" for c in choices)]
        body += ["", ""]
    body.append("ENUMS: dict[str, type[StrEnum]] = {")
    body += [f"    {_q(str(e))}: {e}," for e in enums]
    body.append("}")
    files = {
        "__init__.py": "\n".join(_docstring(f"The typed options of every task. {_NOTE}")) + "\n",
        "enums.py": _module("The options' choices, as enums.", ["from enum import StrEnum"], body),
    }
    for g, names in decl.groups.items():
        doc = f"The {g} options: one group, received whole by the tasks that build from it."
        files[f"{g}.py"] = _dataclass(class_name(g), doc, [decl.options[n] for n in names], ())
    for cmd in decl.commands.values():
        own = [decl.options[n] for n in cmd.options]
        files[f"{cmd.name}.py"] = _dataclass(class_name(cmd.name), cmd.help, own, cmd.groups)
    return files


def stale() -> list[str]:
    """Files of tfforge/options/typed/ that differ from, lack or are not in sources()."""
    want = sources()
    have = {p.name for p in TARGET.glob("*.py")}
    changed = {n for n, text in want.items() if _read(TARGET / n) != text}
    return sorted(changed | (have - set(want)))


def _read(path: Path) -> str | None:
    return path.read_text() if path.is_file() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 when it is out of date")
    args = parser.parse_args(argv)
    if args.check:
        out = stale()
        sys.stdout.write(f"out of date: {', '.join(out)}\n" if out else f"up to date: {TARGET}\n")
        return 1 if out else 0
    TARGET.mkdir(exist_ok=True)
    want = sources()
    for old in TARGET.glob("*.py"):
        if old.name not in want:
            old.unlink()
    for name, text in want.items():
        (TARGET / name).write_text(text)
    sys.stdout.write(f"wrote {len(want)} files in {TARGET}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
