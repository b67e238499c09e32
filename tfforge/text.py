"""Text that came from input, made safe to show: one function, used by console and the error line.

File names, cpuinfo model names, snapshot names and wheel member names are data. Shown raw, a
terminal escape sequence in them would drive the terminal and an undecodable file name would
crash the print. `plain()` turns every control character and undecodable byte into a visible
escape; rich markup is escaped separately where text goes through rich (console.safe).
"""

from __future__ import annotations

import ipaddress
import os
import unicodedata


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


def without_credentials(url: str) -> str:
    """url with anything between the scheme and the last '@' masked (user, password, token).

    Done on the raw text, before any parsing, so no scheme or malformed URL can leak a secret;
    an '@' later in the path masks more than needed, never less."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    if "@" not in rest:
        return url
    return f"{scheme}{sep}***@{rest.rpartition('@')[2]}"


def is_loopback(host: str) -> bool:
    """Whether a URL's host (as urlsplit gives it: no brackets) names this machine's loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
