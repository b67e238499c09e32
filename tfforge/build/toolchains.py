"""Toolchain pins per TensorFlow version, read from ``data/toolchains.toml``.

The data file is validated when it loads; an unknown TensorFlow version is an error that lists
the known ones. Nothing here guesses.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeAlias

from packaging.version import InvalidVersion, Version

from tfforge import resources
from tfforge.errors import ConfigError

DATA_FILE = "tfforge/data/toolchains.toml"
Table: TypeAlias = dict[str, Any]  # a TOML table of the data file, checked field by field here
WHEEL_NAMINGS = ("repo_env", "cpu_flag")
PYTHON_ENVS = ("TF_PYTHON_VERSION", "HERMETIC_PYTHON_VERSION")
CC_TOOLCHAINS = ("local", "hermetic-clang")
WHEEL_TYPES = ("", "release")
# Strongest first: what the release's own official wheels show (release_evidence.toml), what a
# file of the release says, what the nearest master snapshot says, what others report.
EVIDENCE_LEVELS = ("release-artifact", "release-file", "nearby-master", "secondary")
# The facts that decide a build; each needs an [tensorflow."X".evidence] entry.
DECIDING = (
    "official_compiler",
    "pythons",
    "glibc",
    "git_commit",
    "bazel",
    "wheel_target",
    "python_env",
    "wheel_type",
    "cc_toolchain",
    "gcc",
    "clang",
    "clang_args",
    "packages",
)

# The facts a release's official wheels can show (release_evidence.toml); only they may carry
# release-artifact evidence.
ARTIFACT_FACTS = ("official_compiler", "pythons", "glibc", "git_commit", "clang", "cc_toolchain")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_VERSION = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+$")
PY_VERSION = re.compile(r"^3\.[0-9]{1,2}$")
_TAG = re.compile(r"^v[0-9]+\.[0-9]+\.[0-9]+$")
_PKG = re.compile(r"^[a-z0-9][a-z0-9+.-]*$")
_URL = re.compile(r"^https://[A-Za-z0-9.-]+(/[A-Za-z0-9._~%/-]*)?$")
_LABEL = re.compile(r"^//[a-z0-9_/]+:[a-z0-9_]+$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_FLAG = re.compile(r"^--[a-z_]+=[A-Za-z0-9_.,=-]+$")
_GLIBC = re.compile(r"^2\.[0-9]{1,2}$")
_MAJOR = re.compile(r"^[0-9]{1,2}$")


@dataclass(frozen=True)
class Evidence:
    """Where one fact of a recipe comes from."""

    level: str  # one of EVIDENCE_LEVELS
    source: str  # the wheel, file or public recipe it was read in

    @property
    def strength(self) -> int:
        """0 for the strongest level (release-artifact), higher for weaker ones."""
        return EVIDENCE_LEVELS.index(self.level)

    def as_dict(self) -> dict[str, Any]:
        return {"level": self.level, "source": self.source}


@dataclass(frozen=True)
class Toolchain:
    """The recipe of one TensorFlow release: what its own build files need (see the data file)."""

    tf_version: str
    bazel: str
    bazel_sha256: str
    official_compiler: str
    official_compiler_version: str
    pythons: tuple[str, ...]
    glibc: str  # the glibc the release's official wheels are built for (their manylinux tag)
    wheel_target: str  # Bazel label
    wheel_naming: str  # 'repo_env' or 'cpu_flag'
    python_env: tuple[str, ...]  # --repo_env variables picking the hermetic Python
    wheel_type: str  # 'release' or '' (no ML_WHEEL_TYPE switch)
    pywrap_rules: bool
    cc_toolchain: str  # 'local' or 'hermetic-clang'
    local_cc_config: str  # config turning the hermetic toolchain off ('' = none)
    gcc: tuple[int, int]  # supported GCC majors, inclusive
    gcc_default: int
    gcc_args: dict[str, tuple[str, ...]]
    clang: tuple[int, int]
    clang_args: tuple[str, ...]  # compiler/linker flags the release's own CI passes with clang
    packages: tuple[str, ...]  # apt packages the packaging step calls
    evidence: dict[str, Evidence]
    git_tag: str
    git_commit: str

    @property
    def wheel_package(self) -> str:
        """'tensorflow/tools/pip_package/v2' for '//tensorflow/tools/pip_package/v2:wheel'."""
        return self.wheel_target[2:].split(":")[0]

    @property
    def secondary_only(self) -> bool:
        """True when every fact the official wheels cannot show (the build files' facts) rests
        on secondary sources: none was read in a file of the release or a nearby master."""
        return all(e.level in ("secondary", "release-artifact") for e in self.evidence.values())

    @property
    def official_clang_major(self) -> int | None:
        if self.official_compiler != "clang":
            return None
        return int(self.official_compiler_version.split(".")[0])

    def as_dict(self) -> dict[str, Any]:
        return {
            "tf_version": self.tf_version,
            "bazel": self.bazel,
            "bazel_sha256": self.bazel_sha256,
            "official_compiler": self.official_compiler,
            "official_compiler_version": self.official_compiler_version,
            "pythons": list(self.pythons),
            "glibc": self.glibc,
            "wheel_target": self.wheel_target,
            "wheel_naming": self.wheel_naming,
            "python_env": list(self.python_env),
            "wheel_type": self.wheel_type,
            "pywrap_rules": self.pywrap_rules,
            "cc_toolchain": self.cc_toolchain,
            "local_cc_config": self.local_cc_config,
            "gcc": list(self.gcc),
            "clang": list(self.clang),
            "clang_args": list(self.clang_args),
            "packages": list(self.packages),
            "git_tag": self.git_tag,
            "git_commit": self.git_commit,
            "evidence": {k: e.as_dict() for k, e in self.evidence.items()},
        }


@dataclass(frozen=True)
class BaseImage:
    """A base image for one compiler need: the public ref and the offline-made local one."""

    name: str
    ref: str
    ref_source: str
    local: str
    suite: str
    gcc: dict[str, str]  # major -> version of the suite's gcc-N
    clang: dict[str, str]  # major -> upstream version of the suite's clang-N

    def ships(self, compiler: str, major: int) -> bool:
        return str(major) in (self.gcc if compiler == "gcc" else self.clang)


@dataclass(frozen=True)
class Bazelisk:
    version: str
    url: str
    sha256: str


@dataclass(frozen=True)
class ImagePins:
    user: str
    uid: int
    apt: tuple[str, ...]
    apt_build_pip_package: tuple[str, ...]
    apt_bazelisk: tuple[str, ...]


@dataclass(frozen=True)
class Pins:
    git_url: str
    bazelisk: Bazelisk
    debian_bazel_package: str
    debian_bazel_version: str
    image: ImagePins
    configure_answers: tuple[tuple[str, str], ...]
    configure_unset: dict[str, str]
    base_images: dict[str, BaseImage]
    toolchains: dict[str, Toolchain]


def _bad(where: str, what: str) -> ValueError:
    # A broken data file is a bug in the checkout, not bad user input: ValueError, not ConfigError.
    return ValueError(f"{DATA_FILE}: {where}: {what}")


def _str(table: Table, key: str, where: str, pattern: re.Pattern[str] | None = None) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise _bad(where, f"{key!r} must be a non-empty string")
    if pattern is not None and not pattern.fullmatch(value):
        raise _bad(where, f"{key}={value!r} does not match {pattern.pattern}")
    return value


def _strs(table: Table, key: str, where: str, pattern: re.Pattern[str]) -> tuple[str, ...]:
    value = table.get(key)
    if not isinstance(value, list) or not all(
        isinstance(v, str) and pattern.fullmatch(v) for v in value
    ):
        raise _bad(where, f"{key!r} must be a list of strings matching {pattern.pattern}")
    return tuple(value)


def _choice(table: Table, key: str, where: str, allowed: tuple[str, ...]) -> str:
    value = table.get(key)
    if not isinstance(value, str) or value not in allowed:
        raise _bad(where, f"{key} must be one of {', '.join(map(repr, allowed))}")
    return value


def _range(table: Table, key: str, where: str) -> tuple[int, int]:
    value = table.get(key)
    if not (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) for v in value)
        and 0 < value[0] <= value[1]
    ):
        raise _bad(where, f"{key} must be [lowest, highest] major versions")
    return value[0], value[1]


def _majors(row: Table, key: str, where: str) -> dict[str, str]:
    value = row.get(key)
    if not isinstance(value, dict) or not all(
        _MAJOR.fullmatch(k)
        and isinstance(v, str)
        and _VERSION.fullmatch(v)
        and v.startswith(k + ".")
        for k, v in value.items()
    ):
        raise _bad(where, f'{key} must map majors to versions ({{ "12" = "12.2.0" }})')
    return dict(value)


def _base_image(name: str, row: Table) -> BaseImage:
    where = f"[base_images.{name}]"
    ref = _str(row, "ref", where)
    if "@sha256:" not in ref:
        raise _bad(where, f"ref {ref!r} must be pinned by digest")
    return BaseImage(
        name,
        ref,
        _str(row, "ref_source", where),
        _str(row, "local", where),
        _str(row, "suite", where, _NAME),
        _majors(row, "gcc", where),
        _majors(row, "clang", where),
    )


def _recipe(ver: str, row: Table, bazel_sha: dict[str, str]) -> Toolchain:
    where = f"[tensorflow.{ver!r}]"
    if not _VERSION.fullmatch(ver):
        raise _bad(where, "TensorFlow versions are written X.Y.Z")
    bazel = _str(row, "bazel", where, _VERSION)
    if bazel not in bazel_sha:
        raise _bad(where, f"Bazel {bazel} has no sha256 in [bazel.sha256]")
    tag = _str(row, "git_tag", where, _TAG)
    if tag != f"v{ver}":
        raise _bad(where, f"git_tag {tag!r} does not name version {ver}")
    python_env = _strs(row, "python_env", where, re.compile(r"^[A-Z_]+$"))
    if not python_env or not set(python_env) <= set(PYTHON_ENVS):
        raise _bad(where, f"python_env must name some of {', '.join(PYTHON_ENVS)}")
    cc = _choice(row, "cc_toolchain", where, CC_TOOLCHAINS)
    local_cc = row.get("local_cc_config", "")
    if (
        not isinstance(local_cc, str)
        or (local_cc and not _NAME.fullmatch(local_cc))
        or (cc == "hermetic-clang") != bool(local_cc)
    ):
        raise _bad(
            where,
            "local_cc_config names the config turning a hermetic-clang toolchain "
            "off, and is empty for a local one",
        )
    gcc, clang = _range(row, "gcc", where), _range(row, "clang", where)
    gcc_default = row.get("gcc_default")
    if not isinstance(gcc_default, int) or not gcc[0] <= gcc_default <= gcc[1]:
        raise _bad(where, "gcc_default must be a major version inside gcc")
    gcc_args = row.get("gcc_args", {})
    if not isinstance(gcc_args, dict) or not all(
        _MAJOR.fullmatch(k)
        and isinstance(v, list)
        and all(isinstance(f, str) and _FLAG.fullmatch(f) for f in v)
        for k, v in gcc_args.items()
    ):
        raise _bad(where, "gcc_args must map GCC majors to lists of --name=value flags")
    clang_args = _strs(row, "clang_args", where, _FLAG)
    if not all(a.startswith(("--copt=", "--linkopt=")) for a in clang_args):
        raise _bad(where, "clang_args holds --copt=... and --linkopt=... flags only")
    official = _str(row, "official_compiler", where)
    official_version = _str(row, "official_compiler_version", where, _VERSION)
    if official == "clang" and not clang[0] <= int(official_version.split(".")[0]) <= clang[1]:
        raise _bad(where, f"clang must include the official clang {official_version}'s major")
    pywrap = row.get("pywrap_rules")
    if not isinstance(pywrap, bool):
        raise _bad(where, "pywrap_rules must be true or false")
    ev = row.get("evidence", {})
    evidence = {}
    for fact in DECIDING:
        e = ev.get(fact)
        if (
            not isinstance(e, dict)
            or e.get("level") not in EVIDENCE_LEVELS
            or not isinstance(e.get("source"), str)
            or not e["source"]
        ):
            raise _bad(
                where,
                f"evidence.{fact} needs level (one of {', '.join(EVIDENCE_LEVELS)}) and source",
            )
        if e["level"] == "release-artifact" and fact not in ARTIFACT_FACTS:
            raise _bad(where, f"evidence.{fact}: the official wheels cannot show it")
        evidence[fact] = Evidence(e["level"], e["source"])
    return Toolchain(
        ver,
        bazel,
        bazel_sha[bazel],
        official,
        official_version,
        _strs(row, "pythons", where, PY_VERSION),
        _str(row, "glibc", where, _GLIBC),
        _str(row, "wheel_target", where, _LABEL),
        _choice(row, "wheel_naming", where, WHEEL_NAMINGS),
        python_env,
        _choice(row, "wheel_type", where, WHEEL_TYPES),
        pywrap,
        cc,
        local_cc,
        gcc,
        gcc_default,
        {k: tuple(v) for k, v in gcc_args.items()},
        clang,
        clang_args,
        _strs(row, "packages", where, _PKG),
        evidence,
        tag,
        _str(row, "git_commit", where, _COMMIT),
    )


def parse(raw: Table) -> Pins:
    """Validated pins from the parsed TOML document."""
    if raw.get("schema") != 1:
        raise _bad("top", "schema must be 1")
    bazel_sha = raw.get("bazel", {}).get("sha256", {})
    for ver, sha in bazel_sha.items():
        if not _VERSION.fullmatch(ver) or not isinstance(sha, str) or not _SHA256.fullmatch(sha):
            raise _bad("[bazel.sha256]", f"{ver!r} needs a version key and a 64-hex sha256")
    bz = raw.get("bazelisk", {})
    bazelisk = Bazelisk(
        _str(bz, "version", "[bazelisk]", _VERSION),
        _str(bz, "url", "[bazelisk]", _URL),
        _str(bz, "sha256", "[bazelisk]", _SHA256),
    )
    img = raw.get("image", {})
    uid = img.get("uid")
    if not isinstance(uid, int) or not 1000 <= uid < 65534:
        raise _bad("[image]", "uid must be an integer in 1000..65533")
    image = ImagePins(
        _str(img, "user", "[image]", re.compile(r"^[a-z][a-z0-9_-]{0,30}$")),
        uid,
        _strs(img, "apt", "[image]", _PKG),
        _strs(img, "apt_build_pip_package", "[image]", _PKG),
        _strs(img, "apt_bazelisk", "[image]", _PKG),
    )
    deb = raw.get("debian_bazel", {})
    bases = {name: _base_image(name, row) for name, row in raw.get("base_images", {}).items()}
    if not bases:
        raise _bad("top", "no [base_images.NAME] tables")
    conf = raw.get("configure", {})
    answers, unset = conf.get("answers", {}), conf.get("unset", {})
    env_name = re.compile(r"^[A-Z][A-Z0-9_]*$")
    if not all(
        env_name.fullmatch(k) and isinstance(v, str) and _MAJOR.fullmatch(v)
        for k, v in answers.items()
    ) or not all(env_name.fullmatch(k) and isinstance(v, str) and v for k, v in unset.items()):
        raise _bad("[configure]", "answers map NAME to a number; unset maps NAME to a reason")
    toolchains: dict[str, Toolchain] = {}
    for ver, row in raw.get("tensorflow", {}).items():
        toolchains[ver] = _recipe(ver, row, bazel_sha)
    if not toolchains:
        raise _bad("top", 'no [tensorflow."X.Y.Z"] tables')
    return Pins(
        _str(raw.get("source", {}), "git_url", "[source]", _URL),
        bazelisk,
        _str(deb, "package", "[debian_bazel]", _PKG),
        _str(deb, "version", "[debian_bazel]", _VERSION),
        image,
        tuple(answers.items()),
        dict(unset),
        bases,
        dict(sorted(toolchains.items(), key=lambda kv: Version(kv[0]))),
    )


@cache
def pins() -> Pins:
    """The pins from the packaged data file (read and validated once)."""
    text = resources.read_text(resources.DATA, "toolchains.toml")
    return parse(tomllib.loads(text))


def known_versions() -> list[str]:
    return list(pins().toolchains)


def toolchain(tf_version: str) -> Toolchain:
    """The pins for a TensorFlow version; ConfigError listing the known ones otherwise."""
    found = pins().toolchains.get(tf_version)
    if found is not None:
        return found
    known = known_versions()
    # Suggest the pinned patch release of the same X.Y (2.16.0 -> 2.16.1), never a guess across
    # minor versions.
    same_minor = [v for v in known if v.rsplit(".", 1)[0] == tf_version.rsplit(".", 1)[0]]
    hint = f" (did you mean {same_minor[-1]}?)" if same_minor else ""
    shown = tf_version if len(tf_version) <= 40 else tf_version[:40] + "..."
    raise ConfigError(
        f"TensorFlow {shown!r} is not pinned{hint}; known: {', '.join(known)} "
        f"(add it to {DATA_FILE})"
    )


def base_image_for(compiler: str, major: int) -> BaseImage | None:
    """The first base image that ships that compiler major version, or None."""
    return next((b for b in pins().base_images.values() if b.ships(compiler, major)), None)


def image_named(ref: str) -> BaseImage | None:
    """The [base_images] entry whose public or local name is ref, or None."""
    return next((b for b in pins().base_images.values() if ref in (b.ref, b.local)), None)


def default_clang_version(tc: Toolchain) -> str:
    """The clang a release builds with when --clang-version is not given: its official major,
    at the version the first base image shipping it carries (the official version when none
    does)."""
    major = tc.official_clang_major or tc.clang[1]
    image = base_image_for("clang", major)
    if image is None:
        return tc.official_compiler_version
    return image.clang[str(major)]


def check_compiler(tc: Toolchain, compiler: str, major: int, asked: str) -> None:
    """ConfigError unless the release's recipe supports that compiler major version."""
    lo, hi = tc.gcc if compiler == "gcc" else tc.clang
    if lo <= major <= hi:
        return
    ev = tc.evidence[compiler]
    span = str(lo) if lo == hi else f"{lo} to {hi}"
    image = base_image_for(compiler, min(max(major, lo), hi))
    where = f" ({image.suite} ships it)" if image else ""
    raise ConfigError(
        f"{asked}: TensorFlow {tc.tf_version} builds with {compiler.upper()} "
        f"{span} only ({ev.level}: {ev.source}); pick "
        f"--{compiler}-version {min(max(major, lo), hi)}{where}"
    )


def check_python(tc: Toolchain, python_version: str) -> None:
    """ConfigError unless the TensorFlow release supports that Python."""
    if python_version in tc.pythons:
        return
    try:
        newest_ok = Version(python_version) > Version(tc.pythons[-1])
    except InvalidVersion:
        newest_ok = False
    pick = tc.pythons[-1] if newest_ok else tc.pythons[0]
    raise ConfigError(
        f"Python {python_version} is not supported by TensorFlow {tc.tf_version} "
        f"(supported: {', '.join(tc.pythons)}); pick --python-version {pick}"
    )
