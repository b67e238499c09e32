"""BuildSpec: the validated inputs of one wheel build and what follows from them.

`make(options)` turns merged options (tfforge.settings.load) into a frozen BuildSpec, or raises
ConfigError naming the bad input and the fix. Everything rendered into a Dockerfile passes a
charset check here, so no input can inject shell or Dockerfile syntax. The spec derives the
compiler flags, the configure environment, the bazel command, the PEP 440 local version label
and the build id (a hash of every input that decides the bytes). It never renders or runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from urllib.parse import urlsplit

import archspec
import archspec.cpu
from packaging.version import InvalidVersion, Version

from tfforge import __version__, resources
from tfforge.build import toolchains
from tfforge.errors import ConfigError
from tfforge.files import sha256_file
from tfforge.host import cpu, fleet, isa
from tfforge.text import is_loopback, without_credentials

SCHEMA = "tfforge-build/1"
# The Dockerfile template decides bytes too, so its digest is part of the build id.
COMPILERS = ("gcc", "clang")
PROVIDERS = ("bazelisk", "debian", "image")
WHEEL_NAME = "tensorflow_cpu"
MKL_MIN_GCC = "6.2"
MIN_EPOCH = 315532800  # 1980-01-01T00:00:00Z: the earliest time a zip entry can carry
# Paths inside the build image.
SRC_DIR = "/home/{user}/src"
BAZEL_CACHE = "/home/{user}/.cache/bazel"
# A rebuild from nothing (tfforge rebuild) gives Bazel this output root instead of BAZEL_CACHE.
FRESH_ROOT = "/tmp/tfforge-fresh"
FRESH_BUILD_ARGS = {"TFFORGE_FRESH": "1"}  # the template's switch for that
DIST = "/dist"
PYTHON_BIN = "/usr/bin/python3"
CLONE_CHECK = "/usr/local/share/tfforge/clone_check.py"  # where the image holds the checker
DOCKER_ENV = {"DOCKER_BUILDKIT": "1"}
EXPORT_STAGE = ".export"  # beside the build: the export stage's files land here

# Free-text inputs. Every value that reaches the Dockerfile matches one of these.
_GCC_VERSION = re.compile(r"^[0-9]{1,2}(\.[0-9]{1,2}){0,2}$")
_BAZEL_ARG = re.compile(r"^--[A-Za-z][A-Za-z0-9_]*(=[A-Za-z0-9_.,:/@%+=-]*)?$")
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = (
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]{1,5})?"
)
_IMAGE_REF = re.compile(
    rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)
_URL_HOST = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
_URL_PATH = re.compile(r"^[A-Za-z0-9._~/%-]*$")
SAFE_TOKEN = re.compile(r"^[A-Za-z0-9_.,:/@%+=*-]+$")
_CACHE_SCHEMES = ("http", "https", "grpc", "grpcs")
_SKIP_TOP = (".git", ".tf_configure.bazelrc")  # VCS data; configure's output (regenerated)
_SKIP_ANY = ("__pycache__",)


def _short(value: object, limit: int = 60) -> str:
    """repr() of a user value for an error line: one line, bounded length."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...'"


@dataclass(frozen=True)
class TargetChoice:
    """The CPU target a build is for, and how its compiler flags were decided."""

    kind: str  # 'archspec', 'psabi', 'features', 'host' or 'fleet'
    request: tuple[str, ...]  # what was asked: a name, feature names or host names
    name: str | None  # archspec name of the target (None for feature sets)
    features: frozenset[str]  # canonical features the build may use
    requested: frozenset[str]  # features asked for explicitly (feature sets)
    implied: frozenset[str]  # features added because requested ones imply them
    flags: tuple[str, ...]  # compiler flags for the target
    flags_from: str  # which path produced the flags
    hosts: tuple[tuple[str, str], ...] = ()  # (host name, sha256 of its snapshot)
    skipped: tuple[str, ...] = ()  # better shared targets the compiler refused

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "request": list(self.request),
            "name": self.name,
            "hosts": [{"name": n, "snapshot_sha256": s} for n, s in self.hosts],
            "skipped": list(self.skipped),
        }


@dataclass(frozen=True)
class SourceEntry:
    path: str  # relative, '/'-separated
    kind: str  # 'file' or 'link'
    mode: int  # 0o644 / 0o755 for files, 0 for links
    digest: str  # sha256 of the content (files) or of the link target (links)
    target: str = ""  # link target


@dataclass(frozen=True)
class Source:
    """Where the TensorFlow source comes from: the pinned git tag or a local directory."""

    kind: str  # 'git' or 'local'
    url: str | None = None
    tag: str | None = None
    commit: str | None = None
    path: Path | None = field(default=None, compare=False)  # not an input of the bytes
    tree_sha256: str | None = None
    entries: tuple[SourceEntry, ...] = field(default=(), compare=False, repr=False)

    def as_dict(self) -> dict:
        if self.kind == "git":
            return {"kind": "git", "url": self.url, "tag": self.tag, "commit": self.commit}
        return {"kind": "local", "tree_sha256": self.tree_sha256, "files": len(self.entries)}


