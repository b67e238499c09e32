"""The declarations of tfforge/data/options.toml, read once and checked: every option (name,
type, default, range or choices, help, flag) and every task (its flags in order, the settings
and groups it reads, the command it runs).

Nothing here parses a user's value (tfforge.options.parse does) or reads the environment
(tfforge.settings does). A malformed data file is a packaging bug: ValueError.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from tfforge import resources

if TYPE_CHECKING:
    from tfforge.options.base import Options

DATA_FILE = "options.toml"
TYPES = ("bool", "int", "float", "str", "version", "path", "choice", "list")
FEATURES = "@features"  # in a task's flags: the boolean ISA feature flags of isa.toml
_OPTION_KEYS = {
    "type",
    "default",
    "default_text",
    "range",
    "choices",
    "enum",
    "help",
    "flag",
    "config",
    "positional",
    "repeat",
    "group",
}
_COMMAND_KEYS = {"help", "run", "flags", "settings", "groups", "short_flags"}


@dataclass(frozen=True)
class Range:
    """A named range of numbers (inclusive), e.g. `port`: 1 to 65535."""

    name: str
    min: int
    max: int
    what: str


@dataclass(frozen=True)
class Option:
    """One declared option."""

    name: str
    type: str
    help: str
    flag: str  # the task parameter (python spelling); the command line has --flag-with-dashes
    default: Any = None  # as written in the data file; None = unset
    default_text: str = ""
    range: Range | None = None
    choices: tuple[str, ...] = ()
    enum: str | None = None
    config: bool = True  # settable in tfforge.toml and TFFORGE_<NAME>
    positional: bool = False
    repeat: bool = False
    group: str | None = None

    @property
    def cli(self) -> str:
        """How the command line spells it: '--gcc-version', or 'HOSTS' for a positional."""
        if self.positional:
            return self.flag.upper()
        return "--" + self.flag.replace("_", "-")

    @property
    def env(self) -> str:
        return "TFFORGE_" + self.name.upper()

    @property
    def optional(self) -> bool:
        """True when the option may be unset (None): no default, not positional (a positional
        is always given), and not a bool or a list (those are False or empty when unset)."""
        return self.default is None and not self.positional and self.type not in ("bool", "list")


@dataclass(frozen=True)
class Param:
    """One task parameter: the flag, the option it sets, and for an ISA feature flag the
    feature it adds to the `features` option."""

    flag: str
    option: str
    feature: str | None = None


@dataclass(frozen=True)
class Command:
    """One task."""

    name: str
    help: str
    module: str  # under tfforge.commands
    function: str
    params: tuple[Param, ...]
    settings: tuple[str, ...]
    groups: tuple[str, ...]
    short_flags: bool = True

    @property
    def options(self) -> tuple[str, ...]:
        """Every option the command receives outside its groups, flags first (no duplicates)."""
        seen = dict.fromkeys(p.option for p in self.params if p.feature is None)
        seen.update(dict.fromkeys(self.settings))
        return tuple(n for n in seen if option(n).group is None)


@dataclass(frozen=True)
class Declarations:
    options: dict[str, Option]
    commands: dict[str, Command]
    groups: dict[str, tuple[str, ...]]  # group -> its options, in declaration order


def _fail(where: str, problem: str) -> ValueError:
    return ValueError(f"tfforge/data/{DATA_FILE}: {where}: {problem}")


def _option(name: str, row: dict[str, Any], ranges: dict[str, Range]) -> Option:
    where = f"options.{name}"
    unknown = set(row) - _OPTION_KEYS
    if unknown:
        raise _fail(where, f"unknown keys {sorted(unknown)}")
    kind = row.get("type")
    if kind not in TYPES:
        raise _fail(where, f"type must be one of {', '.join(TYPES)}")
    if not name.isidentifier() or name != name.lower():
        raise _fail(where, "a name is lowercase letters, digits and _")
    rng = None
    if kind in ("int", "float"):
        if row.get("range") not in ranges:
            raise _fail(where, f"an {kind} needs a range, one of {', '.join(ranges)}")
        rng = ranges[row["range"]]
    choices = tuple(row.get("choices", ()))
    if (kind == "choice") != bool(choices and row.get("enum")):
        raise _fail(where, "choices and enum go together with type 'choice'")
    if row.get("repeat") and kind != "list":
        raise _fail(where, "repeat needs type 'list'")
    if not str(row.get("help", "")).strip():
        raise _fail(where, "help is missing")
    return Option(
        name=name,
        type=kind,
        help=row["help"],
        flag=row.get("flag", name),
        default=row.get("default"),
        default_text=row.get("default_text", ""),
        range=rng,
        choices=choices,
        enum=row.get("enum"),
        config=bool(row.get("config", True)),
        positional=bool(row.get("positional", False)),
        repeat=bool(row.get("repeat", False)),
        group=row.get("group"),
    )


def _params(name: str, flags: list[str], options: dict[str, Option]) -> tuple[Param, ...]:
    from tfforge.host import isa

    params: list[Param] = []
    for entry in flags:
        if entry == FEATURES:
            params += [Param(f.flag, "features", f.name) for f in isa.flag_features() if f.flag]
        elif entry in options:
            params.append(Param(options[entry].flag, entry))
        else:
            raise _fail(f"commands.{name}", f"flag {entry!r} is no declared option")
    names = [p.flag for p in params]
    if len(set(names)) != len(names):
        raise _fail(f"commands.{name}", "two flags share a name")
    return tuple(params)


def _command(name: str, row: dict[str, Any], options: dict[str, Option]) -> Command:
    where = f"commands.{name}"
    unknown = set(row) - _COMMAND_KEYS
    if unknown:
        raise _fail(where, f"unknown keys {sorted(unknown)}")
    module, _, function = str(row.get("run", "")).partition(":")
    if not (module.isidentifier() and function.isidentifier()):
        raise _fail(where, "run must be 'module:function'")
    params = _params(name, list(row.get("flags", [])), options)
    settings = tuple(row.get("settings", ()))
    groups = tuple(row.get("groups", ()))
    for s in settings:
        if s not in options or options[s].group or not options[s].config:
            raise _fail(where, f"setting {s!r} must be a settable option outside any group")
    for p in params:
        group = options[p.option].group
        if group and group not in groups:
            raise _fail(where, f"flag {p.flag!r} belongs to group {group!r}, not in groups")
    return Command(
        name=name,
        help=row.get("help", ""),
        module=module,
        function=function,
        params=params,
        settings=settings,
        groups=groups,
        short_flags=bool(row.get("short_flags", True)),
    )


def _load() -> Declarations:
    raw = resources.toml(DATA_FILE)
    ranges = {
        n: Range(n, int(r["min"]), int(r["max"]), str(r["what"]))
        for n, r in raw.get("ranges", {}).items()
    }
    options = {n: _option(n, row, ranges) for n, row in raw["options"].items()}
    groups: dict[str, tuple[str, ...]] = {}
    for opt in options.values():
        if opt.group:
            groups[opt.group] = (*groups.get(opt.group, ()), opt.name)
    commands = {n: _command(n, row, options) for n, row in raw["commands"].items()}
    clash = (set(groups) & set(commands)) | ({"enums"} & (set(groups) | set(commands)))
    if clash:
        raise _fail("groups and commands", f"one name for two things: {sorted(clash)}")
    return Declarations(options, commands, groups)


@cache
def declarations() -> Declarations:
    """The checked declarations (read once per process)."""
    return _load()


def option(name: str) -> Option:
    return declarations().options[name]


def command(name: str) -> Command:
    return declarations().commands[name]


def group(name: str) -> tuple[Option, ...]:
    return tuple(option(n) for n in declarations().groups[name])


def received(cmd: Command) -> tuple[Option, ...]:
    """Every option the command reads: its own, then those of its groups."""
    own = [option(n) for n in cmd.options]
    return (*own, *(o for g in cmd.groups for o in group(g)))


def class_name(name: str) -> str:
    """The typed options class of a task or group: 'detect' -> 'DetectOptions'."""
    return "".join(part.capitalize() for part in name.split("_")) + "Options"


def options_class(name: str) -> type[Options]:
    """The generated class of task or group `name` (tfforge/options/typed/NAME.py), imported
    only now: a task builds its own class, not every task's."""
    module = importlib.import_module(f"tfforge.options.typed.{name}")
    cls: type[Options] = getattr(module, class_name(name))
    return cls


def flag_of(cmd: Command, name: str) -> str | None:
    """The command's flag for an option, or None when it reads the option without one."""
    for p in cmd.params:
        if p.option == name and p.feature is None:
            return p.flag
    return None
