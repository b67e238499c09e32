"""The per-wheel checks that need no CPU: structure, Python tag, manylinux tag vs glibc symbol
versions, provenance (tfforge.json) and the ISA claim of the local version label."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import archspec.cpu
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.version import InvalidVersion, Version

from tfforge.elfscan.results import LibraryScan
from tfforge.errors import ConfigError
from tfforge.host import isa
from tfforge.text import clip
from tfforge.wheel import read as wheel

# A check passes, fails (exit 1), is skipped, or is undecided (exit 3 when nothing failed).
PASS, FAIL, SKIP, UNDECIDED = "pass", "fail", "skip", "undecided"
# Legacy manylinux names and the glibc each promises (PEP 600 aliases).
LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
EXT_SUFFIX = re.compile(r"\.cpython-(\d)(\d+)[a-z]*-x86_64-linux-gnu\.so$")


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # pass | fail | skip
    summary: str
    details: tuple[str, ...] = ()


def structure_check(c: wheel.WheelCheck) -> Check:
    f = c.facts
    if c.problems:
        return Check(
            "structure", FAIL, f"{len(c.problems)} problem(s): {c.problems[0]}", c.problems
        )
    return Check(
        "structure",
        PASS,
        f"{f.members} members, RECORD sha256 and sizes match, WHEEL/METADATA agree "
        f"with the file name ({f.name} {f.version})",
    )


def python_check(facts: wheel.WheelFacts, python: str, members: Iterable[str]) -> Check:
    """Can the target interpreter install the wheel, and do extension suffixes agree?"""
    m = re.fullmatch(r"([0-9])\.([0-9]{1,3})", python.strip())
    if not m:
        raise ConfigError(f"--python {clip(python)!r}: give a version like 3.11")
    version = (int(m[1]), int(m[2]))
    platforms = sorted({t.platform for t in facts.tags})
    ok_tags = set(cpython_tags(version, platforms=platforms)) | set(
        compatible_tags(version, platforms=platforms)
    )
    details = []
    cp = {t.interpreter for t in facts.tags if t.interpreter.startswith("cp")}
    for member in members:
        s = EXT_SUFFIX.search(member)
        if s and cp and f"cp{s[1]}{s[2]}" not in cp:
            details.append(
                f"{member} is built for CPython {s[1]}.{s[2]}, the wheel is tagged "
                f"{', '.join(sorted(cp))}"
            )
    tags = ", ".join(sorted(str(t) for t in facts.tags))
    if not facts.tags & ok_tags:
        return Check(
            "python",
            FAIL,
            f"tags {tags} do not install on Python {python} "
            "(build for it, or verify with --python matching the wheel)",
            tuple(details),
        )
    if details:
        return Check(
            "python", FAIL, f"extension modules disagree with the tag: {details[0]}", tuple(details)
        )
    rp = f"; Requires-Python {facts.requires_python}" if facts.requires_python else ""
    return Check("python", PASS, f"{tags} installs on Python {python}{rp}")


def manylinux_glibc(tags: Iterable[Tag]) -> tuple[int, int] | None:
    """The glibc the wheel's manylinux tags promise (the lowest when several), or None."""
    promised = []
    for t in tags:
        m = re.fullmatch(r"manylinux_(\d+)_(\d+)_\w+", t.platform)
        if m:
            promised.append((int(m[1]), int(m[2])))
        for legacy, v in LEGACY_MANYLINUX.items():
            if t.platform.startswith(legacy + "_"):
                promised.append(v)
    return min(promised) if promised else None


def glibc_check(facts: wheel.WheelFacts, scans: list[LibraryScan]) -> Check:
    needs = [(tuple(map(int, s.glibc.split("."))), s.path) for s in scans if s.glibc]
    need, who = max(needs) if needs else ((0, 0), None)
    need_text = f"glibc {need[0]}.{need[1]} ({who})" if who else "no GLIBC symbol versions"
    promised = manylinux_glibc(facts.tags)
    if promised is None:
        plats = ", ".join(sorted({t.platform for t in facts.tags}))
        return Check(
            "manylinux",
            SKIP,
            f"platform {plats} makes no glibc promise; the libraries need {need_text}",
        )
    if need > promised:
        over = sorted(p for v, p in needs if v > promised)
        return Check(
            "manylinux",
            FAIL,
            f"tag promises glibc {promised[0]}.{promised[1]} but {need_text} is needed",
            tuple(f"{p} needs a newer glibc" for p in over),
        )
    return Check(
        "manylinux",
        PASS,
        f"tag promises glibc {promised[0]}.{promised[1]}; the libraries need at most {need_text}",
    )


