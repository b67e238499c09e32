"""What an emulated run imports: a wheel's top-level modules (from `top_level.txt`, else from
the wheel's package folders and root modules), and which probe runs them: a project's own
(TensorFlow, numpy, onnxruntime), the wide corpus's workload, or the import alone.

The distribution name is not a module name (`polars-lts-cpu` installs `polars`,
`opencv-python-headless` installs `cv2`), so it is never imported as one.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from packaging.utils import canonicalize_name

from tfforge.errors import ConfigError
from tfforge.verify import probes
from tfforge.wheel import read as wheel

TOP_LEVEL_MAX = 64 << 10  # top_level.txt is a few names; a bigger one is not read
# Top-level names wheels ship that are not the project's module (tests, docs, tools).
NOT_MODULES = frozenset(
    {
        "test",
        "tests",
        "testing",
        "doc",
        "docs",
        "example",
        "examples",
        "benchmark",
        "benchmarks",
        "tools",
        "scripts",
    }
)
_EXT_MODULE = re.compile(r"^([A-Za-z_]\w*)\.(?:cpython-\d+[^.]*|abi3)?\.?so$|^([A-Za-z_]\w*)\.py$")


def top_level_modules(path: Path) -> tuple[str, ...]:
    """The wheel's importable top-level modules, sorted; private ones (`_x`) only when there
    is nothing else. ConfigError when the wheel has none."""
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            listed = [
                i
                for i in infos
                if PurePosixPath(i.filename).name == "top_level.txt"
                and len(PurePosixPath(i.filename).parts) == 2
                and i.filename.split("/")[0].endswith(".dist-info")
            ]
            members = [i.filename for i in infos]
            names: set[str] = set()
            if listed and listed[0].file_size <= TOP_LEVEL_MAX:
                text = z.read(listed[0]).decode("utf-8", "replace")
                names = {ln.strip().replace("/", ".") for ln in text.splitlines() if ln.strip()}
            # top_level.txt is the wheel's word: a name it does not ship (`json`, another
            # project's) would import something else, and one it leaves out would not be run
            shipped = _shipped_roots(members)
            names = {n for n in names if n.split(".")[0] in shipped} | _from_members(members)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"{path.name}: cannot read the wheel's members ({exc})") from None
    good = sorted(n for n in names if probes.valid_module(n) and n not in NOT_MODULES)
    public = [n for n in good if not n.startswith("_")]
    if not good:
        raise ConfigError(
            f"{path.name}: no importable top-level module (no top_level.txt, package folder "
            "or root module), so there is nothing to run under qemu"
        )
    return tuple(public or good)


def _install_parts(member: str) -> tuple[str, ...]:
    """A member's path as installed (.data/purelib and .data/platlib install at the root)."""
    parts = PurePosixPath(member).parts
    if len(parts) > 2 and parts[0].endswith(".data") and parts[1] in ("purelib", "platlib"):
        return parts[2:]
    return parts


def _shipped_roots(members: list[str]) -> set[str]:
    """Top-level names the wheel installs: folders (namespace packages too) and root modules."""
    roots = set()
    for member in members:
        parts = _install_parts(member)
        if not parts or parts[0].endswith((".dist-info", ".data")):
            continue
        if len(parts) > 1:
            roots.add(parts[0])
        elif m := _EXT_MODULE.match(parts[0]):
            roots.add(m[1] or m[2])
    return roots


def _from_members(members: list[str]) -> set[str]:
    names = set()
    for member in members:
        parts = _install_parts(member)
        if not parts or parts[0].endswith((".dist-info", ".data", ".libs")):
            continue
        if len(parts) == 2 and parts[1] in ("__init__.py", "__init__.pyc"):
            names.add(parts[0])
        elif len(parts) == 1 and (m := _EXT_MODULE.match(parts[0])):
            names.add(m[1] or m[2])
    return names


@dataclass(frozen=True)
class Probe:
    """What an emulated run executes: the script, what it runs, and whether it does more than
    import (a workload exercises the code an import leaves for later)."""

    script: str
    what: str
    workload: bool


def probe_for(path: Path, facts: wheel.WheelFacts) -> Probe:
    """The probe for an emulated run of this wheel: the project's own (TensorFlow, numpy,
    onnxruntime), the wide corpus's recorded workload, else an import of what the wheel ships."""
    from tfforge.verify import truth

    name = canonicalize_name(facts.name)
    corpus = {canonicalize_name(w.pin.split("==")[0]): w for w in truth.wide_corpus().wheels}
    special = probes.for_project(name)
    if special is not None:
        return Probe(special[0], special[1], workload=True)
    w = corpus.get(name)
    if w is not None and w.pin.split("==")[1] == str(facts.version):
        return Probe(w.probe, f"import {w.module} + the corpus workload", workload=True)
    mods = top_level_modules(path)
    return Probe(probes.import_probe(mods), f"import {', '.join(mods)}", workload=False)
