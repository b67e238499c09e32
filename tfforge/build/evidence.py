"""Release evidence: what each TensorFlow release's own official wheels show about its build.

`data/release_evidence.toml` is written by tools/release_evidence.py from the wheels on PyPI
(tfforge.wheel.official) and checked by it byte for byte. This module owns the file's one
text form (`to_toml`), reads it back validated (`parse`, `load`), and compares a recipe with
it (`disagreements`): the official compiler, Pythons, glibc baseline, clang major and commit
of a recipe must be what the release's wheels say, each with `release-artifact` evidence that
names the wheel. Pure functions; nothing here reads the network.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, fields
from functools import cache
from typing import Any

from tfforge import resources
from tfforge.build import toolchains

DATA_FILE = "tfforge/data/release_evidence.toml"
ARTIFACT = "release-artifact"
HEADER = """\
# Release evidence: what each TensorFlow release's own official wheels on PyPI show about how
# the release was built. Written by `python tools/release_evidence.py` (it downloads the wheels
# into the tfforge cache, checks them against the index's sha256 and reads their ELF members);
# `python tools/release_evidence.py --check` regenerates it byte for byte. Do not edit by hand.
#
# Per release: the project and index read; `pythons` and `glibc` from the index's Linux x86-64
# CPython wheels (their tags; `files` are those wheels with the sha256 PyPI serves); `wheel` is
# the one wheel read, named with its sha256, the source of every fact under it:
#   compiler*     the compiler its ELF members' .comment names (vendor '' = an unbranded
#                 build from LLVM's sources; origin 'distribution' = a vendor's package)
#   linker*       the linker .comment names (LLD writes one; GNU ld does not)
#   gcc_objects   GCC installations whose startup objects / libstdc++ were linked in
#   libstdcxx     highest GLIBCXX_ version needed; libstdcxx_gcc: the first GCC providing it
#   glibc_needed  highest GLIBC_ version needed
#   cxx11_abi     1 when the framework library uses libstdc++'s new (C++11) std::string ABI
#   git_version   TensorFlow's compiled-in GIT_VERSION (git describe of the built commit)
#   version, version_h, requires_*  METADATA and tensorflow/core/public/version.h ('' when
#                 the release passes its version as compiler flags instead)
#   comments      every distinct .comment line of its ELF members
"""

_SHA = re.compile(r"^[0-9a-f]{64}$")
_VER = re.compile(r"^\d+\.\d+(\.\d+)?$")
_PY = re.compile(r"^3\.\d{1,2}$")
_WHEEL = re.compile(r"^[A-Za-z0-9_.+-]+\.whl$")


@dataclass(frozen=True)
class WheelEvidence:
    """The facts read in one official wheel (see HEADER)."""

    name: str
    sha256: str
    compiler: str
    compiler_version: str
    compiler_vendor: str
    compiler_origin: str
    linker: str
    linker_version: str
    gcc_objects: tuple[str, ...]
    libstdcxx: str
    libstdcxx_gcc: str
    glibc_needed: str
    cxx11_abi: int
    git_version: str
    git_version_in: str
    version: str
    version_h: str
    requires_python: str
    requires_numpy: tuple[str, ...]
    generator: str
    elf_members: int
    comments: tuple[str, ...]

    @property
    def commit_prefix(self) -> str:
        """The abbreviated commit of GIT_VERSION ('4dacf3f368e' of v2.14.0-rc1-21-g4dacf3f368e)."""
        m = re.search(r"-g([0-9a-f]{7,40})$", self.git_version)
        return m[1] if m else ""

    @property
    def toolchain_text(self) -> str:
        """'Ubuntu clang 17.0.6 + LLD 17.0.6, linked with GCC 9.3.1 (GNU) objects'."""
        vendor = f"{self.compiler_vendor} " if self.compiler_vendor else "unbranded "
        text = f"{vendor}{self.compiler} {self.compiler_version}"
        text += f" + {self.linker.upper() if self.linker == 'lld' else self.linker}"
        text += f" {self.linker_version}"
        if self.gcc_objects:
            text += f", linked with GCC {self.gcc_objects[0]} objects"
        return text


@dataclass(frozen=True)
class ReleaseEvidence:
    version: str
    project: str
    index: str
    pythons: tuple[str, ...]
    glibc: str
    files: tuple[tuple[str, str], ...]  # (wheel file name, sha256)
    wheel: WheelEvidence

    @property
    def index_source(self) -> str:
        """Where pythons and glibc were read."""
        return f"PyPI's {self.project} {self.version} files ({len(self.files)} Linux x86-64 wheels)"

    @property
    def wheel_source(self) -> str:
        return f"{self.wheel.name} (sha256 {self.wheel.sha256[:16]})"


# ---- the one text form ---------------------------------------------------------------------------
def toml_string(text: str) -> str:
    """A TOML basic string for any text (quotes, backslashes and control characters escaped)."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _value(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, list, tuple)):
        raise TypeError(f"cannot write {value!r} into {DATA_FILE}")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return toml_string(value)
    if not value:
        return "[]"
    inline = "[" + ", ".join(_value(v) for v in value) + "]"
    if all(isinstance(v, str) for v in value) and len(inline) <= 72:
        return inline
    return "[\n" + "".join(f"    {_value(v)},\n" for v in value) + "]"


