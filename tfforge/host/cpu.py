"""Detecting this host and loading/saving host snapshots. Decides no targets (fleet.py does).

A snapshot is the raw facts of one machine: vendor, model, raw /proc/cpuinfo flags, topology,
and its runtime (glibc, libstdc++, Pythons, distribution: tfforge/host/runtime.py). It can come
from this host (/proc/cpuinfo, or py-cpuinfo off Linux), a saved `detect --save` JSON, the JSON
the capture script prints on another machine (`python3 capture.py > hosts/web-1.json`), or a raw
cpuinfo text copied from one (`cat /proc/cpuinfo > hosts/web-1.cpuinfo`: runtime unknown).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import platform
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from tfforge.errors import ConfigError
from tfforge.files import expand, parse_json, read_user_text, write_json_atomic
from tfforge.host import isa
from tfforge.host import runtime as host_runtime
from tfforge.text import clip, plain

logger = logging.getLogger(__name__)

SCHEMA = "tfforge-host/1"
X86 = "x86_64"
MAX_COUNT = 1 << 20  # cores or CPUs a snapshot may claim
MAX_TEXT = 256  # characters of a name, vendor or model a snapshot may hold
MAX_FLAGS = 4096
T = TypeVar("T")


@dataclass(frozen=True)
class HostProfile:
    """What one machine offers. `features` are canonical names (tfforge.isa)."""

    name: str
    vendor: str
    model_name: str
    arch: str
    flags_raw: tuple[str, ...]
    physical_cores: int | None
    logical_cpus: int | None
    source: str
    runtime: host_runtime.Runtime | None = None  # None: unknown (raw cpuinfo, older snapshot)

    @property
    def features(self) -> frozenset[str]:
        return isa.normalize(self.flags_raw)

    @property
    def is_x86(self) -> bool:
        return self.arch == X86

    def to_dict(self) -> dict[str, object]:
        """The snapshot document `detect --save` writes and load_host reads."""
        return {
            "schema": SCHEMA,
            "name": self.name,
            "vendor": self.vendor,
            "model_name": self.model_name,
            "arch": self.arch,
            "flags": list(self.flags_raw),
            "physical_cores": self.physical_cores,
            "logical_cpus": self.logical_cpus,
            "features": sorted(self.features, key=isa.sort_key),
            **({"runtime": self.runtime.to_dict()} if self.runtime else {}),
        }


def _blocks(text: str) -> list[dict[str, str]]:
    """Processor blocks of a cpuinfo text as key -> value dicts (blank lines separate)."""
    blocks: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            if cur:
                blocks.append(cur)
                cur = {}
            continue
        cur[key.strip()] = value.strip()
    if cur:
        blocks.append(cur)
    return [b for b in blocks if "processor" in b or "flags" in b or "Features" in b]


def common_flags(blocks: list[dict[str, str]], source: str) -> list[str]:
    """The flags every processor entry has. A thread may be scheduled on any of them, so a
    feature only some have cannot be relied on; they are named in a warning."""
    sets = [frozenset(b.get("flags", "").split()) for b in blocks]
    common = frozenset.intersection(*sets)
    partial = sorted(frozenset.union(*sets) - common)
    if partial:
        logger.warning(
            f"{plain(clip(source))}: processor entries differ; using the flags all "
            f"{len(sets)} have (not everywhere: {clip(', '.join(partial))})"
        )
    return sorted(common)


def parse_cpuinfo(text: str, *, name: str, source: str) -> HostProfile:
    """A HostProfile from /proc/cpuinfo text; ConfigError naming `source` when unusable."""
    blocks = _blocks(text)
    if not blocks:
        raise ConfigError(
            f"{source}: no processor entries; expected the text of /proc/cpuinfo "
            "(copy it with `cat /proc/cpuinfo > FILE`)"
        )
    first = blocks[0]
    if "flags" not in first and "Features" in first:
        features = first["Features"].split()
        model = first.get("model name") or f"CPU part {first.get('CPU part', '?')}"
        return HostProfile(
            name,
            first.get("CPU implementer", "unknown"),
            model,
            "aarch64",
            tuple(sorted(set(features))),
            None,
            len(blocks),
            source,
        )
    if "flags" not in first:
        raise ConfigError(
            f"{source}: no 'flags' line in the first processor entry; expected "
            "the full text of /proc/cpuinfo from an x86 Linux machine"
        )
    vendors = {b["vendor_id"] for b in blocks if "vendor_id" in b}
    if len(vendors) > 1:
        raise ConfigError(
            f"{source}: processor entries from several vendors "
            f"({clip(', '.join(sorted(str(v) for v in vendors)))}); one file must describe "
            "one machine"
        )
    flags = common_flags(blocks, source)
    if not flags:
        raise ConfigError(f"{source}: the 'flags' line is empty")
    cores = {(b.get("physical id"), b.get("core id")) for b in blocks}
    physical = len(cores) if all("core id" in b for b in blocks) else None
    return HostProfile(
        name,
        first.get("vendor_id", "unknown"),
        first.get("model name", "unknown"),
        X86,
        tuple(sorted(set(flags))),
        physical,
        len(blocks),
        source,
    )


def detect_host(name: str | None = None) -> HostProfile:
    """This machine: on Linux the kernel's /proc/cpuinfo, parsed like a saved copy (a few ms,
    the kernel's flag names); elsewhere py-cpuinfo's public get_cpu_info()."""
    name = name or socket.gethostname()
    if platform.system() == "Linux" and os.path.exists("/proc/cpuinfo"):
        try:
            here = parse_cpuinfo(Path("/proc/cpuinfo").read_text(), name=name, source="this host")
            return dataclasses.replace(
                here, logical_cpus=os.cpu_count(), runtime=host_runtime.detect()
            )
        except (OSError, ConfigError):
            pass  # an architecture whose cpuinfo has no flags line: ask py-cpuinfo
    import cpuinfo  # py-cpuinfo (~30 ms to import, ~1 s CPUID probe): only when needed

    arch = platform.machine().lower()
    arch = {"amd64": X86, "x64": X86, "arm64": "aarch64"}.get(arch, arch)
    info = cpuinfo.get_cpu_info()
    return HostProfile(
        name,
        info.get("vendor_id_raw", "unknown"),
        info.get("brand_raw", "unknown"),
        arch,
        tuple(sorted(set(info.get("flags") or []))),
        None,
        os.cpu_count(),
        "this host",
        host_runtime.detect() if platform.system() == "Linux" else None,
    )


def _field(
    doc: dict[str, object], key: str, kind: type[T], default: T | None, source: str
) -> T | None:
    """doc[key] when it is a `kind` (never a bool for a number) within its bounds (a count
    0..MAX_COUNT, a text of at most MAX_TEXT characters); `default` when absent (or null, when
    the default is None); else ConfigError."""
    if key not in doc:
        return default
    value = doc[key]
    if isinstance(value, kind) and not isinstance(value, bool):
        if isinstance(value, int) and not 0 <= value <= MAX_COUNT:
            raise ConfigError(
                f'{source}: "{key}" = {clip(str(value), 40)} is out of range 0-{MAX_COUNT}; '
                "re-save it with `invoke detect --save`"
            )
        if isinstance(value, str) and len(value) > MAX_TEXT:
            raise ConfigError(
                f'{source}: "{key}" has {len(value)} characters, over {MAX_TEXT}; '
                "re-save it with `invoke detect --save`"
            )
        return value
    if value is None and default is None:
        return None
    want = "text" if kind is str else "a whole number"
    raise ConfigError(
        f'{source}: "{key}" must be {want}, not {clip(plain(repr(value)), 40)}; '
        "re-save it with `invoke detect --save`"
    )


def _from_capture(doc: dict[str, object], source: str, default_name: str) -> HostProfile:
    """A host from the capture script's document: its raw cpuinfo parsed here, its runtime."""
    text, name = doc.get("cpuinfo"), doc.get("name")
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(
            f'{source}: the capture has no "cpuinfo" text (was /proc/cpuinfo readable there?); '
            "run the capture script again on that host"
        )
    if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > 256):
        raise ConfigError(f'{source}: "name" must be the host name the capture wrote')
    host = parse_cpuinfo(text, name=(name or default_name).strip(), source=source)
    return dataclasses.replace(host, runtime=host_runtime.from_dict(doc.get("runtime"), source))


