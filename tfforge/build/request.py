"""A build request, the typed spec options of render, build or a matrix cell, made into a
BuildSpec: the GCC or Clang version, the base image, the Bazel provider and the remote cache or
executor it asks for or leaves to the release's recipe, each choice checked, and warnings for
the ones that deserve a second look.

A refused input is one ConfigError whose message names where the value came from
(`opts.where(name)`: the flag, the TFFORGE_* variable or the tfforge.toml key) and which carries
the option and its origin as attributes.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from packaging.version import Version

from tfforge.build import floor as runtime_floor
from tfforge.build import inputs, toolchains
from tfforge.build.source import resolve_source
from tfforge.build.spec import MKL_MIN_GCC, BuildSpec, check_tokens, compiler_major
from tfforge.build.targets import resolve_target
from tfforge.errors import ConfigError
from tfforge.host import cpu, isa
from tfforge.options.typed.enums import BazelProvider, Compiler
from tfforge.options.typed.spec import SpecOptions


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


def _compilers(
    opts: SpecOptions, tc: toolchains.Toolchain, floor_image: toolchains.BaseImage | None
) -> tuple[str, str | None]:
    """(GCC version, Clang version or None): given, the image's (the base image asked for, or
    the one the runtime floor picked), or the release's own."""
    base = opts.base_image or (floor_image.ref if floor_image else None)
    gcc_version = (
        opts.build_gcc_version
        or (gcc_for_image(tc, base) if base else None)
        or default_gcc_version(tc)
    )
    clang_version = None
    if opts.compiler == Compiler.CLANG:
        clang_version = opts.clang_version or toolchains.default_clang_version(tc)
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
    opts: SpecOptions,
    compiler: Compiler,
    major: int,
    warnings: list[str],
    floor_image: toolchains.BaseImage | None,
) -> tuple[str, bool, toolchains.BaseImage | None]:
    choice = floor_image
    base_image = opts.base_image or (floor_image.ref if floor_image else None)
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


# ---- the runtime floor (tfforge/build/floor.py) ---------------------------------------------
Asked = tuple[runtime_floor.Floor, str, tuple[str, ...]]  # floor, request, the hosts it is from


def image_suite(base_image: str, choice: toolchains.BaseImage | None) -> str | None:
    """The Debian suite of the build image when tfforge knows it (its [base_images] entry, a
    local image made by make-base-image.sh, or the suite's name in the reference)."""
    if choice is not None:
        return choice.suite
    for known in toolchains.pins().base_images.values():
        if base_image in (known.ref, known.local) or known.suite in base_image:
            return known.suite
    return next((n for n in runtime_floor.floors() if n in base_image), None)


def requested_floor(opts: SpecOptions) -> Asked | None:
    """(floor, request, hosts it comes from) the options ask for; None for no floor.

    runtime_floor: a suite name; "auto" (the default): the oldest runtime of the --host
    snapshots (or of this host for --target host) when they carry one; "none" or "": none."""
    asked = opts.runtime_floor.strip().lower() or runtime_floor.NONE
    if asked == runtime_floor.NONE:
        return None
    if asked != runtime_floor.AUTO:
        try:
            return runtime_floor.floor(asked, source=opts.where("runtime_floor")), asked, ()
        except ConfigError as exc:
            raise _blame(exc, opts, "runtime_floor") from None
    files = [h for h in opts.hosts if h.strip()]
    if files:
        try:
            profiles = cpu.load_hosts(files, option=opts.where("hosts"))
        except ConfigError as exc:
            raise _blame(exc, opts, "hosts") from None
    elif (opts.target or "").strip().lower() == "host":
        profiles = [cpu.detect_host()]
    else:
        return None
    try:
        fl = runtime_floor.fleet_runtime(profiles).floor()
    except ConfigError as exc:
        raise _blame(exc, opts, "runtime_floor") from None
    if fl is None:
        return None
    return fl, asked, tuple(h.name for h in profiles if h.runtime is not None)


def floor_base_image(
    opts: SpecOptions, asked: Asked | None, tc: toolchains.Toolchain
) -> toolchains.BaseImage | None:
    """The base route: a known image at or below the floor shipping a GCC the recipe accepts,
    when the options leave the image and GCC to tfforge and the recipe's default image would be
    newer than the floor; None otherwise."""
    if asked is None or opts.compiler != Compiler.GCC or opts.build_gcc_version or opts.base_image:
        return None
    default = toolchains.base_image_for("gcc", tc.gcc_default)
    if default is not None and runtime_floor.within(default.suite, asked[0]):
        return None  # the recipe's own default image is within the floor
    images = toolchains.pins().base_images
    suite = runtime_floor.base_for(asked[0], tc.gcc, [i.suite for i in images.values()])
    return next((i for i in images.values() if i.suite == suite), None)


def resolve_floor(
    asked: Asked | None,
    tc: toolchains.Toolchain,
    compiler: Compiler,
    cver: str,
    python_version: str,
    base_image: str,
    choice: toolchains.BaseImage | None,
) -> runtime_floor.FloorPlan | None:
    """The route to the requested floor for this build image and compiler."""
    if asked is None:
        return None
    fl, request, hosts = asked
    lo, hi = tc.gcc if compiler == Compiler.GCC else tc.clang
    return runtime_floor.plan(
        fl,
        request=request,
        hosts=hosts,
        build_suite=image_suite(base_image, choice),
        compiler=compiler.value,
        compiler_major=int(compiler_major(cver) or 0),
        recipe_range=(lo, hi),
        python_version=python_version,
    )


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
    asked = requested_floor(opts)
    floor_image = floor_base_image(opts, asked, tc)
    gcc_version, clang_version = _compilers(opts, tc, floor_image)
    cver = gcc_version if compiler == Compiler.GCC else str(clang_version)
    try:
        target = resolve_target(opts, compiler.value, cver, gcc_version)
    except ConfigError as exc:
        raise _blame(exc, opts, "target") from None
    # The release's own compiler range, after the compiler-independent refusals above.
    name = "build_gcc_version" if compiler == Compiler.GCC else "clang_version"
    given = opts.is_set(name)
    shown = f"{opts.where(name)} {cver}" if given else f"--{compiler}-version {cver}"
    toolchains.check_compiler(tc, compiler.value, int(compiler_major(cver)), shown)
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
    base_image, pinned, choice = _base_image(
        opts, compiler, int(compiler_major(cver)), warnings, floor_image
    )
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
    plan = resolve_floor(asked, tc, compiler, cver, python_version, base_image, choice)
    if plan is not None and plan.route == "sysroot":
        warnings.append(f"runtime floor {plan.floor.name}: {plan.why}")
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
        floor=plan,
    )
    check_tokens(spec)
    return spec
