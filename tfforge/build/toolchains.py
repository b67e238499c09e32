"""Toolchain pins per TensorFlow version, read from ``data/toolchains.toml``.

The data file is validated when it loads; an unknown TensorFlow version is an error that lists
the known ones. Nothing here guesses.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from tfforge import resources

from packaging.version import InvalidVersion, Version

from tfforge.errors import ConfigError

DATA_FILE = "tfforge/data/toolchains.toml"
WHEEL_TARGETS = ("wheel", "build_pip_package")
HERMETIC_ENVS = ("TF_PYTHON_VERSION", "HERMETIC_PYTHON_VERSION")

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_VERSION = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+$")
PY_VERSION = re.compile(r"^3\.[0-9]{1,2}$")
_TAG = re.compile(r"^v[0-9]+\.[0-9]+\.[0-9]+$")
_PKG = re.compile(r"^[a-z0-9][a-z0-9+.-]*$")
_URL = re.compile(r"^https://[A-Za-z0-9.-]+(/[A-Za-z0-9._~%/-]*)?$")


@dataclass(frozen=True)
class Toolchain:
    """What one TensorFlow release needs to build."""

    tf_version: str
    bazel: str
    bazel_sha256: str
    official_compiler: str
    official_compiler_version: str
    pythons: tuple[str, ...]
    wheel_target: str          # 'wheel' or 'build_pip_package'
    hermetic_python_env: str   # the --repo_env variable selecting the hermetic Python
    git_tag: str
    git_commit: str

    def as_dict(self) -> dict:
        return {"tf_version": self.tf_version, "bazel": self.bazel,
                "bazel_sha256": self.bazel_sha256, "official_compiler": self.official_compiler,
                "official_compiler_version": self.official_compiler_version,
                "pythons": list(self.pythons), "wheel_target": self.wheel_target,
                "hermetic_python_env": self.hermetic_python_env, "git_tag": self.git_tag,
                "git_commit": self.git_commit}


@dataclass(frozen=True)
class Bazelisk:
    version: str
    url: str
    sha256: str


@dataclass(frozen=True)
class ImagePins:
    default_base: str
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
    toolchains: dict[str, Toolchain]


def _bad(where: str, what: str) -> ValueError:
    # A broken data file is a bug in the checkout, not bad user input: ValueError, not ConfigError.
    return ValueError(f"{DATA_FILE}: {where}: {what}")


def _str(table: dict, key: str, where: str, pattern: re.Pattern | None = None) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise _bad(where, f"{key!r} must be a non-empty string")
    if pattern is not None and not pattern.fullmatch(value):
        raise _bad(where, f"{key}={value!r} does not match {pattern.pattern}")
    return value


def _strs(table: dict, key: str, where: str, pattern: re.Pattern) -> tuple[str, ...]:
    value = table.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) and pattern.fullmatch(v)
                                              for v in value):
        raise _bad(where, f"{key!r} must be a list of strings matching {pattern.pattern}")
    return tuple(value)


def parse(raw: dict) -> Pins:
    """Validated pins from the parsed TOML document."""
    if raw.get("schema") != 1:
        raise _bad("top", "schema must be 1")
    bazel_sha = raw.get("bazel", {}).get("sha256", {})
    for ver, sha in bazel_sha.items():
        if not _VERSION.fullmatch(ver) or not isinstance(sha, str) or not _SHA256.fullmatch(sha):
            raise _bad("[bazel.sha256]", f"{ver!r} needs a version key and a 64-hex sha256")
    bz = raw.get("bazelisk", {})
    bazelisk = Bazelisk(_str(bz, "version", "[bazelisk]", _VERSION),
                        _str(bz, "url", "[bazelisk]", _URL),
                        _str(bz, "sha256", "[bazelisk]", _SHA256))
    img = raw.get("image", {})
    uid = img.get("uid")
    if not isinstance(uid, int) or not 1000 <= uid < 65534:
        raise _bad("[image]", "uid must be an integer in 1000..65533")
    image = ImagePins(_str(img, "default_base", "[image]"),
                      _str(img, "user", "[image]", re.compile(r"^[a-z][a-z0-9_-]{0,30}$")), uid,
                      _strs(img, "apt", "[image]", _PKG),
                      _strs(img, "apt_build_pip_package", "[image]", _PKG),
                      _strs(img, "apt_bazelisk", "[image]", _PKG))
    deb = raw.get("debian_bazel", {})
    toolchains: dict[str, Toolchain] = {}
    for ver, row in raw.get("tensorflow", {}).items():
        where = f"[tensorflow.{ver!r}]"
        if not _VERSION.fullmatch(ver):
            raise _bad(where, "TensorFlow versions are written X.Y.Z")
        bazel = _str(row, "bazel", where, _VERSION)
        if bazel not in bazel_sha:
            raise _bad(where, f"Bazel {bazel} has no sha256 in [bazel.sha256]")
        wheel_target = _str(row, "wheel_target", where)
        if wheel_target not in WHEEL_TARGETS:
            raise _bad(where, f"wheel_target must be one of {', '.join(WHEEL_TARGETS)}")
        hermetic = _str(row, "hermetic_python_env", where)
        if hermetic not in HERMETIC_ENVS:
            raise _bad(where, f"hermetic_python_env must be one of {', '.join(HERMETIC_ENVS)}")
        tag = _str(row, "git_tag", where, _TAG)
        if tag != f"v{ver}":
            raise _bad(where, f"git_tag {tag!r} does not name version {ver}")
        toolchains[ver] = Toolchain(
            ver, bazel, bazel_sha[bazel], _str(row, "official_compiler", where),
            _str(row, "official_compiler_version", where, _VERSION),
            _strs(row, "pythons", where, PY_VERSION), wheel_target, hermetic, tag,
            _str(row, "git_commit", where, _COMMIT))
    if not toolchains:
        raise _bad("top", "no [tensorflow.\"X.Y.Z\"] tables")
    return Pins(_str(raw.get("source", {}), "git_url", "[source]", _URL), bazelisk,
                _str(deb, "package", "[debian_bazel]", _PKG),
                _str(deb, "version", "[debian_bazel]", _VERSION), image,
                dict(sorted(toolchains.items(), key=lambda kv: Version(kv[0]))))


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
    raise ConfigError(f"TensorFlow {shown!r} is not pinned{hint}; known: {', '.join(known)} "
                      f"(add it to {DATA_FILE})")


def check_python(tc: Toolchain, python_version: str) -> None:
    """ConfigError unless the TensorFlow release supports that Python."""
    if python_version in tc.pythons:
        return
    try:
        newest_ok = Version(python_version) > Version(tc.pythons[-1])
    except InvalidVersion:
        newest_ok = False
    pick = tc.pythons[-1] if newest_ok else tc.pythons[0]
    raise ConfigError(f"Python {python_version} is not supported by TensorFlow {tc.tf_version} "
                      f"(supported: {', '.join(tc.pythons)}); pick --python-version {pick}")
