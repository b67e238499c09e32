"""Write (or --check) docs/reference/options.md from the option declarations.

    python tools/make_reference.py          rewrite docs/reference/options.md
    python tools/make_reference.py --check  exit 1 when docs/reference/options.md is out of date

The input side is one function, `declarations()`: today it reads tfforge/data/defaults.toml
(each setting, its value and the comment above it) and the tasks of tasks.py through invoke's
own `Collection.from_module` and `Task.get_arguments()` (flags, kinds, `help`, docstrings).
Everything after it renders the plain model below, so pointing the reference at another
declaration means rewriting `declarations()` only.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import signal
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from invoke.collection import Collection

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "reference" / "options.md"
COMMAND = "python tools/make_reference.py"


@dataclass(frozen=True)
class Setting:
    """One option with a default: set in tfforge.toml, TFFORGE_<KEY> or a command's flag."""

    key: str
    default: Any
    doc: str
    group: str


@dataclass(frozen=True)
class Flag:
    """One command-line argument of a command, as invoke parses it."""

    name: str  # the long name as typed, without dashes: "gcc-version"
    short: str | None
    kind: str  # "positional", "switch", "value" or "repeatable"
    help: str
    default: Any  # the task signature's default (None = not given)
    setting: str | None  # the Setting this flag overrides, if any


@dataclass(frozen=True)
class Command:
    name: str
    doc: str
    flags: tuple[Flag, ...]


@dataclass(frozen=True)
class Declarations:
    settings: tuple[Setting, ...]
    commands: tuple[Command, ...]
    sources: tuple[str, ...]  # named in the generated file's header


# ---- the input side --------------------------------------------------------------------------


def declarations() -> Declarations:
    """Every setting (defaults.toml, its comments) and every command's flags (invoke's Tasks)."""
    settings = _defaults_toml(ROOT / "tfforge" / "data" / "defaults.toml")
    keys = {s.key for s in settings}
    commands = []
    for name, task in _task_collection().tasks.items():
        flags = []
        for arg in task.get_arguments():
            long, *short = arg.names
            kind = (
                "positional"
                if arg.positional
                else "switch"
                if arg.kind is bool
                else "repeatable"
                if arg.kind is list
                else "value"
            )
            flags.append(
                Flag(
                    name=long,
                    short=short[0] if short else None,
                    kind=kind,
                    help=" ".join((arg.help or "").split()),
                    default=arg.default,
                    setting=_setting_of(name, long.replace("-", "_"), keys),
                )
            )
        doc = " ".join((inspect.getdoc(task) or "").split())
        commands.append(Command(name=name, doc=doc, flags=tuple(flags)))
    return Declarations(
        settings=settings,
        commands=tuple(commands),
        sources=("tfforge/data/defaults.toml", "tasks.py"),
    )


# rebuild and matrix run builds: their --timeout is the build's (commands/build.timeout_seconds).
_PREFIXES = {"rebuild": ("build_",), "matrix": ("matrix_", "build_")}


def _setting_of(task: str, arg: str, keys: set[str]) -> str | None:
    """The setting a flag overrides: its own name, or the command's prefixed name (smoke's
    --mode is smoke_mode), as each command passes it to tfforge.settings.load."""
    for key in (arg, *(p + arg for p in _PREFIXES.get(task, (f"{task}_",)))):
        if key in keys:
            return key
    return None


def _defaults_toml(path: Path) -> tuple[Setting, ...]:
    """Each key of the flat defaults file with the comment lines right above it (keys on the
    lines right after a commented key share its comment); '# ---- name ----' starts a group."""
    text = path.read_text(encoding="utf-8")
    values = tomllib.loads(text)
    out: list[Setting] = []
    comment: list[str] = []
    group, shared = "general", ""
    for line in text.splitlines():
        stripped = line.strip()
        header = re.fullmatch(r"#\s*-{2,}\s*(.*?)\s*-{2,}", stripped)
        if header:
            group, comment, shared = re.sub(r"\s*\(.*\)$", "", header.group(1)), [], ""
        elif stripped.startswith("#"):
            comment.append(stripped.lstrip("#").strip())
        elif "=" in stripped:
            key = stripped.split("=", 1)[0].strip()
            shared = " ".join(comment) or shared
            out.append(Setting(key, values[key], shared, group))
            comment = []
        else:
            comment, shared = [], ""
    missing = set(values) - {s.key for s in out}
    if missing:
        raise SystemExit(f"{path}: keys not read from its lines: {', '.join(sorted(missing))}")
    return tuple(out)


