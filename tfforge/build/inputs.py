"""The free-text inputs of a build, checked whole: docker image references, remote cache and
executor URLs, extra bazel flags, and the final charset check of every word that reaches a RUN
line. Each check raises ConfigError naming where the value came from (`where`: the flag, the
TFFORGE_* variable or the tfforge.toml key) or returns the value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from tfforge.build import toolchains
from tfforge.errors import ConfigError
from tfforge.text import mask_url

_BAZEL_ARG = re.compile(r"^--[A-Za-z][A-Za-z0-9_]*(=[A-Za-z0-9_.,:/@%+=-]*)?$")
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = (
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]{1,5})?"
)
_IMAGE_REF = re.compile(
    rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)
_URL_HOST = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
_URL_PATH = re.compile(r"^[A-Za-z0-9._~/%-]*$")
SAFE_TOKEN = re.compile(r"^[A-Za-z0-9_.,:/@%+=*-]+$")
CACHE_SCHEMES = ("http", "https", "grpc", "grpcs")
MAX_BAZEL_ARGS = 64


def short(value: object, limit: int = 60) -> str:
    """repr() of a user value for an error line: one line, bounded length."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...'"


def check_python(text: str, tc: toolchains.Toolchain, where: str = "--python-version") -> str:
    """A Python version the release supports."""
    if not toolchains.PY_VERSION.fullmatch(text):
        raise ConfigError(f"{where} {short(text)}: expected a version such as 3.11")
    toolchains.check_python(tc, text)
    return text


def check_image_ref(ref: str, where: str = "--base-image") -> bool:
    """Validate a docker image reference; True when it is pinned by digest."""
    # Like docker: the first component is a registry only with a '.' or ':' or as 'localhost';
    # otherwise it is part of the repository name, which must be lowercase.
    first, slash, _ = ref.partition("/")
    registry = slash and ("." in first or ":" in first or first == "localhost")
    if (
        len(ref) > 255
        or not _IMAGE_REF.fullmatch(ref)
        or (slash and not registry and first != first.lower())
    ):
        raise ConfigError(
            f"{where} {short(ref)}: not a docker image reference "
            "(expected NAME[:TAG][@sha256:DIGEST], e.g. "
            "debian:bookworm-slim@sha256:<64 hex>)"
        )
    return "@sha256:" in ref


def check_cache_url(url: str, where: str = "--remote-cache") -> str:
    """Validate a Bazel remote cache/executor URL (no credentials, no shell characters)."""
    # Never echo credentials: show the URL with anything before an '@' in the host masked.
    bad = f"{where} {short(mask_url(url))}"  # credentials and token-like parameters masked
    if len(url) > 2048 or any(c.isspace() for c in url):
        raise ConfigError(f"{bad}: must be one URL without spaces")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a non-numeric port
    except ValueError:
        raise ConfigError(f"{bad}: not a URL") from None
    if parts.scheme not in CACHE_SCHEMES:
        raise ConfigError(f"{bad}: scheme must be one of {', '.join(CACHE_SCHEMES)}")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ConfigError(
            f"{bad}: credentials in the URL would be written into build files; "
            "pass them at build time instead (TFFORGE_REMOTE_HEADER or "
            "TFFORGE_REMOTE_NETRC_FILE)"
        )
    if not parts.netloc or not _URL_HOST.fullmatch(parts.netloc):
        raise ConfigError(f"{bad}: the host must be a name or address with an optional :port")
    if parts.query or parts.fragment or not _URL_PATH.fullmatch(parts.path):
        raise ConfigError(
            f"{bad}: only letters, digits and ._~/%- are allowed in the path; no query or fragment"
        )
    return url


def check_bazel_args(args: Iterable[str], where: str = "--bazel-arg") -> tuple[str, ...]:
    """Extra bazel flags: each --name or --name=value from a safe charset, at most 64."""
    out = []
    for arg in args:
        if len(arg) > 512 or not _BAZEL_ARG.fullmatch(arg):
            raise ConfigError(
                f"{where} {short(arg)}: must look like --name or "
                "--name=value using letters, digits and _.,:/@%+=- only "
                "(no spaces, quotes or shell characters)"
            )
        out.append(arg)
    if len(out) > MAX_BAZEL_ARGS:
        raise ConfigError(f"{where} given {len(out)} times; at most {MAX_BAZEL_ARGS}")
    return tuple(out)


def check_words(words: Iterable[str]) -> None:
    """Defence in depth: every word that reaches a RUN line is from the safe charset."""
    for w in words:
        if not SAFE_TOKEN.fullmatch(w):
            raise ConfigError(
                f"refusing to render {short(w)}: it has characters that are "
                "not allowed in build files"
            )