@dataclass(frozen=True)
class BuildSpec:
    tf_version: str
    python_version: str
    toolchain: toolchains.Toolchain
    target: TargetChoice
    mkl: bool
    compiler: str
    gcc_version: str
    clang_version: str | None
    base_image: str
    base_image_pinned: bool
    base_image_choice: toolchains.BaseImage | None  # the [base_images] entry used, if any
    source: Source
    bazel_provider: str
    bazel_version: str
    bazel_args: tuple[str, ...]
    remote_cache: str | None
    source_date_epoch: int
    warnings: tuple[str, ...] = field(default=(), compare=False)
    remote_executor: str | None = None  # issue 13: rendered, untested here

    # ---- remote cache / execution (issue 13) ---------------------------------------------
    @property
    def remote_flags(self) -> tuple[str, ...]:
        """Bazel's remote flags; the RUN step drops them when the endpoint is unreachable."""
        flags = []
        if self.remote_cache:
            flags.append(f"--remote_cache={self.remote_cache}")
        if self.remote_executor:
            flags += [f"--remote_executor={self.remote_executor}", "--remote_local_fallback"]
        return tuple(flags)

    @property
    def remote_endpoint(self) -> tuple[str, int] | None:
        """(host, port) the build must reach for its remote flags (executor first)."""
        url = self.remote_executor or self.remote_cache
        if not url:
            return None
        parts = urlsplit(url)
        default = {"http": 80, "https": 443, "grpc": 80, "grpcs": 443}[parts.scheme]
        return parts.hostname or "", parts.port or default

    @property
    def docker_network(self) -> str | None:
        """'host' when the remote endpoint is this machine's loopback: a BuildKit RUN step has
        its own network namespace, where 127.0.0.1 is the step itself."""
        end = self.remote_endpoint
        return "host" if end and is_loopback(end[0]) else None

    # ---- derived ---------------------------------------------------------------------
    @property
    def user(self) -> str:
        return toolchains.pins().image.user

    @property
    def src_dir(self) -> str:
        return SRC_DIR.format(user=self.user)

    @property
    def bazel_cache(self) -> str:
        return BAZEL_CACHE.format(user=self.user)

    @property
    def copts(self) -> tuple[str, ...]:
        """The target's compiler flags, each passed as --copt (and by configure as well)."""
        return self.target.flags

    @property
    def cc_opt_flags(self) -> str:
        # configure turns each word into `build:opt --copt=W` and `build:opt --host_copt=W`;
        # -Wno-sign-compare is configure's own default, kept so GCC output stays readable.
        return " ".join((*self.copts, "-Wno-sign-compare"))

    @cached_property
    def local_label(self) -> str:
        """PEP 440 local version label: the target's name or top features, plus 'mkl'."""
        if self.target.kind == "features":
            # the requested features no other requested one implies, newest first:
            # --avx2 --fma -> avx2.fma; --avx512f --avx2 -> avx512f
            parts = [
                f
                for f in sorted(self.target.requested, key=isa.sort_key, reverse=True)
                if not any(f in isa.closure([g]) for g in self.target.requested if g != f)
            ]
        else:
            parts = [self.target.name or "generic"]
        if self.mkl:
            parts.append("mkl")
        raw = ".".join(parts)
        # PEP 440 normalises '_' and '-' to '.', so x86_64_v3 -> x86.64.v3, avx512_vnni ->
        # avx512.vnni: use the normalised form so the file name and metadata agree.
        try:
            return Version(f"{self.tf_version}+{raw}").local or raw
        except InvalidVersion:
            raise ConfigError(f"cannot make a PEP 440 local version from {raw!r}")

    @property
    def version(self) -> str:
        return f"{self.tf_version}+{self.local_label}"

    @property
    def compiler_bin(self) -> str:
        if self.compiler == "gcc":
            return f"/usr/bin/gcc-{gcc_package_suffix(self.gcc_version)}"
        return f"/usr/lib/llvm-{_major(self.clang_version)}/bin/clang"

    @property
    def compiler_packages(self) -> tuple[str, ...]:
        if self.compiler == "gcc":
            s = gcc_package_suffix(self.gcc_version)
            return (f"gcc-{s}", f"g++-{s}")
        m = _major(self.clang_version)
        return (f"clang-{m}", f"lld-{m}")

    @property
    def compiler_check(self) -> tuple[str, str]:
        """(command printing the installed version, the minimum version required)."""
        if self.compiler == "gcc":
            return (
                f"gcc-{gcc_package_suffix(self.gcc_version)} -dumpfullversion",
                self.gcc_version,
            )
        # Distribution packages of clang-N carry their own N.x.y (e.g. 18.1.3 for clang-18)
        # and some print only N: require the major version, record the asked-for one.
        return (f"clang-{_major(self.clang_version)} -dumpversion", _major(self.clang_version))

    @property
    def toolchain_env(self) -> tuple[tuple[str, str], ...]:
        """Environment of the toolchain stage (Bazel's C++ autoconfiguration reads CC)."""
        env: list[tuple[str, str]] = []
        if self.compiler == "gcc":
            s = gcc_package_suffix(self.gcc_version)
            env += [("CC", f"/usr/bin/gcc-{s}"), ("CXX", f"/usr/bin/g++-{s}")]
        if self.bazel_provider == "bazelisk":
            env += [
                ("USE_BAZEL_VERSION", self.toolchain.bazel),
                ("BAZELISK_VERIFY_SHA256", self.toolchain.bazel_sha256),
            ]
        return tuple(env)

    @property
    def configure_env(self) -> tuple[tuple[str, str], ...]:
        """Answers for TensorFlow's ./configure, so it never asks."""
        env = [
            ("PYTHON_BIN_PATH", PYTHON_BIN),
            ("USE_DEFAULT_PYTHON_LIB_PATH", "1"),
            ("TF_NEED_CLANG", "1" if self.compiler == "clang" else "0"),
        ]
        if self.compiler == "clang":
            env.append(("CLANG_COMPILER_PATH", self.compiler_bin))
        else:
            env.append(("GCC_HOST_COMPILER_PATH", self.compiler_bin))
        env += [
            ("CC_OPT_FLAGS", self.cc_opt_flags),
            *toolchains.pins().configure_answers,
            ("SOURCE_DATE_EPOCH", str(self.source_date_epoch)),
        ]
        return tuple(env)

    @property
    def isa_note(self) -> dict:
        """Whether the libraries get the x86 ISA-level note glibc checks at load time.

        GCC (>= 11) builds compile with `-mneeded`: every object carries
        GNU_PROPERTY_X86_ISA_1_NEEDED for its -m flags, the linker ORs them into the library's
        note, and glibc (2.33+) then refuses to load it on an older CPU ("CPU ISA level is lower
        than required") instead of a SIGILL later. Not GNU ld's `-z x86-64-vN`: Bazel's
        autoconfigured GCC toolchain links with gold, which rejects it, and forcing BFD breaks
        the toolchain's --start-lib (both measured on the fixture)."""
        level = isa.psabi_level(self.target.features)
        if self.compiler != "gcc":
            return {
                "stamped": False,
                "level": isa.level_name(level),
                "why": "not stamped: clang builds may link with LLD, which writes no "
                "ISA-level note (only GCC + GNU ld builds are stamped)",
            }
        if level < 2:
            return {
                "stamped": False,
                "level": isa.level_name(level),
                "why": "not stamped: the target's features complete no psABI level "
                "above the x86-64 baseline",
            }
        if Version(self.gcc_version) < Version("11"):
            return {
                "stamped": False,
                "level": isa.level_name(level),
                "why": "not stamped: -mneeded needs GCC >= 11",
            }
        return {
            "stamped": True,
            "level": isa.level_name(level),
            "copt": "-mneeded",
            "why": f"GCC -mneeded: the libraries need {isa.level_name(level)} in their "
            "ISA note; glibc refuses them on older CPUs",
        }

    @property
    def repo_env(self) -> tuple[str, ...]:
        """--repo_env settings the release reads (its recipe decides which)."""
        tc = self.toolchain
        env = [f"{name}={self.python_version}" for name in tc.python_env]
        if tc.wheel_naming == "repo_env":
            env.append(f"WHEEL_NAME={WHEEL_NAME}")
        if tc.wheel_type:
            env.append(f"ML_WHEEL_TYPE={tc.wheel_type}")
        if tc.pywrap_rules:
            env.append("USE_PYWRAP_RULES=True")
        return tuple(env)

    @property
    def configs(self) -> tuple[str, ...]:
        """--config names the bazel command uses (opt is written by ./configure)."""
        names = ["opt"]
        if self.toolchain.cc_toolchain == "hermetic-clang":
            names.append(self.toolchain.local_cc_config)  # the chosen compiler, not the hermetic
        if self.mkl:
            names.append("mkl")
        names += [a.split("=", 1)[1] for a in self.bazel_args if a.startswith("--config=")]
        return tuple(names)

    @property
    def compiler_story(self) -> str:
        """Which compiler really builds the wheel, in one line."""
        tc = self.toolchain
        what = f"{self.compiler} {self.compiler_check[1]} from the image"
        if tc.cc_toolchain == "hermetic-clang":
            return (
                f"{what}; the release's hermetic clang is switched off with "
                f"--config={tc.local_cc_config}"
            )
        return f"{what}, chosen by ./configure (TF_NEED_CLANG={int(self.compiler == 'clang')})"

    @property
    def clone_check_argv(self) -> tuple[str, ...]:
        """The check of the source tree against the recipe, run right after the source stage."""
        tc = self.toolchain
        argv = ["python3", CLONE_CHECK, "--root", self.src_dir, "--target", tc.wheel_target]
        argv += [f"--config={c}" for c in self.configs if c != "opt"]
        if self.bazel_provider == "bazelisk":
            argv += ["--bazel", tc.bazel]
        if tc.wheel_type:
            argv += ["--wheel-type", tc.wheel_type]
        return tuple(argv)

    @property
    def bazel_target(self) -> str:
        return self.toolchain.wheel_target

    @property
    def extra_args(self) -> tuple[str, ...]:
        """Flags the recipe adds for the chosen compiler (e.g. an XNNPACK define for GCC 12)."""
        if self.compiler != "gcc":
            return ()
        return self.toolchain.gcc_args.get(_major(self.gcc_version), ())

    @cached_property
    def bazel_command(self) -> tuple[str, ...]:
        """The bazel command run in the source tree (argv)."""
        argv = ["bazel", "build"]
        argv += [f"--config={c}" for c in self.configs if f"--config={c}" not in self.bazel_args]
        argv += [f"--copt={f}" for f in self.copts]
        if self.isa_note["stamped"]:
            argv.append(f"--copt={self.isa_note['copt']}")
        argv += [
            f"--action_env=SOURCE_DATE_EPOCH={self.source_date_epoch}",
            f"--disk_cache={self.bazel_cache}/disk",
        ]
        # ---- reproducibility (tfforge rebuild; README "Reproducible wheels"): no volatile
        # stamping, fixed hashing in Python actions, and either output root (cached or fresh)
        # mapped to one name in __FILE__ and debug info.
        argv += [
            "--nostamp",
            "--action_env=PYTHONHASHSEED=0",
            f"--copt=-ffile-prefix-map={self.bazel_cache}=/bazel",
            f"--copt=-ffile-prefix-map={FRESH_ROOT}=/bazel",
        ]
        argv += self.remote_flags
        argv += [f"--repo_env={e}" for e in self.repo_env]
        argv += self.extra_args
        argv += self.bazel_args  # last, so a user's extra flag wins over ours
        argv.append(self.bazel_target)
        return tuple(argv)

    @property
    def collect_command(self) -> tuple[str, ...]:
        """Put the built wheel(s) into /dist (argv; the glob is expanded by the shell)."""
        pkg = self.toolchain.wheel_package
        if self.toolchain.wheel_naming == "repo_env":
            return ("cp", f"bazel-bin/{pkg}/wheel_house/*.whl", f"{DIST}/")
        # The older script: build_pip_package OUTDIR --cpu (--cpu names it tensorflow_cpu).
        return (f"bazel-bin/{pkg}/build_pip_package", DIST, "--cpu")

    @property
    def apt_packages(self) -> tuple[str, ...]:
        """Every apt package the image installs: base, compiler, packaging tools, Bazel's."""
        pins = toolchains.pins()
        apt = [*pins.image.apt, *self.compiler_packages, *self.toolchain.packages]
        if self.toolchain.wheel_naming == "cpu_flag":
            apt += pins.image.apt_build_pip_package
        if self.bazel_provider == "bazelisk":
            apt += pins.image.apt_bazelisk
        elif self.bazel_provider == "debian":
            apt.append(pins.debian_bazel_package)
        return tuple(sorted(set(apt)))

    def evidence_line(self) -> str:
        """The evidence level of each fact that decides this build, in one line."""
        ev = self.toolchain.evidence
        shown = {
            "bazel": f"bazel {self.toolchain.bazel}",
            "wheel_target": self.toolchain.wheel_target.rsplit("/", 1)[-1],
            "python_env": "python var",
            "wheel_type": "version type",
            "cc_toolchain": f"toolchain {self.toolchain.cc_toolchain}",
            self.compiler: f"{self.compiler} range",
            "packages": "packaging tools",
        }
        return "; ".join(f"{label} [{ev[k].level}]" for k, label in shown.items())

    def document(self) -> dict:
        """build.json without the id and the docker command (those follow from this)."""
        pins = toolchains.pins()
        t = self.target
        tc = {
            **self.toolchain.as_dict(),
            "bazel_provider": self.bazel_provider,
            "bazel_version": self.bazel_version,
        }
        if self.bazel_provider == "bazelisk":
            tc["bazelisk"] = {
                "version": pins.bazelisk.version,
                "url": pins.bazelisk.url,
                "sha256": pins.bazelisk.sha256,
            }
        elif self.bazel_provider == "debian":
            tc["debian_package"] = pins.debian_bazel_package
        return {
            "schema": SCHEMA,
            "spec": {
                "tf_version": self.tf_version,
                "python_version": self.python_version,
                "target": t.as_dict(),
                "features_requested": sorted(t.requested, key=isa.sort_key),
                "mkl": self.mkl,
                "compiler": self.compiler,
                "gcc_version": self.gcc_version,
                "clang_version": self.clang_version,
                "base_image": self.base_image,
                "base_image_pinned": self.base_image_pinned,
                "base_image_suite": (
                    self.base_image_choice.suite if self.base_image_choice else None
                ),
                "source": self.source.as_dict(),
                "bazel_provider": self.bazel_provider,
                "bazel_args": list(self.bazel_args),
                "remote_cache": self.remote_cache,
                "source_date_epoch": self.source_date_epoch,
                **({"remote_executor": self.remote_executor} if self.remote_executor else {}),
            },
            "derived": {
                "local_version": self.local_label,
                "version": self.version,
                "wheel_name": WHEEL_NAME,
                "features": sorted(t.features, key=isa.sort_key),
                "implied_features": sorted(t.implied, key=isa.sort_key),
                "target_name": t.name,
                "psabi_level": isa.level_name(isa.psabi_level(t.features)),
                "copts": list(self.copts),
                "host_copts": list(self.copts),
                "cc_opt_flags": self.cc_opt_flags,
                "flags_from": t.flags_from,
                "threading": "OpenMP (oneDNN, --config=mkl; set OMP_NUM_THREADS)"
                if self.mkl
                else "TensorFlow's Eigen thread pool",
                "compiler_packages": list(self.compiler_packages),
                "compiler_required": self.compiler_check[1],
                "compiler_story": self.compiler_story,
                "isa_note": self.isa_note,
                "repo_env": list(self.repo_env),
                "configs": list(self.configs),
                "apt_packages": list(self.apt_packages),
            },
            "recipe": {
                "evidence": {k: e.as_dict() for k, e in self.toolchain.evidence.items()},
                "secondary_only": self.toolchain.secondary_only,
                "configure_unset": toolchains.pins().configure_unset,
            },
            "toolchain": tc,
            "tools": {
                "tfforge": __version__,
                "archspec": archspec.__version__,
                "dockerfile_template_sha256": template_sha256(),
                "clone_check_sha256": clone_check_sha256(),
            },
            "commands": {
                "workdir": self.src_dir,
                "toolchain_env": dict(self.toolchain_env),
                "configure": {"env": dict(self.configure_env), "argv": ["./configure"]},
                "clone_check": list(self.clone_check_argv),
                "bazel": list(self.bazel_command),
                "collect": list(self.collect_command),
            },
        }

    @cached_property
    def build_id(self) -> str:
        """<tf version>-<local label>-<12 hex of sha256 over the canonical document>."""
        digest = hashlib.sha256(canonical_json(self.document()).encode()).hexdigest()
        return f"{self.tf_version}-{self.local_label}-{digest[:12]}"