def _from_json(doc: object, source: str, default_name: str) -> HostProfile:
    if isinstance(doc, dict) and doc.get("schema") == host_runtime.CAPTURE_SCHEMA:
        return _from_capture(doc, source, default_name)
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ConfigError(
            f'{source}: not a tfforge host snapshot (expected "schema": '
            f'"{SCHEMA}" or "{host_runtime.CAPTURE_SCHEMA}"; make one with `invoke detect '
            "--save FILE` or the script `invoke detect --capture-script` prints)"
        )
    flags = doc.get("flags")
    if (
        not isinstance(flags, list)
        or len(flags) > MAX_FLAGS
        or not all(isinstance(f, str) and 0 < len(f) <= 64 for f in flags)
    ):
        raise ConfigError(
            f'{source}: "flags" must be a list of at most {MAX_FLAGS} /proc/cpuinfo flag names'
        )
    arch = _field(doc, "arch", str, X86, source) or ""
    if arch == X86 and not flags:
        raise ConfigError(f'{source}: "flags" is empty; re-save it with `invoke detect --save`')
    features = doc.get("features", [])
    if (
        not isinstance(features, list)
        or len(features) > MAX_FLAGS
        or not all(isinstance(f, str) and len(f) <= 64 for f in features)
    ):
        raise ConfigError(f'{source}: "features" must be a list of feature names')
    if arch == X86:
        unknown_feats = [f for f in features if isa.lookup(f) is None]
        if unknown_feats:
            isa.canonical(unknown_feats[0], source=source)  # raises, listing the valid names
    text = {k: _field(doc, k, str, None, source) for k in ("name", "vendor", "model_name")}
    counts = {k: _field(doc, k, int, None, source) for k in ("physical_cores", "logical_cpus")}
    return HostProfile(
        text["name"] or default_name,
        text["vendor"] or "unknown",
        text["model_name"] or "unknown",
        arch,
        tuple(sorted(set(flags))),
        counts["physical_cores"],
        counts["logical_cpus"],
        source,
        host_runtime.from_dict(doc["runtime"], source) if doc.get("runtime") is not None else None,
    )