def _label_tokens(label: str) -> list[str]:
    """Label tokens, re-joining what PEP 440 split ('avx512.vnni' -> 'avx512_vnni')."""
    parts, out, i = label.split("."), [], 0
    while i < len(parts):
        for k in (3, 2, 1):
            joined = "_".join(parts[i : i + k])
            if (
                k == 1
                or isa.lookup(joined)
                or isa.parse_level(joined)
                or joined in archspec.cpu.TARGETS
            ):
                out.append(joined)
                i += k
                break
    return out


def _characteristic(features: frozenset[str]) -> frozenset[str]:
    """The vector features a build for this target shows in ordinary code."""
    for tier in (("avx512f",), ("avx2", "fma"), ("avx",), ("sse4_2",)):
        if tier[0] in features:
            return frozenset(f for f in tier if f in features)
    return frozenset()


def claimed_features(label: str) -> tuple[frozenset[str], list[str]]:
    """(features the label claims, label words that are not ISA claims)."""
    claimed, other = set(), []
    for token in _label_tokens(label):
        feat = isa.lookup(token)
        level = isa.parse_level(token)
        if feat:
            claimed.add(feat)
        elif level:
            claimed |= _characteristic(isa.level_features(level))
        elif token in archspec.cpu.TARGETS and archspec.cpu.TARGETS[token].family.name == "x86_64":
            claimed |= _characteristic(isa.normalize(archspec.cpu.TARGETS[token].features))
        else:
            other.append(token)
    return frozenset(claimed), other


def claim_check(
    facts: wheel.WheelFacts,
    baseline: frozenset[str],
    scans: list[LibraryScan],
    claim: tuple[frozenset[str], list[str]],
) -> Check:
    """claim: claimed_features(facts.local_label), computed once by the caller."""
    label = facts.local_label
    if not label:
        return Check("claim", SKIP, "no local version label, so no ISA claim to check")
    claimed, other = claim
    if not claimed:
        return Check(
            "claim",
            SKIP,
            f"label +{label} names no ISA feature" + (f" ({', '.join(other)})" if other else ""),
        )
    missing = sorted(claimed - baseline, key=isa.sort_key)
    ordinary = {f: sum(e.ordinary for s in scans if (e := s.feature(f))) for f in claimed}
    shown = ", ".join(
        f"{f} in {ordinary[f]} ordinary functions" for f in sorted(claimed, key=isa.sort_key)
    )
    if missing:
        return Check(
            "claim",
            FAIL,
            f"label +{label} claims {', '.join(missing)} but no ordinary code uses "
            f"{'it' if len(missing) == 1 else 'them'} ({shown})",
        )
    return Check("claim", PASS, f"label +{label}: {shown}")