@cache
def template_sha256() -> str:
    return sha256_file(resources.template_path())


@cache
def clone_check_sha256() -> str:
    return hashlib.sha256(clone_check_source().encode()).hexdigest()


def clone_check_source() -> str:
    """The standalone checker the image runs (tfforge/build/clone_check.py, stdlib only)."""
    return (Path(__file__).with_name("clone_check.py")).read_text()


def canonical_json(doc: object) -> str:
    return json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=True) + "\n"


def export_dir(build_dir: str | Path) -> Path:
    """Where the build's export stage lands, beside the build (one build per id at a time)."""
    return Path(build_dir) / EXPORT_STAGE


def docker_env_text() -> str:
    """The client's environment as the dry run and build.log show it (DOCKER_BUILDKIT=1)."""
    return " ".join(f"{k}={v}" for k, v in DOCKER_ENV.items())


def docker_argv(
    client: str,
    build_dir: str | Path,
    *,
    network: str | None = None,
    secrets: Mapping[str, str] | None = None,
    fresh: bool = False,
    build_args: Mapping[str, str] | None = None,
    target: str = "export",
) -> list[str]:
    """THE docker command that builds a rendered folder: `build --dry-run` prints it, the
    engine runs it (with DOCKER_ENV), build.json records it for the folder under builds/.

    network: --network for a loopback remote cache; secrets: {secret id: file} (issue 13);
    fresh: no BuildKit cache and no Bazel cache (`invoke rebuild`); build_args: the rebuild's
    variations as `--build-arg K=V`, sorted so the argv is stable; target: the stage to export
    (`kitexport` when tfforge.kit captures a build's inputs)."""
    argv = [client, "build"]
    if network:
        argv.append(f"--network={network}")
    for sid, path in sorted((secrets or {}).items()):
        argv += ["--secret", f"id={sid},src={path}"]
    argv += [
        "--progress=plain",
        "--target",
        target,
        "--output",
        f"type=local,dest={export_dir(build_dir)}",
    ]
    args = {**(FRESH_BUILD_ARGS if fresh else {}), **(build_args or {})}
    if fresh:
        argv.append("--no-cache")
    for key in sorted(args):
        argv += ["--build-arg", f"{key}={args[key]}"]
    return argv + [str(build_dir)]


