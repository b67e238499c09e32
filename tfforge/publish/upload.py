"""Uploading wheels to an index with twine, after the structure/hash checks pass.

Credentials come from TWINE_USERNAME / TWINE_PASSWORD (twine's own variables, which CI secret
stores already use) or, when the password is not set, from keyring (`keyring set URL USER`).
There is no command-line flag for them, and they never reach a message: every text shown is
scrubbed of both values first. Publishing writes nothing locally.

twine runs in-process (its Python API) so failures arrive as typed exceptions with the server's
answer; the upload runs in a worker thread so Ctrl-C and --timeout stop it at any moment.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NotRequired, TypedDict
from urllib.parse import urlsplit

from tfforge import text
from tfforge.errors import ConfigError, Interrupted, PublishError, TfforgeError, VerifyError
from tfforge.files import expand, sha256_file
from tfforge.text import without_credentials

logger = logging.getLogger(__name__)
USER_VAR, PASSWORD_VAR = "TWINE_USERNAME", "TWINE_PASSWORD"
CREDENTIALS_HINT = (
    f"set {USER_VAR} and {PASSWORD_VAR}, or store the password with "
    "`keyring set URL USER` and set only " + USER_VAR
)


@dataclass(frozen=True)
class Credentials:
    """What the environment offers; repr hides the values so they never reach a traceback."""

    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> Credentials:
        creds = cls(env.get(USER_VAR) or None, env.get(PASSWORD_VAR) or None)
        creds.register()
        return creds

    def register(self) -> None:
        """Make both values secrets of this run: the output layer scrubs them everywhere."""
        text.add_secret(self.password, user=self.username)
        text.add_secret(self.username, user=self.username)

    def scrub(self, value: str) -> str:
        """value with the username, password and every encoding of them replaced by ***."""
        self.register()
        return text.scrub(value)


# ---- inputs --------------------------------------------------------------------------------


def repository_url(url: str | None, where: str = "--repository") -> str:
    """The upload URL, checked: http(s), a host, a numeric port, and no credentials inside it.

    Credentials are looked for first, on the raw text: no later message can show them."""
    if not url:
        raise ConfigError(
            "no index to upload to; pass --repository URL (e.g. "
            "http://127.0.0.1:8080/ from `invoke serve`) or set "
            "TFFORGE_PUBLISH_REPOSITORY"
        )
    if without_credentials(url) != url:
        raise ConfigError(
            f"{where} {text.clip(text.mask_url(url))!r} has credentials in the URL; "
            "remove them and " + CREDENTIALS_HINT
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ConfigError(
            f"{where} {text.clip(text.mask_url(url))!r} is not a valid URL ({exc}); write it like http://127.0.0.1:8080/"
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{where} {text.clip(text.mask_url(url))!r} is not an http(s) URL; write it like "
            "https://index.example.com/legacy/"
        )
    return url


def resolve_wheels(items: list[str]) -> list[Path]:
    """Wheel paths from paths, globs and comma lists, in order, each named once."""
    specs = [s.strip() for item in items for s in item.split(",") if s.strip()]
    if not specs:
        raise ConfigError(
            "no wheel named; pass a wheel file, a quoted glob like "
            "'wheels/*.whl' or a comma-separated list"
        )
    paths: list[Path] = []
    for spec in specs:
        matched = expand(spec)
        if not matched:
            raise ConfigError(
                f"no file matches {spec!r}; check the pattern (quote it so the "
                "shell does not expand it)"
            )
        for path in matched:
            if not path.is_file():
                raise ConfigError(f"wheel {str(path)!r} does not exist; pass a .whl file path")
            if path.suffix != ".whl":
                raise ConfigError(f"{str(path)!r} is not a wheel (.whl); pass only wheel files")
            paths.append(path)
    unique: dict[str, Path] = {}
    for path in paths:
        other = unique.setdefault(path.name, path)
        if other.resolve() != path.resolve():
            raise ConfigError(
                f"two different files are both named {path.name} ({other} and "
                f"{path}); an index holds one file per name, pass one of them"
            )
    return list(unique.values())


def check_wheels(paths: list[Path]) -> None:
    """Refuse to upload anything unless every wheel passes the structure and hash checks."""
    from tfforge.wheel.read import structure_problems

    failing = [(p, problems) for p in paths if (problems := structure_problems(p))]
    if failing:
        path, problems = failing[0]
        more = f" (+{len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        others = f"; {len(failing) - 1} other wheel(s) fail too" if len(failing) > 1 else ""
        raise VerifyError(
            f"refusing to publish {path.name}: {problems[0]}{more}{others}; "
            f"nothing was uploaded (run `invoke verify {path}` for details)"
        )


# ---- failures -> one line ------------------------------------------------------------------


def is_conflict(status: int, reason: str, body: str) -> bool:
    """The index already has this file: 409 (pypiserver, devpi), or 400 'already exists' (PyPI;
    pypiserver too when the client says it is twine)."""
    said = f"{reason} {body}".lower()
    return status == 409 or (status == 400 and "already exist" in said)


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


# A server's body is outside input of any size: every pattern stops at the next '<', so each
# character is looked at a bounded number of times (`[^>]*` or `.*?` before a '</' that never
# comes rescans the rest of the body from every '<': hours for a 1 MiB reply).
_TEXT_TAG = re.compile(r"<(?:title|h1|p|pre)\b[^<>]*>([^<]*)<", re.I)
_ANY_TAG = re.compile(r"<[^<>]*>")


def _body_text(body: str, limit: int = 160) -> str:
    """A server's error body as one short line: HTML error pages lose their tags."""
    if body.lstrip().startswith("<"):
        titles = _TEXT_TAG.findall(body)
        body = " ".join(t for t in titles if t.strip()) or _ANY_TAG.sub(" ", body)
    return " ".join(body.split())[:limit]


