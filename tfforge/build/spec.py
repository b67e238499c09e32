"""BuildSpec: the validated inputs of one wheel build and what follows from them.

A BuildSpec is made from a build's typed options by tfforge.build.request.make, which checks
every input; `check_tokens` checks again that every word reaching a RUN line is from a safe
charset (tfforge.build.inputs), so no input can inject shell or Dockerfile syntax. The spec
derives the compiler flags, the configure environment, the bazel command, the PEP 440 local
version label and the build id (a hash of build.json, tfforge.build.document). It never renders
or runs. The target comes from tfforge.build.targets, the source from tfforge.build.source, the
docker command from tfforge.build.dockercmd.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from packaging.version import InvalidVersion, Version

from tfforge.build import document, evidence, inputs, toolchains
from tfforge.build import floor as runtime_floor
from tfforge.build.document import WHEEL_NAME
from tfforge.build.source import Source
from tfforge.build.targets import TargetChoice
from tfforge.errors import ConfigError
from tfforge.host import isa
from tfforge.options.typed.enums import BazelProvider, Compiler
from tfforge.text import is_loopback

MKL_MIN_GCC = "6.2"
# Paths inside the build image.
SRC_DIR = "/home/{user}/src"
BAZEL_CACHE = "/home/{user}/.cache/bazel"
# A rebuild from nothing (tfforge rebuild) gives Bazel this output root instead of BAZEL_CACHE.
FRESH_ROOT = "/tmp/tfforge-fresh"
DIST = "/dist"
PYTHON_BIN = "/usr/bin/python3"
CLONE_CHECK = "/usr/local/share/tfforge/clone_check.py"  # where the image holds the checker


@dataclass(frozen=True, kw_only=True)
class IsaNote:
    """Whether the build stamps the x86 ISA-level note into its libraries, and why."""

    stamped: bool
    level: str  # the psABI level of the target's features, e.g. 'x86-64-v3'
    why: str
    copt: str | None = None  # the compiler flag that stamps it (when stamped)

    def as_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"stamped": self.stamped, "level": self.level, "why": self.why}
        if self.copt:
            doc["copt"] = self.copt
        return doc


@dataclass(frozen=True, kw_only=True)
class BuildSpec:
    tf_version: str
    python_version: str
    toolchain: toolchains.Toolchain
    target: TargetChoice
    mkl: bool
    compiler: Compiler
    gcc_version: str
    clang_version: str | None
    base_image: str
    base_image_pinned: bool
    base_image_choice: toolchains.BaseImage | None  # the [base_images] entry used, if any
    source: Source
    bazel_provider: BazelProvider
    bazel_version: str
    bazel_args: tuple[str, ...]
    remote_cache: str | None
    source_date_epoch: int
    warnings: tuple[str, ...] = field(default=(), compare=False)
    remote_executor: str | None = None  # rendered, untested here
    floor: runtime_floor.FloorPlan | None = None  # the runtime floor and the route to it

    # ---- remote cache / execution --------------------------------------------------------
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
            raise ConfigError(f"cannot make a PEP 440 local version from {raw!r}") from None

    @property
    def version(self) -> str:
        return f"{self.tf_version}+{self.local_label}"

    @property
    def sysroot(self) -> bool:
        return self.floor is not None and self.floor.route == "sysroot"

    @property
    def driver_bin(self) -> str:
        """The compiler driver builds call: the sysroot wrapper on the sysroot route."""
        return self.sysroot_wrappers[0][0] if self.sysroot else self.compiler_bin

    @property
    def sysroot_wrappers(self) -> tuple[tuple[str, str], ...]:
        """(path, command) of the wrapper scripts the sysroot route installs (else none)."""
        if self.floor is None or not self.sysroot:
            return ()
        fl = self.floor.floor
        out = runtime_floor.wrapper_lines(fl, self.compiler, self.compiler_bin)
        if self.floor.python_from_sysroot:
            out += (runtime_floor.python_wrapper(fl),)
        return out

    @property
    def python_bin(self) -> str:
        """PYTHON_BIN_PATH: the floor's own Python when the sysroot route provides the one asked
        for, else the image's python3."""
        if self.floor is not None and self.sysroot and self.floor.python_from_sysroot:
            return runtime_floor.python_wrapper(self.floor.floor)[0]
        return PYTHON_BIN

    @property
    def compiler_bin(self) -> str:
        if self.compiler == "gcc":
            return f"/usr/bin/gcc-{gcc_package_suffix(self.gcc_version)}"
        return f"/usr/lib/llvm-{compiler_major(self.clang_version)}/bin/clang"

    @property
    def compiler_packages(self) -> tuple[str, ...]:
        if self.compiler == "gcc":
            s = gcc_package_suffix(self.gcc_version)
            return (f"gcc-{s}", f"g++-{s}")
        m = compiler_major(self.clang_version)
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
        return (
            f"clang-{compiler_major(self.clang_version)} -dumpversion",
            compiler_major(self.clang_version),
        )

    @property
    def toolchain_env(self) -> tuple[tuple[str, str], ...]:
        """Environment of the toolchain stage (Bazel's C++ autoconfiguration reads CC)."""
        env: list[tuple[str, str]] = []
        if self.compiler == "gcc":
            s = gcc_package_suffix(self.gcc_version)
            env += [("CC", f"/usr/bin/gcc-{s}"), ("CXX", f"/usr/bin/g++-{s}")]
            if self.sysroot:  # the floor's wrappers (tfforge/build/floor.py)
                env = [("CC", self.sysroot_wrappers[0][0]), ("CXX", self.sysroot_wrappers[1][0])]
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
            ("PYTHON_BIN_PATH", self.python_bin),
            ("USE_DEFAULT_PYTHON_LIB_PATH", "1"),
            ("TF_NEED_CLANG", "1" if self.compiler == "clang" else "0"),
        ]
        if self.compiler == "clang":
            env.append(("CLANG_COMPILER_PATH", self.driver_bin))
        else:
            env.append(("GCC_HOST_COMPILER_PATH", self.driver_bin))
        env += [
            ("CC_OPT_FLAGS", self.cc_opt_flags),
            *toolchains.pins().configure_answers,
            ("SOURCE_DATE_EPOCH", str(self.source_date_epoch)),
        ]
        return tuple(env)

    @property
    def isa_note(self) -> IsaNote:
        """Whether the libraries get the x86 ISA-level note glibc checks at load time.

        GCC (>= 11) builds compile with `-mneeded`: every object carries
        GNU_PROPERTY_X86_ISA_1_NEEDED for its -m flags, the linker ORs them into the library's
        note, and glibc (2.33+) then refuses to load it on an older CPU ("CPU ISA level is lower
        than required") instead of a SIGILL later. Not GNU ld's `-z x86-64-vN`: Bazel's
        autoconfigured GCC toolchain links with gold, which rejects it, and forcing BFD breaks
        the toolchain's --start-lib (both measured on the fixture)."""
        level = isa.level_name(isa.psabi_level(self.target.features))
        if self.compiler != "gcc":
            why = (
                "not stamped: clang builds may link with LLD, which writes no "
                "ISA-level note (only GCC + GNU ld builds are stamped)"
            )
        elif isa.psabi_level(self.target.features) < 2:
            why = (
                "not stamped: the target's features complete no psABI level "
                "above the x86-64 baseline"
            )
        elif Version(self.gcc_version) < Version("11"):
            why = "not stamped: -mneeded needs GCC >= 11"
        else:
            why = (
                f"GCC -mneeded: the libraries need {level} in their "
                "ISA note; glibc refuses them on older CPUs"
            )
            return IsaNote(stamped=True, level=level, why=why, copt="-mneeded")
        return IsaNote(stamped=False, level=level, why=why)

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
        return tuple(argv) + evidence.clone_check_args(tc)

    @property
    def bazel_target(self) -> str:
        return self.toolchain.wheel_target

    @property
    def extra_args(self) -> tuple[str, ...]:
        """Flags the recipe adds for the chosen compiler: for clang, the compiler and linker
        flags the release's own CI passes with it; for GCC, e.g. an XNNPACK define for GCC 12."""
        if self.compiler != "gcc":
            return self.toolchain.clang_args
        return self.toolchain.gcc_args.get(compiler_major(self.gcc_version), ())

    @cached_property
    def official_route(self) -> dict[str, Any]:
        """The release's own toolchain (from its wheels), this build's, and how they differ."""
        version = self.gcc_version if self.compiler == "gcc" else self.clang_version or ""
        image = self.base_image_choice or toolchains.image_named(self.base_image)
        linked = None
        if self.floor is not None:
            fl = self.floor.floor
            runtime = f"glibc {fl.glibc}, {fl.glibcxx}"
            linked = (
                f"a {fl.name} sysroot ({runtime})"
                if self.sysroot
                else f"the image's own glibc and libstdc++, within the {fl.name} floor ({runtime})"
            )
        return evidence.official_route(self.toolchain, self.compiler, version, image, linked)

    @cached_property
    def bazel_command(self) -> tuple[str, ...]:
        """The bazel command run in the source tree (argv)."""
        argv = ["bazel", "build"]
        argv += [f"--config={c}" for c in self.configs if f"--config={c}" not in self.bazel_args]
        argv += [f"--copt={f}" for f in self.copts]
        if self.isa_note.copt:
            argv.append(f"--copt={self.isa_note.copt}")
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
        """The strongest evidence of each fact that decides this build, in one line."""
        ev = self.toolchain.evidence
        tc = self.toolchain
        shown = {
            "official_compiler": f"official {tc.official_compiler} {tc.official_compiler_version}",
            "pythons": f"python {self.python_version}",
            "glibc": f"glibc {tc.glibc} baseline",
            "git_commit": "commit",
            **({"clang_args": "clang flags"} if self.compiler == "clang" else {}),
            "bazel": f"bazel {self.toolchain.bazel}",
            "wheel_target": self.toolchain.wheel_target.rsplit("/", 1)[-1],
            "python_env": "python var",
            "wheel_type": "version type",
            "cc_toolchain": f"toolchain {self.toolchain.cc_toolchain}",
            self.compiler: f"{self.compiler} range",
            "packages": "packaging tools",
        }
        return "; ".join(f"{label} [{ev[k].level}]" for k, label in shown.items())

    def document(self) -> dict[str, Any]:
        """build.json without the id and the docker command (tfforge.build.document)."""
        return document.document(self)

    @cached_property
    def build_id(self) -> str:
        """<tf version>-<local label>-<12 hex of sha256 over the canonical document>."""
        return document.build_id(self)


# ---- helpers ------------------------------------------------------------------------------
def compiler_major(version: str | None) -> str:
    """The major version of a compiler version ("12" for "12.2.0")."""
    return (version or "").split(".")[0]


def gcc_package_suffix(gcc_version: str) -> str:
    """Debian/Ubuntu name GCC packages by major version (gcc-12), before GCC 5 by X.Y."""
    parts = gcc_version.split(".")
    return parts[0] if int(parts[0]) >= 5 else ".".join(parts[:2])


def check_tokens(spec: BuildSpec) -> None:
    """Defence in depth: every word that reaches a RUN line is from the safe charset."""
    inputs.check_words(
        [
            *spec.bazel_command,
            *spec.collect_command,
            *spec.compiler_packages,
            *spec.clone_check_argv,
            *spec.apt_packages,
            spec.base_image,
            *(v for _, v in spec.configure_env for v in v.split()),
            *(v for _, v in spec.toolchain_env),
            *(w for pair in spec.sysroot_wrappers for v in pair for w in v.split()),
        ]
    )