def docker_command(build_id: str, network: str | None = None) -> dict:
    """The docker command recorded in build.json, relative to the project root."""
    return {
        "env": dict(DOCKER_ENV),
        "argv": docker_argv("/usr/bin/docker", f"builds/{build_id}", network=network),
        "note": "run from the project root; builds/<id>/.export receives the "
        "wheel(s) and build.json; `build` runs this with the client it resolves "
        "(and --secret files for remote-cache credentials)",
    }


# ---- helpers -----------------------------------------------------------------------------
def _major(version: str | None) -> str:
    return (version or "").split(".")[0]


def gcc_package_suffix(gcc_version: str) -> str:
    """Debian/Ubuntu name GCC packages by major version (gcc-12), before GCC 5 by X.Y."""
    parts = gcc_version.split(".")
    return parts[0] if int(parts[0]) >= 5 else ".".join(parts[:2])


def _text(options: Mapping, key: str) -> str:
    value = options.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        value = str(value)
    return value.strip()


def default_gcc_version(tc: toolchains.Toolchain) -> str:
    """The GCC a release builds with when --gcc-version is not given: its recipe's default
    major, at the version the first base image shipping it carries."""
    image = toolchains.base_image_for("gcc", tc.gcc_default)
    if image is None:
        raise ValueError(f"{toolchains.DATA_FILE}: no base image ships gcc-{tc.gcc_default}")
    return image.gcc[str(tc.gcc_default)]