def to_toml(releases: dict[str, dict[str, Any]]) -> str:
    """The data file's text for releases (version -> the dict official.read_release returns).

    Keys are written in the dataclasses' order, releases in version order: the same facts give
    the same bytes."""
    lines = [HEADER, "schema = 1\n"]
    for version in sorted(releases, key=lambda v: tuple(int(p) for p in v.split("."))):
        doc = releases[version]
        lines.append(f"\n[release.{toml_string(version)}]\n")
        for f in fields(ReleaseEvidence):
            if f.name in ("version", "wheel", "files"):
                continue
            lines.append(f"{f.name} = {_value(doc[f.name])}\n")
        files = "".join(
            f"    {{ name = {toml_string(x['name'])}, sha256 = {toml_string(x['sha256'])} }},\n"
            for x in doc["files"]
        )
        lines.append(f"files = [\n{files}]\n")
        lines.append(f"\n[release.{toml_string(version)}.wheel]\n")
        for f in fields(WheelEvidence):
            lines.append(f"{f.name} = {_value(doc['wheel'][f.name])}\n")
    return "".join(lines)


# ---- reading it back -----------------------------------------------------------------------------
def _bad(where: str, what: str) -> ValueError:
    # A broken data file is a bug in the checkout, not bad user input.
    return ValueError(f"{DATA_FILE}: {where}: {what}")