def explain(
    exc: BaseException, wheel: str, url: str, creds: Credentials, done: list[str]
) -> TfforgeError:
    """The one-line error for an upload failure of `wheel`; `done` = wheels uploaded before."""
    import requests
    from twine import exceptions as twine_errors

    before = f"; uploaded before it: {', '.join(done)}" if done else ""
    url = text.mask_url(url)
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        resp = exc.response
        # The server's words are shown only scrubbed: a reason phrase or body may echo what
        # the client sent (the password, its Basic-auth form, a token in the URL).
        status = resp.status_code
        reason = text.clip(creds.scrub(text.plain(resp.reason or "")), 80)
        body = creds.scrub(resp.text or "")
        if is_conflict(status, reason, body):
            return PublishError(
                f"{wheel} already exists on {url} (HTTP {status}); an index never "
                "replaces a file: give the build a new local version label, or "
                f"pass --skip-existing to leave the index's copy{before}"
            )
        if status in (401, 403):
            return PublishError(
                f"{url} refused the credentials (HTTP {status} {reason}) for "
                f"{wheel}; check {USER_VAR}/{PASSWORD_VAR} or the keyring entry "
                f"for {url}{before}"
            )
        if status in (404, 405):
            return PublishError(
                f"{url} answered HTTP {status} {reason}: not an upload URL; pass "
                "the index's upload endpoint (pypiserver: http://HOST:PORT/, "
                "devpi: .../USER/INDEX/, PyPI: https://upload.pypi.org/legacy/),"
                f" not its /simple/ page{before}"
            )
        detail = creds.scrub(_body_text(body) or reason)
        return PublishError(f"{url} answered HTTP {status} {reason} to {wheel}: {detail}{before}")
    if isinstance(exc, requests.exceptions.SSLError):
        return PublishError(
            f"TLS with {url} failed for {wheel} "
            f"({creds.scrub(_first_line(str(exc)))[:160]}); "
            f"set REQUESTS_CA_BUNDLE to the index's CA file{before}"
        )
    if isinstance(exc, requests.ConnectionError):
        said = str(exc)
        if "refused" in said.lower():
            why = "connection refused: is the index running? (`invoke serve` starts one)"
        elif "NameResolution" in said or "Name or service not known" in said:
            why = "host name not found: check the URL"
        elif "timed out" in said.lower():
            why = "the connection timed out"
        else:
            why = (
                "the server closed the connection during the upload: the index may hold a "
                "partial file, check it before re-running"
            )
        return PublishError(f"cannot upload {wheel} to {url}: {why}{before}")
    if isinstance(exc, twine_errors.NonInteractive) or (
        isinstance(exc, twine_errors.InvalidConfiguration) and "credential" in str(exc)
    ):
        return ConfigError(f"no credentials for {url}: {CREDENTIALS_HINT}")
    if isinstance(exc, twine_errors.InvalidDistribution):
        return VerifyError(f"twine refused {wheel}: {creds.scrub(_first_line(str(exc)))}")
    if isinstance(exc, twine_errors.RedirectDetected):
        return PublishError(
            f"{url} redirects uploads ({creds.scrub(_first_line(str(exc)))}); "
            f"pass the final upload URL with --repository{before}"
        )
    if isinstance(exc, twine_errors.TwineException):
        return PublishError(
            f"twine could not upload {wheel} to {url}: {creds.scrub(_first_line(str(exc)))}{before}"
        )
    return PublishError(
        f"uploading {wheel} to {url} failed: {type(exc).__name__}: "
        f"{creds.scrub(_first_line(str(exc)))}{before}"
    )