def gcc_for_image(tc: toolchains.Toolchain, base_image: str) -> str | None:
    """The GCC a base image of a known Debian suite ships that the release accepts (its newest
    such major), so `--base-image local/bookworm:base` alone builds with bookworm's gcc-12;
    None for an image tfforge knows nothing about."""
    lo, hi = tc.gcc
    for known in toolchains.pins().base_images.values():
        if base_image in (known.ref, known.local) or known.suite in base_image:
            fits = sorted((int(m) for m in known.gcc if lo <= int(m) <= hi), reverse=True)
            return known.gcc[str(fits[0])] if fits else None
    return None


def _check_gcc_version(text: str) -> str:
    if not _GCC_VERSION.fullmatch(text):
        raise ConfigError(f"--gcc-version {_short(text)}: expected a GCC version such as 12.2.0")
    return text


def _check_python(text: str, tc: toolchains.Toolchain) -> str:
    if not toolchains.PY_VERSION.fullmatch(text):
        raise ConfigError(f"--python-version {_short(text)}: expected a version such as 3.11")
    toolchains.check_python(tc, text)
    return text


def check_image_ref(ref: str, flag: str = "--base-image") -> bool:
    """Validate a docker image reference; True when it is pinned by digest."""
    # Like docker: the first component is a registry only with a '.' or ':' or as 'localhost';
    # otherwise it is part of the repository name, which must be lowercase.
    first, slash, _ = ref.partition("/")
    registry = slash and ("." in first or ":" in first or first == "localhost")
    if (
        len(ref) > 255
        or not _IMAGE_REF.fullmatch(ref)
        or (slash and not registry and first != first.lower())
    ):
        raise ConfigError(
            f"{flag} {_short(ref)}: not a docker image reference "
            "(expected NAME[:TAG][@sha256:DIGEST], e.g. "
            "debian:bookworm-slim@sha256:<64 hex>)"
        )
    return "@sha256:" in ref


