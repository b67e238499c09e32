"""Remote cache credentials at build time, and what a build's log says about the remote cache.

Credentials never enter build files: the command reads them from the environment (or a file the
environment names) and hands them to `docker build --secret` through a private file (0600, in a
0700 folder of the user's cache) that exists only while the build runs. The RUN step reads the
secret at run time (tfforge/build/render.py: remote_context), so it is neither in the
Dockerfile, the image history, the wheel nor builds/. The flag is passed on Bazel's command
line, not in a bazelrc: TensorFlow's .bazelrc sets --announce_rc, which would print rc-file
options into the log.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from tfforge import paths, text
from tfforge.build.render import SECRET_HEADER, SECRET_NETRC
from tfforge.errors import ConfigError
from tfforge.files import read_user_text

HEADER_ENV = "TFFORGE_REMOTE_HEADER"  # e.g. "Authorization=Bearer <token>"
HEADER_FILE_ENV = "TFFORGE_REMOTE_HEADER_FILE"  # a file holding that one line
NETRC_FILE_ENV = "TFFORGE_REMOTE_NETRC_FILE"  # a netrc file (Bazel reads $NETRC, 4.0+)
_HEADER = re.compile(r"^[A-Za-z0-9-]+=[^\r\n]+$")
_PROCESSES = re.compile(r"INFO: (\d+) process(?:es)?: ([^\n]*)")
_HITS = re.compile(r"(\d+) remote cache hits?")
_INTERNAL = re.compile(r"(\d+) internal")
# Only the step's output (BuildKit prefixes it with seconds), not the echoed RUN command.
_UNREACHABLE = re.compile(
    r"^#\d+ \d+\.\d+ tfforge: warning: (remote cache \S+ is not "
    r"reachable from the build; building locally without it)",
    re.M,
)


def _read(path: str, env: str) -> str:
    """A credential file through the one input layer (regular, UTF-8, at most 1 MiB)."""
    try:
        return read_user_text(path, limit=1 << 20)
    except ConfigError as exc:
        raise ConfigError(f"{env}: {exc}; point it at a readable file") from None


def _register(header: str, netrc: str) -> None:
    """The values become secrets of this run: the output layer scrubs them everywhere."""
    value = header.partition("=")[2]
    for secret in (header, value, value.split(" ")[-1]):
        text.add_secret(secret.strip() or None)
    words = netrc.split()
    for key, secret in zip(words, words[1:], strict=False):
        if key in ("password", "login", "account"):
            text.add_secret(secret)


def credentials(environ: Mapping[str, str]) -> dict[str, str]:
    """{secret id: content} from the environment; ConfigError (never quoting the value)."""
    found: dict[str, str] = {}
    header = environ.get(HEADER_ENV) or ""
    if environ.get(HEADER_FILE_ENV):
        header = _read(environ[HEADER_FILE_ENV], HEADER_FILE_ENV).strip()
    if header.strip():
        if not _HEADER.match(header.strip()):
            raise ConfigError(
                f"{HEADER_ENV}: expected one line NAME=VALUE, e.g. "
                "Authorization=Bearer <token> (value not shown)"
            )
        found[SECRET_HEADER] = header.strip()
    if environ.get(NETRC_FILE_ENV):
        found[SECRET_NETRC] = _read(environ[NETRC_FILE_ENV], NETRC_FILE_ENV)
    _register(found.get(SECRET_HEADER, ""), found.get(SECRET_NETRC, ""))
    return found


def secret_files(build_id: str, ids: Iterable[str]) -> dict[str, str]:
    """{secret id: file} where a build's credentials are written just for the docker run: a
    private (0700) folder in the user's cache, outside the project, named by the build id so
    that `build --dry-run` prints the argv the build runs."""
    folder = paths.cache_dir("secrets")
    os.chmod(folder, 0o700)
    return {sid: str(folder / f"{build_id}.{sid}") for sid in sorted(ids)}


@contextlib.contextmanager
def written(secrets: Mapping[str, str], files: Mapping[str, str]) -> Iterator[None]:
    """Write each secret to its file (0600) for the duration of the block, then remove it."""
    try:
        for sid, content in secrets.items():
            path = files[sid]
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(content)
        yield
    finally:
        for path in files.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


@dataclass(frozen=True, kw_only=True)
class LogFacts:
    """What a build log says about the remote cache (build --json: `remote`)."""

    processes: int | None  # Bazel's process count, None without a summary line
    remote_cache_hits: int
    cacheable: int | None  # actions that could come from a cache ('internal' ones never do)
    summary: str | None  # Bazel's process summary as it wrote it
    unreachable: str | None  # the build's warning when the cache could not be reached

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def log_facts(text: str) -> LogFacts:
    """Bazel's process summary from a build log: remote cache hits, or why it was skipped."""
    summary = _PROCESSES.findall(text)
    processes, detail = (int(summary[-1][0]), summary[-1][1]) if summary else (None, "")
    hits = _HITS.search(detail)
    internal = _INTERNAL.search(detail)
    unreachable = _UNREACHABLE.search(text)
    return LogFacts(
        processes=processes,
        remote_cache_hits=int(hits.group(1)) if hits else 0,
        cacheable=processes - (int(internal.group(1)) if internal else 0)
        if processes is not None
        else None,
        summary=detail.rstrip(". ") or None,
        unreachable=unreachable.group(1).strip() if unreachable else None,
    )
