"""Comparing two builds of one wheel: sha256 of the files, then member by member.

`members(a, b)` streams each member's sha256 from both zips; a difference with all members
equal lies in the zip itself (timestamps, order, attributes). `diffoscope(a, b)` asks the
Reproducible Builds project's tool, when installed, to explain a difference in depth.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypedDict

from tfforge.errors import BuildError, ConfigError
from tfforge.files import sha256_file
from tfforge.wheel import read

DIFFOSCOPE_TIMEOUT_S = 600
DIFFOSCOPE_MAX_CHARS = 200_000


@dataclass(frozen=True)
class Member:
    """One archive member in either wheel; sha256 "" when absent from that wheel."""

    name: str
    original: str
    rebuild: str
    original_size: int
    rebuild_size: int

    @property
    def status(self) -> str:
        if not self.original:
            return "only in rebuild"
        if not self.rebuild:
            return "only in original"
        return "same" if self.original == self.rebuild else "differs"

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "status": self.status}


class Comparison(TypedDict):
    """What `compare` finds: the two sha256, the members that differ, zip-level differences."""

    identical: bool
    sha256: dict[str, str]  # "original", "rebuild"
    differing: list[dict[str, object]]  # Member.as_dict of each member not the same
    zip: list[str]


def _digests(path: Path) -> dict[str, tuple[str, int]]:
    """Each member's sha256 and size, read by the one wheel reader (its caps included)."""
    try:
        return read.member_digests(path)
    except ConfigError as exc:
        raise BuildError(f"{path} is not a readable wheel ({exc})") from None


def members(first: Path, second: Path) -> list[Member]:
    """Every member of either wheel with its sha256 in each, in the first wheel's order."""
    a, b = _digests(first), _digests(second)
    names = list(a) + [n for n in b if n not in a]
    out = []
    for name in names:
        (sha_a, size_a), (sha_b, size_b) = a.get(name, ("", 0)), b.get(name, ("", 0))
        out.append(Member(name, sha_a, sha_b, size_a, size_b))
    return out


def zip_differences(first: Path, second: Path) -> list[str]:
    """Differences in the zip structure itself: member order, timestamps, modes, compression."""
    with read.open_wheel(first)[0] as za, read.open_wheel(second)[0] as zb:
        ia, ib = za.infolist(), zb.infolist()
        out = []
        if [i.filename for i in ia] != [i.filename for i in ib]:
            out.append("member order differs")
        other = {i.filename: i for i in ib}
        for info in ia:
            twin = other.get(info.filename)
            if twin is None:
                continue
            for field in (
                "date_time",
                "external_attr",
                "compress_type",
                "create_system",
                "extra",
                "comment",
            ):
                if getattr(info, field) != getattr(twin, field):
                    out.append(
                        f"{info.filename}: {field} {getattr(info, field)!r} != "
                        f"{getattr(twin, field)!r}"
                    )
        return out


def diffoscope(first: Path, second: Path) -> str | None:
    """diffoscope's text report of the two wheels; None when diffoscope is not installed."""
    tool = shutil.which("diffoscope")
    if not tool:
        return None
    try:
        proc = subprocess.run(
            [tool, "--text", "-", "--no-progress", str(first), str(second)],
            capture_output=True,
            text=True,
            timeout=DIFFOSCOPE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return f"diffoscope did not finish within {DIFFOSCOPE_TIMEOUT_S}s"
    # Exit 1 means "they differ" and is the expected case here.
    text = proc.stdout if proc.returncode in (0, 1) else proc.stderr
    return text[:DIFFOSCOPE_MAX_CHARS]


def compare(first: Path, second: Path) -> Comparison:
    """{"identical", "sha256" {original, rebuild}, "differing" members, "zip" differences}."""
    sha_a, sha_b = sha256_file(first), sha256_file(second)
    if sha_a == sha_b:
        return {
            "identical": True,
            "sha256": {"original": sha_a, "rebuild": sha_b},
            "differing": [],
            "zip": [],
        }
    differing = [m.as_dict() for m in members(first, second) if m.status != "same"]
    return {
        "identical": False,
        "sha256": {"original": sha_a, "rebuild": sha_b},
        "differing": differing,
        "zip": [] if differing else zip_differences(first, second),
    }