def check_cache_url(url: str, option: str = "--remote-cache") -> str:
    """Validate a Bazel remote cache/executor URL (no credentials, no shell characters)."""
    # Never echo credentials: show the URL with anything before an '@' in the host masked.
    shown = without_credentials(url)
    bad = f"{option} {_short(shown)}"
    if len(url) > 2048 or any(c.isspace() for c in url):
        raise ConfigError(f"{bad}: must be one URL without spaces")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a non-numeric port
    except ValueError:
        raise ConfigError(f"{bad}: not a URL")
    if parts.scheme not in _CACHE_SCHEMES:
        raise ConfigError(f"{bad}: scheme must be one of {', '.join(_CACHE_SCHEMES)}")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ConfigError(
            f"{bad}: credentials in the URL would be written into build files; "
            "pass them at build time instead (TFFORGE_REMOTE_HEADER or "
            "TFFORGE_REMOTE_NETRC_FILE)"
        )
    if not parts.netloc or not _URL_HOST.fullmatch(parts.netloc):
        raise ConfigError(f"{bad}: the host must be a name or address with an optional :port")
    if parts.query or parts.fragment or not _URL_PATH.fullmatch(parts.path):
        raise ConfigError(
            f"{bad}: only letters, digits and ._~/%- are allowed in the path; no query or fragment"
        )
    return url


def check_bazel_args(args: Iterable[str]) -> tuple[str, ...]:
    out = []
    for arg in args:
        if len(arg) > 512 or not _BAZEL_ARG.fullmatch(arg):
            raise ConfigError(
                f"--bazel-arg {_short(arg)}: must look like --name or "
                "--name=value using letters, digits and _.,:/@%+=- only "
                "(no spaces, quotes or shell characters)"
            )
        out.append(arg)
    if len(out) > 64:
        raise ConfigError(f"--bazel-arg given {len(out)} times; at most 64")
    return tuple(out)


def _flags_for(name: str, compiler: str, version: str, asked: str) -> tuple[str, ...]:
    """archspec's optimization flags for a named target; ConfigError with archspec's reason."""
    try:
        flags = fleet.optimization_flags(name, compiler, version)
    except archspec.cpu.UnsupportedMicroarchitecture as exc:
        raise ConfigError(f"{asked}: {exc}; pick an older target or a newer --{compiler}-version")
    return tuple(flags.split())


def _named_target(name: str, compiler: str, version: str) -> TargetChoice:
    key = fleet.target_key(name, source="--target")
    u = archspec.cpu.TARGETS[key]
    flags = _flags_for(key, compiler, version, f"--target {name}")
    kind = "psabi" if key.startswith("x86_64") else "archspec"
    return TargetChoice(
        kind,
        (name,),
        key,
        isa.normalize(u.features),
        frozenset(),
        frozenset(),
        flags,
        f"archspec optimization_flags({compiler!r}, {version!r})",
    )


def _host_snapshot_sha(host) -> str:
    return hashlib.sha256(canonical_json(host.to_dict()).encode()).hexdigest()


def _host_target(
    host_files: list[str], this_host: bool, compiler: str, version: str, gcc_version: str
) -> TargetChoice:
    if this_host:
        hosts = [cpu.detect_host()]
    else:
        hosts = cpu.load_hosts(list(host_files), option="--host")
        fleet.check_fleet(hosts)
    best = fleet.best_target(hosts, gcc_version)
    kind = "fleet" if len(hosts) > 1 else "host"
    if compiler == "gcc":
        flags = tuple(best.flags.split())
    else:
        flags = _flags_for(best.name, compiler, version, f"target {best.name}")
    return TargetChoice(
        kind,
        tuple(h.name for h in hosts),
        best.name,
        best.features,
        frozenset(),
        frozenset(),
        flags,
        f"fleet.best_target, then archspec optimization_flags({compiler!r}, {version!r})",
        tuple((h.name, _host_snapshot_sha(h)) for h in hosts),
        best.skipped,
    )


def _feature_target(names: list[str], compiler: str, version: str) -> TargetChoice:
    requested = frozenset(isa.canonical(n, source="feature flag") for n in names)
    full = isa.closure(requested)
    if compiler == "gcc":
        flags = tuple(isa.gcc_flags(full, version))
        how = f"tfforge.host.isa.gcc_flags(closure of the requested features, {version!r})"
    else:
        flags = tuple(isa.gcc_flags(full, None))
        how = "tfforge.host.isa -m flags (closure of the requested features)"
    return TargetChoice(
        "features",
        tuple(sorted(requested, key=isa.sort_key)),
        None,
        full,
        requested,
        full - requested,
        flags,
        how,
    )


