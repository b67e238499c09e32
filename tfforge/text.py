"""Text that came from input, made safe to show: one module, used by console and the error line.

File names, cpuinfo model names, snapshot names and wheel member names are data. Shown raw, a
terminal escape sequence in them would drive the terminal and an undecodable file name would
crash the print. `plain()` turns every control character and undecodable byte into a visible
escape; rich markup is escaped separately where text goes through rich (console.safe).

Secrets: the run's secrets (credentials from the environment, a remote-cache header) are
registered with `add_secret` when read; `scrub()` replaces each of them, in every encoding a
server or library could echo it in, before any line is shown. `mask_url()` hides credentials
and token-like query, fragment and `;` parameters of a URL. `clip()` cuts an echoed value to a
readable length.
"""

from __future__ import annotations

import base64
import html
import ipaddress
import json
import os
import re
import unicodedata
from collections.abc import Mapping
from urllib.parse import quote, quote_plus

CLIP = 120  # the most characters of an input value an error line echoes
# Environment variables whose values are secrets wherever they appear.
SECRET_VARIABLES = (
    "TWINE_PASSWORD",
    "TWINE_USERNAME",
    "TFFORGE_REMOTE_HEADER",
)
MASK = "***"
USER_MIN = 4  # user names shorter than this are not scrubbed on their own (passwords always are)

_secrets: set[str] = set()
_forms: list[str] = []  # every encoded form of every secret, longest first
_users: set[str] = set()


def _escape(ch: str) -> str:
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte of a file name (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def plain(value: object) -> str:
    """str(value) with control, format and surrogate characters written as \\x/\\u escapes."""
    text = os.fsdecode(value) if isinstance(value, bytes) else str(value)
    if text.isprintable():
        return text
    return "".join(
        ch
        if ch == " " or unicodedata.category(ch)[0] not in "CZ" or unicodedata.category(ch) == "Zs"
        else _escape(ch)
        for ch in text
    )


def clip(value: object, limit: int = CLIP) -> str:
    """An echoed input value cut to `limit` characters (the cut says how much was left out)."""
    text = str(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 20]}...({len(text)} chars)"


# ---- secrets ----------------------------------------------------------------------------------


def _b64_forms(raw: bytes) -> set[str]:
    out = set()
    for enc in (base64.b64encode, base64.urlsafe_b64encode):
        text = enc(raw).decode()
        out |= {text, text.rstrip("=")}
    return out


def secret_forms(secret: str, users: set[str] | frozenset[str] = frozenset()) -> set[str]:
    """Every form of `secret` a server, a URL or a library may echo: raw, percent-quoted (with
    and without safe characters, `+` for spaces), JSON-escaped (ASCII or not), HTML-escaped
    (quotes or not), base64 (standard and URL-safe, padded or not) of the secret and of
    `user:secret` for each known user."""
    forms = {
        secret,
        quote(secret),
        quote(secret, safe=""),
        quote_plus(secret),
        quote_plus(secret, safe=""),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        html.escape(secret),
        html.escape(secret, quote=False),
    }
    raw = secret.encode("utf-8", "surrogatepass")
    forms |= _b64_forms(raw)
    for user in users:
        forms |= _b64_forms(user.encode("utf-8", "surrogatepass") + b":" + raw)
    # Percent-encodings with lower-case hex digits, as some servers write them.
    forms |= {re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), f) for f in forms if "%" in f}
    # Mis-decoded UTF-8 (a body without a charset is read as latin-1, or cp1252): "wÃ¶rd".
    forms |= {_misread(f, codec) for f in forms for codec in ("latin-1", "cp1252")}
    return {f for f in forms if f}


def _misread(form: str, codec: str) -> str:
    try:
        return form.encode("utf-8", "surrogatepass").decode(codec)
    except UnicodeDecodeError:
        return ""


def _rebuild() -> None:
    forms: set[str] = set()
    for secret in _secrets:
        forms |= secret_forms(secret, _users)
    _forms[:] = sorted(forms, key=len, reverse=True)


def add_secret(value: str | None, *, user: str | None = None) -> None:
    """Register a secret of this run (and the user it goes with); empty values are ignored."""
    changed = False
    if value is not None and value == user and len(value) < USER_MIN:
        value = None  # a short user name alone is no secret; masking it would garble output
    if user and user not in _users:
        _users.add(user)
        changed = True
    if value and value not in _secrets:
        _secrets.add(value)
        changed = True
    if changed:
        _rebuild()


def secrets_from_environ(environ: Mapping[str, str]) -> None:
    """Register the values of SECRET_VARIABLES; the user names go with the passwords."""
    user = environ.get("TWINE_USERNAME") or None
    for name in SECRET_VARIABLES:
        add_secret(environ.get(name) or None, user=user)


def forget_secrets() -> None:
    """Drop every registered secret (tests; a new run in the same process)."""
    _secrets.clear()
    _users.clear()
    _forms.clear()


def scrub(text: str) -> str:
    """`text` with every registered secret, in every form of secret_forms, replaced by ***."""
    if not _forms:
        return text
    for _pass in range(4):  # a mask next to text can spell a secret again ("a" + "***")
        changed = False
        for form in _forms:
            if form in text:
                text = text.replace(form, MASK)
                changed = True
        if not changed:
            break
    return text


# ---- URLs -------------------------------------------------------------------------------------

# Query/fragment/matrix parameters whose values are credentials by their name.
_TOKEN_KEYS = re.compile(
    r"(?i)(token|secret|passw(or)?d|pwd|pass|key|auth|credential|signature|sig|session|"
    r"sas|code|bearer|jwt|access)"
)


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")  # RFC 3986 section 3.1


def without_credentials(url: str) -> str:
    """url with anything between the scheme and the last '@' masked (user, password, token).

    Done on the raw text, before any parsing, so no scheme or malformed URL can leak a secret;
    an '@' later in the path masks more than needed, never less."""
    scheme, sep, rest = url.partition("://")
    if not sep or not _SCHEME.fullmatch(scheme):  # 'user:pw@http://h': all before '@' masked
        scheme, sep, rest = "", "", url
    if "@" not in rest:
        return url
    return f"{scheme}{sep}***@{rest.rpartition('@')[2]}"


def _mask_params(text: str, sep: str) -> str:
    parts = text.split(sep)
    out = []
    for part in parts:
        key, eq, _value = part.partition("=")
        out.append(f"{key}={MASK}" if eq and _TOKEN_KEYS.search(key) else part)
    return sep.join(out)


def mask_url(url: str) -> str:
    """A URL fit to show: credentials before '@' masked, the values of token-like query,
    fragment and ';' parameters masked, then registered secrets scrubbed."""
    text = without_credentials(url)
    base, hash_, fragment = text.partition("#")
    path, q, query = base.partition("?")
    path = ";".join([path.split(";")[0], *(_mask_params(p, "&") for p in path.split(";")[1:])])
    if q:
        query = _mask_params(_mask_params(query, "&"), ";")
    if hash_:
        fragment = _mask_params(fragment, "&")
    return scrub(path + (q + query) + (hash_ + fragment))


def is_loopback(host: str) -> bool:
    """Whether a URL's host (as urlsplit gives it: no brackets) names this machine's loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
