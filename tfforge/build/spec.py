"""BuildSpec: the validated inputs of one wheel build and what follows from them.

`make(opts)` turns a build's typed options (tfforge.options.typed.spec.SpecOptions) into a frozen
BuildSpec, or raises ConfigError naming the bad input, where it came from and the fix. Every
value rendered into a Dockerfile passes a charset check (tfforge.build.inputs), so no input can
inject shell or Dockerfile syntax. The spec derives the compiler flags, the configure
environment, the bazel command, the PEP 440 local version label and the build id (a hash of
build.json, tfforge.build.document). It never renders or runs.

The target comes from tfforge.build.targets, the source from tfforge.build.source, the docker
command from tfforge.build.dockercmd.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from packaging.version import InvalidVersion, Version

from tfforge.build import document, inputs, toolchains
from tfforge.build.document import WHEEL_NAME
from tfforge.build.source import Source, resolve_source
from tfforge.build.targets import TargetChoice, resolve_target
from tfforge.errors import ConfigError
from tfforge.host import isa
from tfforge.options.typed.enums import BazelProvider, Compiler
from tfforge.options.typed.spec import SpecOptions
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

    def document(self) -> dict[str, Any]:
        """build.json without the id and the docker command (tfforge.build.document)."""
        return document.document(self)

    @cached_property
    def build_id(self) -> str:
        """<tf version>-<local label>-<12 hex of sha256 over the canonical document>."""
        return document.build_id(self)


# ---- from options to a spec --------------------------------------------------------------
def _major(version: str | None) -> str:
    return (version or "").split(".")[0]


def gcc_package_suffix(gcc_version: str) -> str:
    """Debian/Ubuntu name GCC packages by major version (gcc-12), before GCC 5 by X.Y."""
    parts = gcc_version.split(".")
    return parts[0] if int(parts[0]) >= 5 else ".".join(parts[:2])


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


def _blame(exc: ConfigError, opts: SpecOptions, name: str) -> ConfigError:
    """`exc` (whose message already names `opts.where(name)`) with the option and its origin."""
    if exc.option is None:
        exc.option, exc.origin = name, opts.origin(name)
    return exc


def _compilers(opts: SpecOptions, tc: toolchains.Toolchain) -> tuple[str, str | None]:
    """(GCC version, Clang version or None): given, the image's, or the release's own."""
    base = opts.base_image
    gcc_version = (
        opts.build_gcc_version
        or (gcc_for_image(tc, base) if base else None)
        or default_gcc_version(tc)
    )
    clang_version = None
    if opts.compiler == Compiler.CLANG:
        clang_version = opts.clang_version or tc.official_compiler_version
    if opts.mkl and opts.compiler == Compiler.GCC and Version(gcc_version) < Version(MKL_MIN_GCC):
        given = opts.build_gcc_version
        which = f"{opts.where('build_gcc_version')} is" if given else "the release's GCC is"
        raise ConfigError(
            f"--mkl needs GCC >= {MKL_MIN_GCC} (oneDNN); {which} {gcc_version}: "
            f"pick {MKL_MIN_GCC} or newer",
            option="build_gcc_version",
            origin=opts.origin("build_gcc_version"),
        )
    return gcc_version, clang_version


def _base_image(
    opts: SpecOptions, compiler: Compiler, major: int, warnings: list[str]
) -> tuple[str, bool, toolchains.BaseImage | None]:
    choice = None
    base_image = opts.base_image
    if not base_image:
        choice = toolchains.base_image_for(compiler.value, major)
        if choice is None:
            raise ConfigError(
                f"no base image in {toolchains.DATA_FILE} ships {compiler}-{major}; "
                "pass --base-image with an image that does"
            )
        base_image = choice.ref
    try:
        pinned = inputs.check_image_ref(base_image, opts.where("base_image"))
    except ConfigError as exc:
        raise _blame(exc, opts, "base_image") from None
    if not pinned:
        warnings.append(
            f"base image {base_image} is not pinned by digest; recorded as "
            "unpinned (the build repeats only while that image stays the same)"
        )
    return base_image, pinned, choice


def _bazel_version(opts: SpecOptions, tc: toolchains.Toolchain, warnings: list[str]) -> str:
    provider = opts.bazel_provider
    if provider == BazelProvider.BAZELISK:
        return tc.bazel
    if provider == BazelProvider.DEBIAN:
        version = toolchains.pins().debian_bazel_version
        warnings.append(
            f"bazel provider 'debian' gives Bazel {version}; TensorFlow "
            f"{tc.tf_version} pins {tc.bazel}: fine for small test workspaces, a "
            "real TensorFlow tree needs the bazelisk provider"
        )
        return version
    warnings.append(
        f"bazel provider 'image' uses whatever Bazel the base image has; "
        f"TensorFlow {tc.tf_version} pins {tc.bazel}"
    )
    return "from the base image"


def _remote(opts: SpecOptions, warnings: list[str]) -> tuple[str | None, str | None]:
    cache, executor = opts.remote_cache, opts.remote_executor
    try:
        if cache:
            inputs.check_cache_url(cache, opts.where("remote_cache"))
    except ConfigError as exc:
        raise _blame(exc, opts, "remote_cache") from None
    if executor:
        where = opts.where("remote_executor")
        try:
            inputs.check_cache_url(executor, where)
        except ConfigError as exc:
            raise _blame(exc, opts, "remote_executor") from None
        if urlsplit(executor).scheme not in ("grpc", "grpcs"):
            raise ConfigError(
                f"{where} {inputs.short(executor)}: Bazel's remote execution speaks gRPC; "
                "use grpc:// or grpcs://",
                option="remote_executor",
                origin=opts.origin("remote_executor"),
            )
        warnings.append(
            "remote execution is rendered but untested here (no REAPI worker on "
            "these machines); the build falls back to local execution when the "
            "executor cannot run an action (--remote_local_fallback)"
        )
    return cache, executor


def make(opts: SpecOptions) -> BuildSpec:
    """A validated BuildSpec from a build's typed options, or ConfigError on the first bad one."""
    warnings: list[str] = []
    tc = toolchains.toolchain(opts.tf_version.strip())
    try:
        python_version = inputs.check_python(
            opts.python_version.strip(), tc, opts.where("python_version")
        )
    except ConfigError as exc:
        raise _blame(exc, opts, "python_version") from None
    compiler = opts.compiler
    gcc_version, clang_version = _compilers(opts, tc)
    cver = gcc_version if compiler == Compiler.GCC else str(clang_version)
    try:
        target = resolve_target(opts, compiler.value, cver, gcc_version)
    except ConfigError as exc:
        raise _blame(exc, opts, "target") from None
    # The release's own compiler range, after the compiler-independent refusals above.
    name = "build_gcc_version" if compiler == Compiler.GCC else "clang_version"
    given = opts.is_set(name)
    shown = f"{opts.where(name)} {cver}" if given else f"--{compiler}-version {cver}"
    toolchains.check_compiler(tc, compiler.value, int(_major(cver)), shown)
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
    base_image, pinned, choice = _base_image(opts, compiler, int(_major(cver)), warnings)
    bazel_version = _bazel_version(opts, tc, warnings)
    try:
        bazel_args = inputs.check_bazel_args(opts.bazel_args, opts.where("bazel_args"))
    except ConfigError as exc:
        raise _blame(exc, opts, "bazel_args") from None
    remote_cache, remote_executor = _remote(opts, warnings)
    try:
        source = resolve_source(opts.source_dir, tc, opts.where("source_dir"))
    except ConfigError as exc:
        raise _blame(exc, opts, "source_dir") from None
    spec = BuildSpec(
        tf_version=tc.tf_version,
        python_version=python_version,
        toolchain=tc,
        target=target,
        mkl=opts.mkl,
        compiler=compiler,
        gcc_version=gcc_version,
        clang_version=clang_version,
        base_image=base_image,
        base_image_pinned=pinned,
        base_image_choice=choice,
        source=source,
        bazel_provider=opts.bazel_provider,
        bazel_version=bazel_version,
        bazel_args=bazel_args,
        remote_cache=remote_cache,
        source_date_epoch=opts.source_date_epoch,
        warnings=tuple(warnings),
        remote_executor=remote_executor,
    )
    check_tokens(spec)
    return spec


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
        ]
    )