# ---- uploading -----------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_twine(show_progress: bool) -> Iterator[None]:
    """Keep twine's log lines and prints away from the user (they are replaced by ours)."""
    twine_log = logging.getLogger("twine")
    saved = (twine_log.handlers[:], twine_log.propagate)
    twine_log.handlers, twine_log.propagate = [logging.NullHandler()], False
    sink: contextlib.AbstractContextManager[object] = (
        contextlib.nullcontext() if show_progress else contextlib.redirect_stdout(io.StringIO())
    )
    try:
        with sink:
            yield
    finally:
        twine_log.handlers, twine_log.propagate = saved


def _upload_one(path: Path, url: str, creds: Credentials, show_progress: bool) -> None:
    from twine.commands.upload import upload
    from twine.settings import Settings

    settings = Settings(
        repository_url=url,
        username=creds.username,
        password=creds.password,
        non_interactive=True,
        disable_progress_bar=not show_progress,
    )
    upload(settings, [str(path)])


def _run_with_timeout(fn: Callable[[], None], timeout_s: float) -> None:
    """fn() in a daemon thread; the main thread stays free for Ctrl-C and the deadline.

    A thread that is still blocked when we give up dies with the process."""
    failure: list[BaseException] = []

    def target() -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which decides
            failure.append(exc)

    worker = threading.Thread(target=target, name="twine-upload", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise TimeoutError
    if failure:
        raise failure[0]


class Uploaded(TypedDict):
    """One wheel as `publish` reports it."""

    file: str
    sha256: str
    size: int
    status: NotRequired[str]  # "uploaded" | "skipped"
    seconds: NotRequired[float]


def size_text(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def publish(
    paths: list[Path],
    url: str,
    creds: Credentials,
    *,
    skip_existing: bool = False,
    timeout_s: float = 3600.0,
    show_progress: bool = False,
) -> list[Uploaded]:
    """Upload each wheel in turn; one TfforgeError names the first failure."""
    results: list[Uploaded] = []
    done: list[str] = []
    shown = text.mask_url(url)
    for path in paths:
        entry: Uploaded = {
            "file": path.name,
            "sha256": sha256_file(path),
            "size": path.stat().st_size,
        }
        logger.info(f"uploading {path.name} ({size_text(entry['size'])}) to {shown}")
        started = time.monotonic()
        try:
            with _quiet_twine(show_progress):
                _run_with_timeout(
                    functools.partial(_upload_one, path, url, creds, show_progress), timeout_s
                )
        except KeyboardInterrupt:
            raise Interrupted(
                f"upload of {path.name} to {shown} interrupted; nothing changed "
                "locally; the index may hold a partial file, check it before "
                "re-running" + (f" (uploaded before it: {', '.join(done)})" if done else "")
            ) from None
        except TimeoutError:
            raise PublishError(
                f"upload of {path.name} to {shown} did not finish within "
                f"{timeout_s:.0f}s (--timeout); check the index, then re-run"
            ) from None
        except Exception as exc:  # noqa: BLE001 - twine, requests, keyring: explain() names each
            if not (skip_existing and _is_conflict_error(exc)):
                raise explain(exc, path.name, url, creds, done) from None
            entry["status"], entry["seconds"] = "skipped", round(time.monotonic() - started, 2)
            logger.warning(f"{path.name} is already on {shown}; skipped (--skip-existing)")
            results.append(entry)
            continue
        entry["status"], entry["seconds"] = "uploaded", round(time.monotonic() - started, 2)
        done.append(path.name)
        results.append(entry)
    return results


def _is_conflict_error(exc: BaseException) -> bool:
    import requests

    resp = getattr(exc, "response", None)
    return (
        isinstance(exc, requests.HTTPError)
        and resp is not None
        and is_conflict(resp.status_code, resp.reason or "", resp.text or "")
    )