def load_host(path: str | Path) -> HostProfile:
    """A snapshot (`detect --save` JSON) or a raw /proc/cpuinfo text, by content."""
    path = Path(path)
    text = read_user_text(
        path,
        missing=f"no such file; save one with `invoke detect --save "
        f"{path}` or `cat /proc/cpuinfo > FILE` on that machine",
    )
    if not text.strip():
        raise ConfigError(
            f"{path}: the file is empty; save a snapshot with "
            "`invoke detect --save FILE` or `cat /proc/cpuinfo > FILE`"
        )
    default_name = path.name.split(".")[0]
    if text.lstrip().startswith("{"):
        try:
            doc = parse_json(text, path)
        except ConfigError as exc:
            raise ConfigError(f"{exc}; re-save it with `invoke detect --save`") from None
        return _from_json(doc, str(path), default_name)
    return parse_cpuinfo(text, name=default_name, source=str(path))


def host_files(items: str | list[str], *, option: str = "hosts") -> list[Path]:
    """Snapshot paths from files, folders (their *.json and *.cpuinfo), globs or comma lists."""
    paths: list[Path] = []
    for item in [items] if isinstance(items, str) else items:
        for part in filter(None, (p.strip() for p in item.split(","))):
            p = Path(part).expanduser()
            if p.is_dir():
                found = sorted(
                    q for q in p.iterdir() if q.suffix in (".json", ".cpuinfo") and q.is_file()
                )
                if not found:
                    raise ConfigError(
                        f"{option} {p}: the folder has no .json or .cpuinfo "
                        "snapshots; add them with `invoke detect --save` or "
                        "`cat /proc/cpuinfo > FILE.cpuinfo`"
                    )
                paths.extend(found)
            else:
                found = expand(part)
                if not found:
                    raise ConfigError(f"{option} {part}: the pattern matches no files")
                paths.extend(found)
    if not paths:
        raise ConfigError(
            f"{option}: no hosts given; pass a folder, glob or comma-separated "
            "list of snapshot files, e.g. hosts/"
        )
    return paths


def load_hosts(items: str | list[str], *, option: str = "hosts") -> list[HostProfile]:
    """Every host named by files, folders, globs or comma lists (see host_files)."""
    return [load_host(p) for p in host_files(items, option=option)]


def save_host(host: HostProfile, path: str | Path) -> Path:
    """Write a snapshot atomically; the parent folder is created."""
    path = Path(path)
    if path.suffix != ".json":
        raise ConfigError(f"--save {path}: snapshots are JSON; use a name ending in .json")
    return write_json_atomic(path, host.to_dict())