def provenance_check(facts: wheel.WheelFacts, claimed: frozenset[str]) -> Check:
    if facts.provenance_error:
        return Check("provenance", FAIL, facts.provenance_error)
    doc = facts.provenance
    if doc is None:
        return Check("provenance", SKIP, f"no .dist-info/{wheel.PROVENANCE}: not built by tfforge")
    problems = []
    raw_derived, raw_spec = doc.get("derived"), doc.get("spec")
    derived: dict[str, Any] = raw_derived if isinstance(raw_derived, dict) else {}
    spec: dict[str, Any] = raw_spec if isinstance(raw_spec, dict) else {}
    if not derived or not spec:
        problems.append(f"{wheel.PROVENANCE} lacks the 'spec'/'derived' build record")
    label = facts.local_label or ""
    recorded = str(derived.get("local_version", ""))
    if derived and recorded != label:
        problems.append(f"build record says local version {recorded!r}, the wheel has {label!r}")
    try:
        if derived.get("version") and Version(str(derived["version"])) != facts.version:
            problems.append(f"build record version {derived['version']} != wheel {facts.version}")
    except InvalidVersion:
        problems.append(f"build record version {derived['version']!r} is not PEP 440")
    if spec.get("tf_version") and spec["tf_version"] != facts.version.public:
        problems.append(
            f"built from TensorFlow {spec['tf_version']}, the wheel is {facts.version.public}"
        )
    py = str(spec.get("python_version", ""))
    if py and not any(t.interpreter == "cp" + py.replace(".", "") for t in facts.tags):
        problems.append(
            f"built for Python {py}, the wheel is tagged "
            f"{', '.join(sorted({t.interpreter for t in facts.tags}))}"
        )
    features, copts = derived.get("features", []), derived.get("copts", [])
    for key, value in (("features", features), ("copts", copts)):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.append(f"build record '{key}' is not a list of names: {value!r:.60}")
    if problems:
        return Check("provenance", FAIL, problems[0], tuple(problems))
    built_for = frozenset(isa.lookup(f) or f for f in features)
    if derived and claimed - built_for:
        problems.append(
            f"label claims {', '.join(sorted(claimed - built_for))} but the build "
            f"targeted only {', '.join(sorted(built_for, key=isa.sort_key))}"
        )
    if problems:
        return Check("provenance", FAIL, problems[0], tuple(problems))
    extra = f", build {doc.get('id')}" if doc.get("id") else ""
    copts = " ".join(copts) or "no extra flags"
    return Check(
        "provenance", PASS, f"tfforge build record matches +{label}{extra} (copts: {copts})"
    )


def built_for(facts: wheel.WheelFacts) -> frozenset[str]:
    """The features a tfforge wheel's build record says every file was compiled for (its
    target's features: the compiler may use them anywhere). Call it only when the provenance
    check passed."""
    doc = facts.provenance or {}
    derived = doc.get("derived") if isinstance(doc.get("derived"), dict) else {}
    names = derived.get("features", []) if isinstance(derived, dict) else []
    if not isinstance(names, list):
        return frozenset()
    return frozenset(f for n in names if isinstance(n, str) and (f := isa.lookup(n)))


def isa_note_check(scans: list[LibraryScan]) -> Check:
    """The x86 ISA-level note (GNU_PROPERTY_X86_ISA_1_NEEDED) each library carries, against
    its scanned baseline. glibc refuses to load a library whose note names a level the CPU
    lacks; a note naming a lower level than the code needs lets it load and trap later."""
    noted = [s for s in scans if s.isa_needed]
    if not noted:
        return Check(
            "isa-note",
            SKIP,
            f"none of {len(scans)} libraries records an x86 ISA "
            "level (.note.gnu.property): nothing stops a too-old CPU at load time",
        )
    problems, shown = [], []
    for s in noted:
        level = isa.parse_level(s.isa_needed or "") or 1
        levels = {f: isa.features()[f].level or 1 for f in s.baseline if f in isa.features()}
        beyond = sorted((f for f, lv in levels.items() if lv > level), key=isa.sort_key)
        needed = max(levels.values(), default=1)
        if beyond:
            problems.append(
                f"{s.path}: note says {s.isa_needed} but its code needs "
                f"{', '.join(beyond)} ({isa.level_name(needed)})"
            )
        shown.append(
            f"{PurePosixPath(s.path).name}: {s.isa_needed} (code needs {isa.level_name(needed)})"
        )
    unnoted = len(scans) - len(noted)
    rest = f"; {unnoted} librar(ies) without a note" if unnoted else ""
    if problems:
        return Check(
            "isa-note",
            FAIL,
            f"{len(problems)} note(s) name a lower level than the code needs: {problems[0]}",
            tuple(problems),
        )
    return Check(
        "isa-note",
        PASS,
        f"{len(noted)} librar(ies) record an ISA level that agrees with the scanned baseline{rest}",
        tuple(shown),
    )


def reproducible_check(facts: wheel.WheelFacts, sha256: str, builds_dir: Path | None) -> Check:
    """Whether the provenance holds inputs only and a rebuild of its id gave this very wheel."""
    from tfforge.docker.rebuild import status

    if not facts.provenance or builds_dir is None:
        return Check(
            "reproducible",
            SKIP,
            "no tfforge provenance" if not facts.provenance else "no builds/ folder given",
        )
    said = status(facts.provenance, sha256, builds_dir)
    state = {"identical": PASS if said["inputs_only"] else SKIP, "differs": FAIL}.get(
        said["rebuild"], SKIP
    )
    return Check("reproducible", state, said["summary"])