def resolve_target(options: Mapping, compiler: str, version: str, gcc_version: str) -> TargetChoice:
    target = _text(options, "target")
    hosts = [str(h) for h in (options.get("hosts") or []) if str(h).strip()]
    features = [str(f) for f in (options.get("features") or []) if str(f).strip()]
    given = [
        k for k, v in (("--target", target), ("--host", hosts), ("feature flags", features)) if v
    ]
    if len(given) > 1:
        raise ConfigError(
            f"give one kind of target, not {' and '.join(given)}: a named target "
            "(--target haswell / x86-64-v3 / host), host snapshots (--host FILE) "
            "or feature flags (--avx2 --fma ...)"
        )
    if features:
        return _feature_target(features, compiler, version)
    if hosts:
        return _host_target(hosts, False, compiler, version, gcc_version)
    if target.lower() == "host":
        return _host_target([], True, compiler, version, gcc_version)
    if target:
        return _named_target(target, compiler, version)
    raise ConfigError(
        "no build target: pass --target NAME (archspec name such as haswell, a "
        "psABI level such as x86-64-v3, or 'host'), --host FILE (snapshot), or "
        "feature flags such as --avx2 --fma (or set target in tfforge.toml)"
    )


def walk_source(root: Path) -> tuple[SourceEntry, ...]:
    """Every file and symlink under root, sorted, with content digests.

    Skipped: .git and .tf_configure.bazelrc at the top, Bazel's bazel-* convenience links at
    the top, __pycache__ folders and *.pyc files (none of them are sources).
    """
    entries: list[SourceEntry] = []
    root_real = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        top = rel_dir == Path(".")
        keep = []
        for d in sorted(dirnames):
            full = Path(dirpath, d)
            if d in _SKIP_ANY or (top and (d in _SKIP_TOP or d.startswith("bazel-"))):
                continue
            if full.is_symlink():
                filenames.append(d)  # a link to a folder is recorded as a link
                continue
            keep.append(d)
        dirnames[:] = keep
        for name in sorted(set(filenames)):
            rel = (rel_dir / name).as_posix()
            if top and (name in _SKIP_TOP or name.startswith("bazel-")):
                continue
            if name.endswith(".pyc"):
                continue
            if any(ord(ch) < 32 or ch == "\x7f" for ch in rel):
                raise ConfigError(
                    f"--source-dir: file name {_short(rel)} has control characters; rename it"
                )
            target = os.readlink(Path(dirpath, name)) if Path(dirpath, name).is_symlink() else ""
            if any(0xDC80 <= ord(ch) <= 0xDCFF for ch in rel + target):  # undecodable bytes
                raise ConfigError(f"--source-dir: file name {_short(rel)} is not UTF-8; rename it")
            full = Path(dirpath, name)
            st = full.lstat()
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(full)
                dest = (full.parent / target).resolve()
                if os.path.isabs(target) or not dest.is_relative_to(root_real):
                    raise ConfigError(
                        f"--source-dir: symlink {rel} -> {target} points outside "
                        "the source folder; replace it with the file it points to"
                    )
                entries.append(
                    SourceEntry(rel, "link", 0, hashlib.sha256(target.encode()).hexdigest(), target)
                )
            elif stat.S_ISREG(st.st_mode):
                mode = 0o755 if st.st_mode & 0o111 else 0o644
                entries.append(SourceEntry(rel, "file", mode, sha256_file(full)))
            else:
                raise ConfigError(
                    f"--source-dir: {rel} is not a regular file, folder or symlink; remove it"
                )
    entries.sort(key=lambda e: e.path)
    return tuple(entries)


def tree_digest(entries: Iterable[SourceEntry]) -> str:
    h = hashlib.sha256()
    for e in entries:
        h.update(f"{e.kind} {e.mode:o} {e.path} {e.digest}\n".encode())
    return h.hexdigest()


def resolve_source(options: Mapping, tc: toolchains.Toolchain) -> Source:
    text = _text(options, "source_dir")
    if not text:
        return Source("git", toolchains.pins().git_url, tc.git_tag, tc.git_commit)
    path = Path(text).expanduser()
    if not path.is_dir():
        raise ConfigError(
            f"--source-dir {_short(text)}: not a folder; pass a TensorFlow "
            "source tree (or leave it out to clone the pinned tag)"
        )
    entries = walk_source(path)
    if not entries:
        raise ConfigError(f"--source-dir {text}: the folder has no files")
    return Source("local", path=path.resolve(), tree_sha256=tree_digest(entries), entries=entries)


