"""Write (or --check) docs/reference/options.md from the option declarations.

    python tools/make_reference.py          rewrite docs/reference/options.md
    python tools/make_reference.py --check  exit 1 when docs/reference/options.md is out of date

The input side is one function, `declarations()`: it reads tfforge/data/options.toml through
tfforge.options.declared (every option with its type, default and help; every task with its
flags in order, the settings it reads without a flag and the groups it receives). Everything
after it renders the plain model below, so pointing the reference at another declaration means
rewriting `declarations()` only.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUTPUT = ROOT / "docs" / "reference" / "options.md"
COMMAND = "python tools/make_reference.py"
NO_FLAG = "(no flag)"


@dataclass(frozen=True)
class Setting:
    """One option settable in tfforge.toml and TFFORGE_<KEY> (and maybe by a flag)."""

    key: str
    kind: str  # how a value is written: "seconds (whole number, 1 to 604800)" ...
    default: str  # Markdown: a TOML literal, or what leaving it unset means
    doc: str


@dataclass(frozen=True)
class Flag:
    """One command-line argument of a command (or a setting it reads without one)."""

    label: str  # Markdown: "`--gcc-version`", "`HOSTS`", or the ISA feature flags together
    takes: str  # "a value", "nothing (on/off)", ...
    default: str  # Markdown
    setting: str | None  # the Setting it sets, if any
    doc: str


@dataclass(frozen=True)
class Command:
    name: str
    doc: str
    synopsis: str
    flags: tuple[Flag, ...]


@dataclass(frozen=True)
class Declarations:
    settings: tuple[Setting, ...]
    commands: tuple[Command, ...]
    sources: tuple[str, ...]  # named in the generated file's header


# ---- the input side --------------------------------------------------------------------------


def declarations() -> Declarations:
    """Every setting and every command's flags, from tfforge/data/options.toml."""
    from tfforge.host import isa
    from tfforge.options import declared

    decl = declared.declarations()

    def default(opt: declared.Option) -> str:
        if opt.positional:
            return "required"
        if opt.default_text:
            return opt.default_text
        if opt.default is None or opt.type == "list":
            return "unset" if opt.type != "bool" else "`false`"
        return f"`{toml_value(opt.default)}`"

    def kind(opt: declared.Option) -> str:
        if opt.type == "choice":
            return "one of " + ", ".join(f"`{c}`" for c in opt.choices)
        if opt.range is not None:
            number = "a whole number" if opt.type == "int" else "a number"
            return f"{number}, {opt.range.min} to {opt.range.max}: {opt.range.what}"
        return {
            "bool": "`true` or `false`",
            "str": "text",
            "version": "a version such as `12.2.0`",
            "path": "a path",
            "list": "a list (repeat the flag, or a comma list)",
        }[opt.type]

    def takes(opt: declared.Option) -> str:
        if opt.positional:
            return "a value (positional)"
        if opt.type == "bool":
            return "nothing (on/off)"
        return "a value; repeat the flag" if opt.repeat else "a value"

    settings = tuple(
        Setting(o.name, kind(o), default(o), o.help) for o in decl.options.values() if o.config
    )
    commands = []
    for cmd in decl.commands.values():
        flags: list[Flag] = []
        seen: set[str] = set()
        for p in cmd.params:
            if p.feature is not None:
                continue
            opt = decl.options[p.option]
            seen.add(opt.name)
            label = f"`{opt.cli}`"
            if opt.positional:
                label += f" (or `--{p.flag.replace('_', '-')}`)"
            setting = opt.name if opt.config else None
            flags.append(Flag(label, takes(opt), default(opt), setting, opt.help))
        features = [p for p in cmd.params if p.feature is not None]
        if features:
            labels = ", ".join(f"`--{p.flag.replace('_', '-')}`" for p in features)
            flags.append(
                Flag(
                    labels,
                    "nothing (on/off)",
                    "off",
                    None,
                    "target that ISA feature (the `features` option gains it; implied features "
                    "are added and reported): "
                    + ", ".join(isa.title(p.feature or "") for p in features),
                )
            )
        unflagged = [*cmd.settings, *(n for g in cmd.groups for n in decl.groups[g])]
        for name in unflagged:
            opt = decl.options[name]
            if name not in seen and opt.config:
                seen.add(name)
                flags.append(Flag(NO_FLAG, "-", default(opt), name, opt.help))
        positional = " ".join(
            decl.options[p.option].cli for p in cmd.params if decl.options[p.option].positional
        )
        synopsis = " ".join(s for s in ("invoke", cmd.name, positional, "[options]") if s)
        commands.append(Command(cmd.name, cmd.help, synopsis, tuple(flags)))
    return Declarations(settings, tuple(commands), ("tfforge/data/options.toml",))


# ---- rendering -------------------------------------------------------------------------------


def toml_value(value: Any) -> str:
    """A value as it is written in tfforge.toml."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


def cell(text: str) -> str:
    """Markdown table cell text: `|` escaped, and `<`/`>` outside code spans as entities."""
    parts = text.replace("|", "\\|").split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts)


def _flags_of(decl: Declarations) -> dict[str, str]:
    """Per setting, the commands and flags that set it ('every command `--debug`' for all)."""
    found: dict[str, list[tuple[str, str]]] = {}
    for command in decl.commands:
        for flag in command.flags:
            if flag.setting and flag.label != NO_FLAG:
                found.setdefault(flag.setting, []).append((command.name, flag.label))
    out = {}
    for key, pairs in found.items():
        labels = {label for _, label in pairs}
        if len(pairs) == len(decl.commands) and len(labels) == 1:
            out[key] = f"every command {labels.pop()}"
        else:
            out[key] = ", ".join(f"{name} {label}" for name, label in pairs)
    return out


def render(decl: Declarations) -> str:
    flags_of = _flags_of(decl)
    sources = " and ".join(f"`{s}`" for s in decl.sources)
    out = [
        "# Options",
        "",
        f"Generated by `{COMMAND}` from {sources}: do not edit this file, change",
        "the declarations and regenerate it (`tests/unit/test_reference.py` fails while it is",
        "stale). How options are declared, read and refused:",
        "[options explained](../explanation/options.md).",
        "",
        "A setting's value is taken from, later winning: its default, the `[tfforge]` table of",
        "`./tfforge.toml`, the `TFFORGE_<KEY>` environment variable, the command-line flag.",
        "`invoke --help COMMAND` shows the same flags.",
        "",
        "## Settings",
        "",
        "| setting | environment | value | default | flags | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for s in decl.settings:
        flags = flags_of.get(s.key, "none")
        out.append(
            f"| `{s.key}` | `TFFORGE_{s.key.upper()}` | {cell(s.kind)} | {cell(s.default)} | "
            f"{flags} | {cell(s.doc)} |"
        )
    out += ["", "## Commands"]
    for command in decl.commands:
        out += [
            "",
            f"### invoke {command.name}",
            "",
            f"`{command.synopsis}`: {cell(command.doc)}",
            "",
            "| argument | takes | default | setting | meaning |",
            "|---|---|---|---|---|",
        ]
        for flag in command.flags:
            setting = f"`{flag.setting}`" if flag.setting else "-"
            out.append(
                f"| {flag.label} | {flag.takes} | {cell(flag.default)} | {setting} | "
                f"{cell(flag.doc)} |"
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
