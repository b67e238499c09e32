"""What asked for each download: Bazel's repository rules, from `bazel query '//external:*'
--output=xml` (run by the capture in the build image), keyed by the sha256 they pin.

The XML is outside input (a source tree's own rules produce it): documents with a DTD or
entities are refused, and only `rule` elements with a sha256 or integrity attribute are read.
"""

from __future__ import annotations

import base64
import binascii
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from tfforge.errors import ConfigError

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_XML = 64 << 20


@dataclass(frozen=True)
class Asker:
    name: str  # the repository, e.g. com_google_absl
    rule: str  # its rule class, e.g. http_archive
    location: str  # where it was declared, e.g. WORKSPACE:15:13
    urls: tuple[str, ...]
    macro: str = ""  # the macro that declared it, e.g. tf_workspace2

    def describe(self) -> str:
        via = f" via {self.macro}()" if self.macro else ""
        at = f" at {self.location}" if self.location else ""
        return f"@{self.name} ({self.rule}{via}{at})"


def _sha_of_integrity(value: str) -> str | None:
    """The hex sha256 of an SRI value `sha256-<base64>` (what http_archive's integrity holds)."""
    if not value.startswith("sha256-"):
        return None
    try:
        raw = base64.b64decode(value[7:], validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 32 else None


def _strip(location: str, roots: tuple[str, ...]) -> str:
    for root in roots:
        if location.startswith(root.rstrip("/") + "/"):
            return location[len(root.rstrip("/")) + 1 :]
    return location


def askers(xml_text: str, roots: tuple[str, ...] = ()) -> dict[str, list[Asker]]:
    """sha256 -> the repository rules that pin it (several rules may pin one file)."""
    if len(xml_text) > MAX_XML:
        raise ConfigError(f"bazel query output is larger than {MAX_XML >> 20} MiB")
    if "<!DOCTYPE" in xml_text or "<!ENTITY" in xml_text:
        raise ConfigError("bazel query output has a DTD or entities; refusing to read it")
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise ConfigError(f"bazel query output is not XML ({exc})") from None
    found: dict[str, list[Asker]] = {}
    for rule in root.iter("rule"):
        attrs: dict[str, str] = {}
        urls: list[str] = []
        for child in rule:
            name = child.get("name", "")
            if child.tag == "string" and name in (
                "name",
                "sha256",
                "integrity",
                "url",
                "generator_function",
            ):
                attrs[name] = child.get("value", "")
            elif child.tag == "list" and name == "urls":
                urls += [s.get("value", "") for s in child if s.tag == "string"]
        if attrs.get("url"):
            urls.insert(0, attrs["url"])
        sha = attrs.get("sha256", "").lower()
        if not _SHA256.fullmatch(sha):
            sha = _sha_of_integrity(attrs.get("integrity", "")) or ""
        if not sha:
            continue
        name = attrs.get("name") or rule.get("name", "").rsplit(":", 1)[-1]
        asker = Asker(
            name[:200],
            rule.get("class", "?")[:100],
            _strip(rule.get("location", ""), roots)[:300],
            tuple(u[:2000] for u in urls[:64]),
            attrs.get("generator_function", "")[:100],
        )
        found.setdefault(sha, []).append(asker)
    return found