def _bool(options: Mapping, key: str) -> bool:
    value = options.get(key)
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def make(options: Mapping) -> BuildSpec:
    """A validated BuildSpec from merged options, or ConfigError on the first bad input."""
    warnings: list[str] = []
    tc = toolchains.toolchain(_text(options, "tf_version"))
    python_version = _check_python(_text(options, "python_version"), tc)

    compiler = _text(options, "compiler") or "gcc"
    if compiler not in COMPILERS:
        raise ConfigError(f"--compiler {_short(compiler)}: must be one of {', '.join(COMPILERS)}")
    gcc_text = _text(options, "gcc_version")
    base_text = _text(options, "base_image")
    gcc_version = (
        _check_gcc_version(gcc_text)
        if gcc_text
        else (gcc_for_image(tc, base_text) if base_text else None) or default_gcc_version(tc)
    )
    clang_version = None
    if compiler == "clang":
        clang_version = _text(options, "clang_version") or tc.official_compiler_version
        if not _GCC_VERSION.fullmatch(clang_version):
            raise ConfigError(
                f"--clang-version {_short(clang_version)}: expected a version such as 18.1.8"
            )
    mkl = _bool(options, "mkl")
    if mkl and compiler == "gcc" and Version(gcc_version) < Version(MKL_MIN_GCC):
        raise ConfigError(
            f"--mkl needs GCC >= {MKL_MIN_GCC} (oneDNN); --gcc-version is "
            f"{gcc_version}: pick {MKL_MIN_GCC} or newer"
        )

    cver = gcc_version if compiler == "gcc" else clang_version
    target = resolve_target(options, compiler, cver, gcc_version)
    # The release's own compiler range, after the compiler-independent refusals above.
    cflag = f"--{compiler}-version {cver}"
    toolchains.check_compiler(tc, compiler, int(_major(cver)), cflag)
    if target.skipped:
        warnings.append("better shared targets the compiler refused: " + "; ".join(target.skipped))
    if target.implied:
        warnings.append(
            "implied features added: "
            + ", ".join(sorted(target.implied, key=isa.sort_key))
            + " (required by "
            + ", ".join(sorted(target.requested, key=isa.sort_key))
            + ")"
        )

    pins = toolchains.pins()
    base_image = _text(options, "base_image")
    choice = None
    if not base_image:
        major = int(_major(gcc_version if compiler == "gcc" else clang_version))
        choice = toolchains.base_image_for(compiler, major)
        if choice is None:
            raise ConfigError(
                f"no base image in {toolchains.DATA_FILE} ships {compiler}-{major}; "
                "pass --base-image with an image that does"
            )
        base_image = choice.ref
    pinned = check_image_ref(base_image)
    if not pinned:
        warnings.append(
            f"base image {base_image} is not pinned by digest; recorded as "
            "unpinned (the build repeats only while that image stays the same)"
        )

    provider = _text(options, "bazel_provider") or "bazelisk"
    if provider not in PROVIDERS:
        raise ConfigError(
            f"--bazel-provider {_short(provider)}: must be one of {', '.join(PROVIDERS)}"
        )
    if provider == "bazelisk":
        bazel_version = tc.bazel
    elif provider == "debian":
        bazel_version = pins.debian_bazel_version
        warnings.append(
            f"bazel provider 'debian' gives Bazel {bazel_version}; TensorFlow "
            f"{tc.tf_version} pins {tc.bazel}: fine for small test workspaces, a "
            "real TensorFlow tree needs the bazelisk provider"
        )
    else:
        bazel_version = "from the base image"
        warnings.append(
            f"bazel provider 'image' uses whatever Bazel the base image has; "
            f"TensorFlow {tc.tf_version} pins {tc.bazel}"
        )

    bazel_args = check_bazel_args(str(a) for a in (options.get("bazel_args") or []))
    remote_cache = _text(options, "remote_cache") or None
    if remote_cache:
        check_cache_url(remote_cache)
    remote_executor = _text(options, "remote_executor") or None
    if remote_executor:
        check_cache_url(remote_executor, "--remote-executor")
        if urlsplit(remote_executor).scheme not in ("grpc", "grpcs"):
            raise ConfigError(
                f"--remote-executor {_short(remote_executor)}: Bazel's remote "
                "execution speaks gRPC; use grpc:// or grpcs://"
            )
        warnings.append(
            "remote execution is rendered but untested here (no REAPI worker on "
            "these machines); the build falls back to local execution when the "
            "executor cannot run an action (--remote_local_fallback)"
        )
    try:
        epoch = int(options.get("source_date_epoch") or MIN_EPOCH)
    except (TypeError, ValueError):
        raise ConfigError(
            f"source_date_epoch {_short(options.get('source_date_epoch'))}: "
            "must be an integer (seconds since 1970)"
        )
    if not MIN_EPOCH <= epoch < 2**32:
        raise ConfigError(
            f"source_date_epoch {epoch}: must be between {MIN_EPOCH} (1980-01-01, "
            "the earliest zip timestamp) and 4294967295"
        )

    source = resolve_source(options, tc)
    spec = BuildSpec(
        tc.tf_version,
        python_version,
        tc,
        target,
        mkl,
        compiler,
        gcc_version,
        clang_version,
        base_image,
        pinned,
        choice,
        source,
        provider,
        bazel_version,
        bazel_args,
        remote_cache,
        epoch,
        tuple(warnings),
        remote_executor=remote_executor,
    )
    check_tokens(spec)
    return spec


def check_tokens(spec: BuildSpec) -> None:
    """Defence in depth: every word that reaches a RUN line is from the safe charset."""
    words = [
        *spec.bazel_command,
        *spec.collect_command,
        *spec.compiler_packages,
        *spec.clone_check_argv,
        *spec.apt_packages,
        spec.base_image,
        *(v for _, v in spec.configure_env for v in v.split()),
        *(v for _, v in spec.toolchain_env),
    ]
    for w in words:
        if not SAFE_TOKEN.fullmatch(w):
            raise ConfigError(
                f"refusing to render {_short(w)}: it has characters that are "
                "not allowed in build files"
            )