def _check(where: str, key: str, value: object, kind: type) -> Any:
    if kind is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _bad(where, f"{key} must be a list of strings")
        return tuple(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _bad(where, f"{key} must be a {kind.__name__}")
    return value


def _wheel(where: str, raw: object) -> WheelEvidence:
    if not isinstance(raw, dict) or set(raw) != {f.name for f in fields(WheelEvidence)}:
        raise _bad(
            where, f"[wheel] needs exactly {', '.join(f.name for f in fields(WheelEvidence))}"
        )
    kinds = {"tuple[str, ...]": tuple, "int": int}
    values = {
        f.name: _check(where, f.name, raw[f.name], kinds.get(str(f.type), str))
        for f in fields(WheelEvidence)
    }
    w = WheelEvidence(**values)
    if not _WHEEL.fullmatch(w.name) or not _SHA.fullmatch(w.sha256):
        raise _bad(where, "wheel.name must be a wheel file name and sha256 64 hex digits")
    if w.compiler not in ("clang", "gcc") or not _VER.fullmatch(w.compiler_version):
        raise _bad(where, f"compiler {w.compiler!r} {w.compiler_version!r} is not clang/gcc X.Y.Z")
    return w


def parse(raw: dict[str, Any]) -> dict[str, ReleaseEvidence]:
    """Validated evidence by release version from the parsed TOML document."""
    if raw.get("schema") != 1 or not isinstance(raw.get("release"), dict):
        raise _bad("top", 'needs schema = 1 and [release."X.Y.Z"] tables')
    out = {}
    for version, row in raw["release"].items():
        where = f"[release.{version!r}]"
        if not re.fullmatch(r"\d+\.\d+\.\d+", version) or not isinstance(row, dict):
            raise _bad(where, "releases are written X.Y.Z")
        pythons = _check(where, "pythons", row.get("pythons"), tuple)
        files = row.get("files")
        if not pythons or not all(_PY.fullmatch(p) for p in pythons):
            raise _bad(where, "pythons must list versions such as 3.11")
        if not isinstance(files, list) or not all(
            isinstance(f, dict)
            and set(f) == {"name", "sha256"}
            and isinstance(f["name"], str)
            and _WHEEL.fullmatch(f["name"])
            and isinstance(f["sha256"], str)
            and _SHA.fullmatch(f["sha256"])
            for f in files
        ):
            raise _bad(where, "files must be { name = WHEEL, sha256 = HEX } tables")
        glibc = _check(where, "glibc", row.get("glibc"), str)
        if not _VER.fullmatch(glibc):
            raise _bad(where, f"glibc {glibc!r} must be X.Y")
        out[version] = ReleaseEvidence(
            version,
            _check(where, "project", row.get("project"), str),
            _check(where, "index", row.get("index"), str),
            pythons,
            glibc,
            tuple((f["name"], f["sha256"]) for f in files),
            _wheel(where, row.get("wheel")),
        )
    return out


@cache
def load() -> dict[str, ReleaseEvidence]:
    """The evidence of the packaged data file (read and validated once)."""
    return parse(tomllib.loads(resources.read_text(resources.DATA, "release_evidence.toml")))


def as_doc(ev: ReleaseEvidence) -> dict[str, Any]:
    """The dict to_toml writes for one release (to_toml(as_doc(...)) gives the file back)."""
    return {
        "project": ev.project,
        "index": ev.index,
        "pythons": list(ev.pythons),
        "glibc": ev.glibc,
        "files": [{"name": n, "sha256": s} for n, s in ev.files],
        "wheel": {
            f.name: (list(v) if isinstance(v := getattr(ev.wheel, f.name), tuple) else v)
            for f in fields(WheelEvidence)
        },
    }


# ---- the recipe against the evidence -------------------------------------------------------------
def disagreements(tc: toolchains.Toolchain, ev: ReleaseEvidence) -> list[str]:
    """Where the recipe of a release differs from what its official wheels show, one line each
    (empty: they agree, and each fact the wheels show carries release-artifact evidence that
    names the wheel or index read)."""
    w = ev.wheel
    out = []
    fix = f'fix [tensorflow."{tc.tf_version}"] in {toolchains.DATA_FILE}'

    def differs(fact: str, recipe: object, wheels: object, source: str) -> None:
        if recipe != wheels:
            out.append(f"{fact}: the recipe says {recipe}, {source} says {wheels}; {fix}")

    differs(
        "official compiler",
        f"{tc.official_compiler} {tc.official_compiler_version}",
        f"{w.compiler} {w.compiler_version}",
        ev.wheel_source,
    )
    differs("pythons", ", ".join(tc.pythons), ", ".join(ev.pythons), ev.index_source)
    differs("glibc baseline", tc.glibc, ev.glibc, ev.index_source)
    if w.compiler == "clang":
        major = int(w.compiler_version.split(".")[0])
        differs("clang majors", list(tc.clang), [major, major], ev.wheel_source)
    if not w.commit_prefix or not tc.git_commit.startswith(w.commit_prefix):
        out.append(
            f"git_commit {tc.git_commit[:12]} is not the commit {ev.wheel_source} was built "
            f"from (GIT_VERSION {w.git_version or 'not found'}); {fix}"
        )
    if w.version != tc.tf_version:
        out.append(f"{ev.wheel_source} is version {w.version}, not {tc.tf_version}")
    named = {
        "official_compiler": w.name,
        "clang": w.name,
        "git_commit": w.name,
        "pythons": ev.project,
        "glibc": ev.project,
    }
    for fact, name in named.items():
        e = tc.evidence.get(fact)
        if e is None or e.level != ARTIFACT or name not in e.source:
            out.append(
                f"evidence.{fact} must be {ARTIFACT} naming {name} (it is "
                f"{e.level + ': ' + e.source if e else 'missing'}); {fix}"
            )
    return out


# ---- the release's own route, and where tfforge's differs ----------------------------------------
def official_route(
    tc: toolchains.Toolchain,
    compiler: str,
    compiler_version: str,
    image: toolchains.BaseImage | None,
    floor: str | None = None,
) -> dict[str, Any]:
    """What the release's own build used (its wheels' evidence), what this build uses, and
    every way the two differ, in words render shows and build.json records. floor: what this
    build links against when it targets a runtime floor (tfforge.build.floor), in words."""
    ev = load().get(tc.tf_version)
    major = compiler_version.split(".")[0]
    suite = f"Debian {image.suite} " if image else "the base image's "
    if compiler == "clang":
        shipped = image.clang.get(major, "") if image else ""
        ours = f"{suite}clang-{major} {shipped or compiler_version} + lld-{major}"
    else:
        shipped = image.gcc.get(major, "") if image else ""
        ours = f"{suite}gcc-{major} {shipped or compiler_version} (Bazel's autoconfigured linker)"
    if ev is None:
        return {
            "official": f"{tc.official_compiler} {tc.official_compiler_version} (no wheel read)",
            "tfforge": ours,
            "exact": False,
            "differences": [f"no evidence of {tc.tf_version}'s wheels in {DATA_FILE}"],
        }
    w = ev.wheel
    official = (
        f"{w.toolchain_text}; glibc {ev.glibc} baseline, libstdc++ GLIBCXX_{w.libstdcxx} "
        f"({ev.wheel.name})"
    )
    diffs = []
    if compiler != w.compiler:
        diffs.append(
            f"the release was built with {w.compiler} {w.compiler_version}; this build uses "
            f"{compiler} (the release's {w.compiler} flags are not passed)"
        )
    elif (shipped or compiler_version) != w.compiler_version:
        diffs.append(
            f"{w.compiler} {shipped or compiler_version}, not the release's {w.compiler_version}"
            " (same major: the one a pinned Debian suite ships)"
        )
    if w.compiler_origin == "unbranded" and tc.cc_toolchain == "hermetic-clang":
        diffs.append(
            f"the release's hermetic LLVM {w.compiler_version} (downloaded by Bazel, with its "
            f"own glibc {ev.glibc} sysroot) is switched off with --config={tc.local_cc_config}:"
            " the image's compiler builds instead"
        )
    elif w.compiler_origin == "distribution" and compiler == w.compiler:
        diffs.append(
            f"a Debian build of {w.compiler}, not the release's {w.compiler_vendor} package"
        )
    if w.gcc_objects or ev.glibc:
        sysroot = (
            f"GCC {w.gcc_objects[0]} objects and a glibc {ev.glibc} sysroot"
            if w.gcc_objects
            else f"a glibc {ev.glibc} sysroot"
        )
        ours_linked = (
            f"{floor}, so its wheel needs that floor's or newer"
            if floor
            else "the image's own glibc and libstdc++, so its wheel needs that suite's or newer"
        )
        diffs.append(
            f"the release linked against {sysroot} (libstdc++ needs up to GLIBCXX_{w.libstdcxx});"
            f" this build links against {ours_linked}"
        )
    return {"official": official, "tfforge": ours, "exact": not diffs, "differences": diffs}


def clone_check_args(tc: toolchains.Toolchain) -> tuple[str, ...]:
    """What the clone check compares with the release's wheels: their version, the clang
    major they were built with, and the recipe's clang flags against the tree's release
    config."""
    ev = load().get(tc.tf_version)
    if ev is None:
        return ()
    args = ["--version", ev.wheel.version]
    if ev.wheel.compiler == "clang":
        args += ["--clang-major", ev.wheel.compiler_version.split(".")[0]]
    args += [f"--clang-arg={a}" for a in tc.clang_args]
    return tuple(args)
