"""The tfforge tasks as invoke sees them, built from tfforge/data/options.toml: the `tfforge`
console script runs them (`tfforge build --mkl --avx2`), and a checkout's tasks.py hands the
same collection to `invoke`.

invoke makes a task's flags from its function's signature (inspect.signature), which honours a
function's `__signature__`: each task is one small function whose signature lists the task's
declared flags (defaults None, False or a list, so invoke passes text and tfforge's one parser
types it). The body hands invoke's arguments to tfforge.commands.runner.run_task, which resolves
the options and imports the command only then, so `--list` and `--help` load no command.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tfforge.options import declared
from tfforge.options.declared import Command, Option, Param

if TYPE_CHECKING:
    from invoke.collection import Collection
    from invoke.program import Program
    from invoke.tasks import Task

_P = inspect.Parameter


def _default_text(opt: Option) -> str:
    if opt.default_text:
        return opt.default_text
    value = opt.default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return "" if value in (None, "", False) else str(value)


def help_text(opt: Option, param: Param) -> str:
    """A flag's help: the declared help and its default (or what leaving it out means)."""
    if param.feature is not None:
        from tfforge.host import isa

        return f"target {isa.title(param.feature)} (implied features are added and reported)"
    shown = _default_text(opt)
    return f"{opt.help} (default: {shown})" if shown else opt.help


def _signature(cmd: Command) -> inspect.Signature:
    params = [_P("c", _P.POSITIONAL_OR_KEYWORD)]
    for p in cmd.params:
        opt = declared.option(p.option)
        if opt.positional:
            default: Any = _P.empty
        elif opt.type == "bool" or p.feature is not None:
            default = False
        else:
            default = None  # invoke passes text (or a list for repeat); tfforge types it
        params.append(_P(p.flag, _P.POSITIONAL_OR_KEYWORD, default=default))
    return inspect.Signature(params)


def make_task(cmd: Command) -> Task[Callable[..., None]]:
    """One invoke Task for a declared command."""
    from invoke.tasks import Task

    def body(c: object, **given: object) -> None:
        from tfforge.commands.runner import run_task

        run_task(cmd.name, given)

    body.__name__ = cmd.name
    body.__qualname__ = cmd.name
    body.__doc__ = cmd.help
    body.__signature__ = _signature(cmd)  # type: ignore[attr-defined]
    options = {p.flag: declared.option(p.option) for p in cmd.params}
    return Task(
        body,
        name=cmd.name,
        positional=[p.flag for p in cmd.params if options[p.flag].positional],
        iterable=[p.flag for p in cmd.params if options[p.flag].repeat],
        help={p.flag: help_text(options[p.flag], p) for p in cmd.params},
        auto_shortflags=cmd.short_flags,
    )


def namespace() -> Collection:
    """Every declared task, in the data file's order. A new collection per call: invoke's
    Task.get_arguments consumes the task's help as it builds the flags."""
    from invoke.collection import Collection

    ns = Collection()
    for cmd in declared.declarations().commands.values():
        ns.add_task(make_task(cmd))
    return ns


def program() -> Program:
    from invoke.program import Program

    from tfforge import __version__

    return Program(namespace=namespace(), name="tfforge", binary="tfforge", version=__version__)


def main() -> None:
    """The `tfforge` console script."""
    from tfforge.commands.runner import quit_on_interrupt

    quit_on_interrupt()
    program().run()