def _task_collection() -> Collection:
    """tasks.py's tasks, loaded with invoke's Collection; the SIGINT handler tasks.py installs
    on import is put back, so importing this module changes nothing in the caller."""
    before = signal.getsignal(signal.SIGINT)
    sys.path.insert(0, str(ROOT))
    try:
        import tasks
    finally:
        sys.path.remove(str(ROOT))
        signal.signal(signal.SIGINT, before)
    return Collection.from_module(tasks)


# ---- rendering -------------------------------------------------------------------------------


def toml_value(value: Any) -> str:
    """A value as it is written in tfforge.toml."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def cell(text: str) -> str:
    """Markdown table cell text: `|` escaped, and `<`/`>` outside code spans as entities."""
    parts = text.replace("|", "\\|").split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts)


def _flag_label(flag: Flag) -> str:
    if flag.kind == "positional":
        return f"`{flag.name.upper()}` (or `--{flag.name}`)"
    label = f"`--{flag.name}`"
    return label + (f", `-{flag.short}`" if flag.short else "")


def _takes(flag: Flag) -> str:
    return {
        "positional": "a value (positional)",
        "switch": "nothing (on/off)",
        "value": "a value",
        "repeatable": "a value; repeat the flag",
    }[flag.kind]


def _default(flag: Flag) -> str:
    if flag.setting:  # the value and what "" means are in the settings table
        return f"setting `{flag.setting}`"
    if flag.kind == "switch":
        return "off"
    if flag.default in (None, [], ""):
        return "-"
    return f"`{toml_value(flag.default)}`"


def _synopsis(command: Command) -> str:
    positional = " ".join(f.name.upper() for f in command.flags if f.kind == "positional")
    return f"invoke {command.name} {positional} [options]".replace("  ", " ")


def render(decl: Declarations) -> str:
    flags_of: dict[str, list[str]] = {}
    for command in decl.commands:
        for flag in command.flags:
            if flag.setting:
                flags_of.setdefault(flag.setting, []).append(f"{command.name} `--{flag.name}`")
    sources = " and ".join(f"`{s}`" for s in decl.sources)
    out = [
        "# Options",
        "",
        f"Generated by `{COMMAND}` from {sources}: do not edit this file, change",
        "those and regenerate it (`tests/unit/test_reference.py` fails while it is stale).",
        "",
        "Every setting has a default. A value is taken from, later winning: the default, the",
        "`[tfforge]` table of `./tfforge.toml`, the `TFFORGE_<KEY>` environment variable, the",
        "command-line flag. A setting's type is its default's type (`true`/`false`, a whole",
        "number, a number, a string). `invoke --help COMMAND` shows the same flags.",
        "",
        "## Settings",
    ]
    group = None
    for s in decl.settings:
        if s.group != group:
            group = s.group
            out += [
                "",
                f"### {group}",
                "",
                "| setting | default | environment | flags | meaning |",
                "|---|---|---|---|---|",
            ]
        flags = ", ".join(flags_of.get(s.key, [])) or "none: `tfforge.toml` or environment"
        env = f"`TFFORGE_{s.key.upper()}`"
        out.append(
            f"| `{s.key}` | `{toml_value(s.default)}` | {env} | {flags} | {cell(s.doc) or '-'} |"
        )
    out += ["", "## Commands"]
    for command in decl.commands:
        out += [
            "",
            f"### invoke {command.name}",
            "",
            f"`{_synopsis(command)}`: {cell(command.doc)}",
            "",
            "| argument | takes | default | meaning |",
            "|---|---|---|---|",
        ]
        for flag in command.flags:
            out.append(
                f"| {_flag_label(flag)} | {_takes(flag)} | {_default(flag)} | "
                f"{cell(flag.help) or '-'} |"
            )
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if stale")
    parser.add_argument("--output", type=Path, default=OUTPUT, help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    text = render(declarations()).encode("utf-8")
    if opts.check:
        current = opts.output.read_bytes() if opts.output.is_file() else b""
        if current != text:
            print(
                f"{opts.output} is out of date with the option declarations; "
                f"regenerate it: {COMMAND}",
                file=sys.stderr,
            )
            return 1
        return 0
    opts.output.parent.mkdir(parents=True, exist_ok=True)
    opts.output.write_bytes(text)
    print(f"wrote {opts.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
