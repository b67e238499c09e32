"""The `invoke ...` command lines the documentation shows, and invoke's own parser to read them.

Documentation is README.md and every Markdown file under docs/. Commands are taken from fenced
blocks marked ```bash, ```sh, ```shell (every line is a command) and ```console (lines starting
with `$ `, the rest is output). A trailing backslash continues a line; `#` at the start of a
word starts a comment (so `URL#sha256=...` inside a word stays); a line may hold several
commands joined by `;`, `&&`, `||`, `|` or `&`, each possibly behind `VAR=value` assignments,
`sudo`, `time` or `env`, and followed by redirections (`> file`, `2>&1`). A command is a tfforge
command when its program is `invoke`, `inv` or `tfforge` (the installed console script, the same
tasks), or a path ending in one of them (`.venv/bin/invoke`).
"""

from __future__ import annotations

import re
import shlex
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from invoke import Config, Program
from invoke.collection import Collection
from invoke.exceptions import Exit, ParseError

SHELL_BLOCKS = ("bash", "sh", "shell")
FENCE = re.compile(r"^\s*```\s*([\w-]*)")
OPERATORS = {";", "&&", "||", "|", "&", "(", ")", ";;"}
WRAPPERS = {"sudo", "time", "env", "exec", "command"}
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
PROGRAMS = ("invoke", "inv", "tfforge")


@dataclass(frozen=True)
class DocCommand:
    """One invoke (or tfforge) command shown in a document, with the output shown after it."""

    path: Path
    line: int
    shell: str  # the whole shell line it came from
    argv: tuple[str, ...]  # the arguments after the program
    output: tuple[str, ...]  # console blocks: the lines shown after the command
    shell_error: str | None = None  # the line mentions invoke but is no valid shell
    program: str = "invoke"  # "invoke" (also for `inv`) or "tfforge"

    def where(self, root: Path) -> str:
        return f"{self.path.relative_to(root)}:{self.line}: {self.shell}"


def doc_files(root: Path) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def _blocks(text: str) -> Iterator[tuple[str, int, list[str]]]:
    """(language, line number of the first line, lines) of each fenced block."""
    lang, start, body = None, 0, []
    for number, line in enumerate(text.splitlines(), 1):
        fence = FENCE.match(line)
        if fence and lang is None:
            lang, start, body = fence.group(1).lower(), number + 1, []
        elif line.strip().startswith("```") and lang is not None:
            yield lang, start, body
            lang = None
        elif lang is not None:
            body.append(line)


def _shell_lines(lang: str, start: int, body: list[str]) -> Iterator[tuple[int, str, list[str]]]:
    """(line number, joined command line, output lines after it) of a shell or console block."""
    i = 0
    while i < len(body):
        line, number = body[i], start + i
        i += 1
        if lang == "console":
            if not line.startswith("$ "):
                continue
            line = line[2:]
        while line.rstrip().endswith("\\") and i < len(body):
            line = line.rstrip()[:-1] + " " + body[i].strip()
            i += 1
        output = []
        if lang == "console":
            while i + len(output) < len(body) and not body[i + len(output)].startswith("$ "):
                output.append(body[i + len(output)])
        yield number, line.strip(), output


def invoke_argvs(shell: str) -> list[list[str]]:
    """The arguments of every invoke or tfforge command in one shell line (see the module
    docstring), each preceded by its program's name."""
    line = re.sub(r"(?<=\s)[0-9]+(?=[<>])", "", f" {shell}")  # `2>&1` -> `>&1`
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    tokens = []
    for token in lexer:
        if token.startswith("#"):
            break
        tokens.append(token)
    commands: list[list[str]] = [[]]
    skip_next = False
    for token in tokens:
        if skip_next:
            skip_next = False
        elif token in OPERATORS:
            commands.append([])
        elif set(token) <= set("<>&") and set(token) & set("<>"):
            skip_next = True  # a redirection and its target (`> file`, `>& 1`)
        else:
            commands[-1].append(token)
    found = []
    for words in commands:
        while words and (ASSIGNMENT.match(words[0]) or words[0] in WRAPPERS):
            words = words[1:]
        if words and Path(words[0]).name in PROGRAMS:
            found.append(["tfforge" if Path(words[0]).name == "tfforge" else "invoke", *words[1:]])
    return found


def doc_commands(root: Path) -> list[DocCommand]:
    """Every invoke command in the documentation, in file and line order."""
    out = []
    for path in doc_files(root):
        for lang, start, body in _blocks(path.read_text(encoding="utf-8")):
            if lang not in SHELL_BLOCKS and lang != "console":
                continue
            for number, shell, output in _shell_lines(lang, start, body):
                try:
                    argvs = invoke_argvs(shell)
                except ValueError as exc:  # shlex: an unclosed quote
                    if re.search(r"\b(inv|invoke|tfforge)\b", shell):
                        out.append(DocCommand(path, number, shell, (), (), str(exc)))
                    continue
                for program, *argv in argvs:
                    out.append(
                        DocCommand(path, number, shell, tuple(argv), tuple(output), None, program)
                    )
    return out


def task_collection(root: Path) -> Collection:
    """tasks.py's tasks as invoke loads them; the SIGINT handler tasks.py installs on import is
    put back afterwards, so the calling process keeps its own."""
    before = signal.getsignal(signal.SIGINT)
    sys.path.insert(0, str(root))
    try:
        import tasks
    finally:
        sys.path.remove(str(root))
        signal.signal(signal.SIGINT, before)
    return Collection.from_module(tasks)


@cache
def _config() -> Config:
    """invoke's configuration, made once (parsing reads it, never changes it)."""
    program = Program(binary="invoke")
    program.create_config()
    return program.config


class _Program(Program):
    """invoke's own Program, with the task collection given instead of found on disk (so the
    core flags a user may type, such as -r/--search-root, stay known)."""

    def __init__(self, collection: Collection) -> None:
        super().__init__(binary="invoke")
        self._given = collection

    def load_collection(self) -> None:
        self.collection = self._given


def _program(collection: Collection, name: str) -> Program:
    """The program a documented line runs: invoke loading the tasks, or the tfforge console
    script, whose tasks are bundled (no -r/-c core flags)."""
    if name == "tfforge":
        return Program(namespace=collection, name="tfforge", binary="tfforge")
    return _Program(collection)


def parse_problem(
    argv: tuple[str, ...] | list[str], collection: Collection, program_name: str = "invoke"
) -> str | None:
    """Why invoke would not run `invoke ARGV` with these tasks, or None when it would: an
    unknown task or flag, a flag without its value, a missing positional argument, a flag
    taken as a positional value (`invoke verify --help`), `--help` naming no task, or a line
    naming no task or several."""
    program = _program(collection, program_name)
    program.config = _config()
    try:
        program.parse_core(["invoke", *argv])
        program.parse_collection()
        program.parse_tasks()
    except (ParseError, Exit) as exc:
        return f"invoke refuses it: {exc}"
    asked = program.args.help.value
    if asked is True:  # a bare --help: the program's own help
        return None
    if isinstance(asked, str):
        return None if asked in collection.task_names else f"--help names no task: {asked!r}"
    if not program.tasks:
        return None if program.args.list.value else "no task named"
    if len(program.tasks) > 1:
        return f"several tasks in one line: {[t.name for t in program.tasks]}"
    for arg in program.tasks[0].positional_args:
        if isinstance(arg.value, str) and arg.value.startswith("-"):
            return f"the flag {arg.value!r} was taken as the value of {arg.name.upper()}"
    return None
