"""tfforge tasks: each parses flags and calls one command in tfforge/commands/ through `run`.

Run `invoke --list` for the tasks and `invoke --help TASK` for their flags. Commands are
imported inside the tasks, so `invoke --list` and each task load only what they use. Defaults
shown in the help come from tfforge/data/defaults.toml (tfforge.toml and TFFORGE_* override).
"""

from tfforge.commands.runner import quit_on_interrupt, run  # noqa: I001 - first: Ctrl-C exits 130

quit_on_interrupt()

from invoke import task  # noqa: E402

from tfforge.settings import defaults as _defaults  # noqa: E402

_DEFAULTS = _defaults()


def _default(key: str, empty: str = "") -> str:
    """'(default: VALUE)' for a help text, VALUE read from defaults.toml; `empty` explains ""."""
    value = _DEFAULTS[key]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"(default: {empty if value == '' and empty else value})"


# ---- detect / match (issue 2) -------------------------------------------------------------
@task(
    help={
        "json": "print one JSON document instead of tables",
        "save": "write a host snapshot to this path (e.g. hosts/web-1.json)",
        "cpuinfo": "analyse a saved /proc/cpuinfo text from another machine instead of this host",
        "gcc_version": f"GCC version the recommended flags are for {_default('gcc_version')}",
        "no_tf": "skip probing the installed TensorFlow",
        "debug": "show a traceback on errors",
    }
)
def detect(c, json=False, save=None, cpuinfo=None, gcc_version=None, no_tf=False, debug=False):
    """What this CPU supports, what the installed TensorFlow uses, and the build target for it."""
    from tfforge.commands import detect as report

    run(
        report.detect_command,
        as_json=json,
        save=save,
        cpuinfo=cpuinfo,
        gcc_version=gcc_version,
        probe_tf=not no_tf,
        debug=debug,
    )


@task(
    help={
        "hosts": "host files: a folder (e.g. hosts/), a glob, or a comma-separated list of "
        "snapshots (.json from detect --save) and raw /proc/cpuinfo copies",
        "json": "print one JSON document instead of a table",
        "gcc_version": f"GCC version the recommended flags are for {_default('gcc_version')}",
        "require": "comma-separated features the target must have (e.g. avx512_vnni); "
        "fails listing the hosts that lack them",
        "debug": "show a traceback on errors",
    }
)
def match(c, hosts, json=False, gcc_version=None, require=None, debug=False):
    """The best build target every host in a fleet can run, and why others are refused."""
    from tfforge.commands import match as match_mod

    run(
        match_mod.match_command,
        hosts,
        as_json=json,
        gcc_version=gcc_version,
        require=require,
        debug=debug,
    )


# ---- render / build (issues 3, 4) ---------------------------------------------------------
from tfforge.host import isa as _isa  # noqa: E402 - the titles in the feature flags' help

# Boolean feature flags (invoke spells sse4_2 as --sse4-2); any other feature: --feature NAME.
_FEATURE_FLAGS = (
    "sse3",
    "ssse3",
    "sse4_1",
    "sse4_2",
    "popcnt",
    "avx",
    "f16c",
    "fma",
    "avx2",
    "bmi1",
    "bmi2",
    "avx512f",
    "avx512cd",
    "avx512bw",
    "avx512dq",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "avx_vnni",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
)
_SPEC_HELP = {
    "tf_version": "TensorFlow release to build, one pinned in tfforge/data/toolchains.toml "
    + _default("tf_version"),
    "python_version": f"Python the wheel is for {_default('python_version')}",
    "target": "archspec name (haswell, skylake_avx512, zen3 ...), psABI level (x86-64-v3) "
    "or 'host' for this machine",
    "host": "host snapshot (detect --save JSON or raw cpuinfo) or a folder of them; repeat for "
    "a fleet: the best target all of them run",
    "feature": "ISA feature to target by name (e.g. sha_ni); repeatable, like the boolean "
    "feature flags",
    "mkl": "build with --config=mkl (oneDNN with OpenMP threading; needs GCC >= 6.2)",
    "compiler": f"gcc (TF_NEED_CLANG=0) or clang {_default('compiler')}",
    "gcc_version": "GCC version to install and require in the image (default: the release "
    "recipe's, e.g. 13.3.0 for 2.18+; refused outside the recipe's range)",
    "clang_version": "Clang version with --compiler clang "
    + _default("clang_version", "TensorFlow's official one"),
    "base_image": "base image; an image without @sha256 is allowed and recorded as unpinned "
    "(default: the digest-pinned Debian image shipping the compiler: bookworm "
    "or trixie)",
    "source_dir": "local TensorFlow source folder to build "
    + _default("source_dir", "clone the pinned tag"),
    "bazel_provider": "bazelisk (pinned download), debian (bazel-bootstrap) or image "
    + _default("bazel_provider"),
    "bazel_arg": "extra bazel build flag, --name or --name=value; repeatable",
    "remote_cache": "Bazel remote cache URL (http, https, grpc, grpcs; no credentials: give "
    "them in TFFORGE_REMOTE_HEADER or TFFORGE_REMOTE_NETRC_FILE at build time) "
    + _default("remote_cache", "none"),
    "remote_executor": "Bazel remote executor URL (grpc, grpcs); rendered, untested here "
    + _default("remote_executor", "none"),
    "json": "print one JSON document",
    "debug": "show a traceback on errors",
    **{
        f: f"target {_isa.title(_isa.canonical(f))} (implied features are added and reported)"
        for f in _FEATURE_FLAGS
    },
}


def _spec_cli(given: dict) -> dict:
    """The spec options from a render/build task's arguments (None = not given)."""
    features = [f for f in _FEATURE_FLAGS if given[f]] + list(given["feature"] or [])
    return {
        "tf_version": given["tf_version"],
        "python_version": given["python_version"],
        "target": given["target"],
        "hosts": list(given["host"] or []) or None,
        "features": features or None,
        "mkl": True if given["mkl"] else None,
        "compiler": given["compiler"],
        "gcc_version": given["gcc_version"],
        "clang_version": given["clang_version"],
        "base_image": given["base_image"],
        "source_dir": given["source_dir"],
        "bazel_provider": given["bazel_provider"],
        "bazel_args": list(given["bazel_arg"] or []) or None,
        "remote_cache": given["remote_cache"],
        "remote_executor": given["remote_executor"],
    }


# auto_shortflags=False: invoke would otherwise invent -1, -2 ... for the feature flags.
@task(iterable=["host", "feature", "bazel_arg"], help=_SPEC_HELP, auto_shortflags=False)
def render(
    c,
    tf_version=None,
    python_version=None,
    target=None,
    host=None,
    feature=None,
    mkl=False,
    compiler=None,
    gcc_version=None,
    clang_version=None,
    base_image=None,
    source_dir=None,
    bazel_provider=None,
    bazel_arg=None,
    remote_cache=None,
    remote_executor=None,
    sse3=False,
    ssse3=False,
    sse4_1=False,
    sse4_2=False,
    popcnt=False,
    avx=False,
    f16c=False,
    fma=False,
    avx2=False,
    bmi1=False,
    bmi2=False,
    avx512f=False,
    avx512cd=False,
    avx512bw=False,
    avx512dq=False,
    avx512vl=False,
    avx512_vnni=False,
    avx512_bf16=False,
    avx512_fp16=False,
    avx_vnni=False,
    amx_tile=False,
    amx_int8=False,
    amx_bf16=False,
    json=False,
    debug=False,
):
    """Render a pinned, reproducible build context into builds/<id>/ (Dockerfile, build.json)."""
    from tfforge.commands import build

    run(build.render_command, _spec_cli(locals()), as_json=json, debug=debug)


@task(
    iterable=["host", "feature", "bazel_arg"],
    auto_shortflags=False,
    help={
        **_SPEC_HELP,
        "dry_run": "render and print the Dockerfile path, docker and bazel commands; run nothing",
        "timeout": "seconds the build may run before it is stopped " + _default("build_timeout"),
        "kit": "build a kit (folder made by `invoke kit`) with no network: its own build, "
        "every input from the kit; the other build options are not given",
        "mirror": "fetch Bazel's downloads through this mirror (host/path layout, e.g. "
        "http://127.0.0.1:8081); not part of the build id " + _default("mirror", "none"),
    },
)
def build(
    c,
    tf_version=None,
    python_version=None,
    target=None,
    host=None,
    feature=None,
    mkl=False,
    compiler=None,
    gcc_version=None,
    clang_version=None,
    base_image=None,
    source_dir=None,
    bazel_provider=None,
    bazel_arg=None,
    remote_cache=None,
    remote_executor=None,
    sse3=False,
    ssse3=False,
    sse4_1=False,
    sse4_2=False,
    popcnt=False,
    avx=False,
    f16c=False,
    fma=False,
    avx2=False,
    bmi1=False,
    bmi2=False,
    avx512f=False,
    avx512cd=False,
    avx512bw=False,
    avx512dq=False,
    avx512vl=False,
    avx512_vnni=False,
    avx512_bf16=False,
    avx512_fp16=False,
    avx_vnni=False,
    amx_tile=False,
    amx_int8=False,
    amx_bf16=False,
    dry_run=False,
    timeout=None,
    kit=None,
    mirror=None,
    json=False,
    debug=False,
):
    """Build a tuned TensorFlow wheel into wheels/ (renders first; --dry-run prints the plan)."""
    from tfforge.commands import build as build_mod

    run(
        build_mod.build_command,
        _spec_cli(locals()),
        dry_run=dry_run,
        timeout=timeout,
        kit=kit,
        mirror=mirror,
        as_json=json,
        debug=debug,
    )


@task(
    help={
        "image": "base image to look for (default: local/bookworm:base, made by "
        "scripts/make-base-image.sh)",
        "json": "print one JSON document",
        "debug": "show a traceback on errors",
    }
)
def engine(c, image="local/bookworm:base", json=False, debug=False):
    """Which docker client builds use, the engine's version, BuildKit, and the base image."""
    from tfforge.commands import engine as engine_mod

    run(engine_mod.engine_command, image=image, as_json=json, debug=debug)


# ---- rebuild (issue 11) --------------------------------------------------------------------
@task(
    help={
        "build_id": "a finished build's id (a folder in builds/ with provenance.json and apt.lock)",
        "vary": "vary the second build reprotest-style: build path, time zone, locale, umask, host "
        "name, CPU count",
        "timeout": "seconds the rebuild may run (default from config: 21600)",
        "kit": "rebuild from this kit of the build, with no network",
        "json": "print one JSON document",
        "debug": "show a traceback on errors",
    }
)
def rebuild(c, build_id, vary=False, timeout=None, kit=None, json=False, debug=False):
    """Rebuild a build from empty caches and compare with its wheel: exit 0 iff byte-identical."""
    from tfforge.commands import rebuild as rebuild_mod

    run(
        rebuild_mod.rebuild_command,
        build_id,
        vary=vary,
        timeout=timeout,
        kit=kit,
        as_json=json,
        debug=debug,
    )


# ---- kits ----------------------------------------------------------------------------------
@task(
    help={
        "action": "a finished build's id: capture its inputs into a kit; or 'check' (with --kit)",
        "kit": "with check: the kit folder (KITS/BUILD_ID) to hash against its manifest",
        "out": "kits folder; its kits share one content-addressed store "
        + _default("kits_dir", "./kits"),
        "mirror": "fetch Bazel's downloads through this mirror while capturing (host/path "
        "layout) " + _default("mirror", "none"),
        "timeout": "seconds the capture may run " + _default("build_timeout"),
        "json": "print one JSON document",
        "debug": "show a traceback on errors",
    }
)
def kit(c, action, kit=None, out=None, mirror=None, timeout=None, json=False, debug=False):
    """Capture every input of a build into a kit (`kit BUILD_ID`), or check one (`kit check`)."""
    from tfforge.commands import kit as kit_mod

    kwargs = {"as_json": json}
    if action != "check":
        kwargs.update(out=out, mirror=mirror, timeout=timeout)
    run(kit_mod.kit_command, action, kit, debug=debug, **kwargs)


# ---- verify (issue 5) ---------------------------------------------------------------------
@task(
    iterable=["host", "emulate"],
    help={
        "wheel": "the wheel: a .whl path, a file name in wheels/, or a PyPI pin such as "
        "tensorflow-cpu==2.21.0",
        "host": "host snapshot (.json from detect --save) or raw /proc/cpuinfo text to check "
        "against; repeat for a fleet (default: this host)",
        "python": "Python version the wheel must install on, e.g. 3.12 (default: this one)",
        "emulate": "also run TensorFlow from the wheel under qemu-x86_64 -cpu MODEL "
        "(e.g. SandyBridge, IvyBridge, Haswell); repeatable",
        "json": "print one JSON document instead of tables",
        "jobs": "processes scanning libraries in parallel, 0 = one per CPU "
        + _default("verify_jobs"),
        "no_cache": "scan again even when a cached scan of this wheel exists",
        "examples": f"example function names kept per feature {_default('verify_examples')}",
        "debug": "show a traceback on errors",
    },
)
def verify(
    c,
    wheel,
    host=None,
    python=None,
    emulate=None,
    json=False,
    jobs=None,
    no_cache=False,
    examples=None,
    debug=False,
):
    """Prove what a wheel is and which CPUs can run it: structure, provenance, ISA, hosts."""
    from tfforge.commands import verify as verify_cmd

    run(
        verify_cmd.verify_command,
        wheel,
        hosts=list(host or []),
        python=python,
        emulate=list(emulate or []),
        as_json=json,
        jobs=jobs,
        no_cache=no_cache,
        examples=examples,
        debug=debug,
    )


# ---- smoke / bench (issue 6) --------------------------------------------------------------
@task(
    positional=["wheel"],
    help={
        "wheel": "wheel file, name in wheels/ or PyPI pin (tensorflow-cpu==2.21.0); 'current' "
        "= the TensorFlow of the Python running invoke (invoke has no optional "
        "positionals)",
        "golden": "golden file of `word<TAB>phonemes` lines (default: the bundled 1,024 words)",
        "mode": "eager, graph (tf.function), frozen (GraphDef in a Session) or xla "
        + _default("smoke_mode"),
        "batch": f"words per model call {_default('smoke_batch')}",
        "repeat": "timed passes over the golden words; words/s is their median "
        + _default("smoke_repeat"),
        "timeout": f"seconds the probe or the runner may take {_default('smoke_timeout')}",
        "json": "print one JSON document",
        "debug": "show a traceback on errors",
    },
)
def smoke(
    c, wheel, golden=None, mode=None, batch=None, repeat=None, timeout=None, json=False, debug=False
):
    """Install a wheel in its cached venv, import TensorFlow, check g2p on the golden words."""
    from tfforge.commands import smoke as smoke_mod

    run(
        smoke_mod.smoke_command,
        wheel,
        golden=golden,
        mode=mode,
        batch=batch,
        repeat=repeat,
        timeout=timeout,
        as_json=json,
        debug=debug,
    )


@task(
    positional=["wheels"],
    iterable=["wheel"],
    help={
        "wheels": "wheel files, names in wheels/, globs or PyPI pins, comma-separated "
        "(e.g. tensorflow-cpu==2.14.1,intel-tensorflow-avx512==2.14.0)",
        "wheel": "one more wheel spec; repeatable",
        "threads": "comma list of: default (TensorFlow's), 1 (intra=inter=1, OMP_NUM_THREADS=1) "
        + _default("bench_threads"),
        "onednn": f"comma list of TF_ENABLE_ONEDNN_OPTS values {_default('bench_onednn')}",
        "modes": f"comma list of: eager, graph, frozen, xla {_default('bench_modes')}",
        "batches": f"comma list of batch sizes {_default('bench_batches')}",
        "warmup": f"untimed passes before timing {_default('bench_warmup')}",
        "repeat": f"timed passes per configuration {_default('bench_repeat')}",
        "words": f"golden words per pass {_default('bench_words')}",
        "quick": "small preset for tests: threads 1, oneDNN 0,1, graph+frozen, batch 64, "
        "2 passes of 256 words (explicit options win)",
        "reference": "also time g2p-en's numpy model (row g2p-en-numpy)",
        "baseline": "row the speedups are against: 'WHEEL threads=T onednn=N MODE' or words "
        "naming one row (e.g. '2.14.1 threads=default onednn=1 graph'); "
        "default: g2p-en-numpy with --reference, else the first row",
        "out": f"folder for bench.json, bench.md, bench.png {_default('bench_out', './bench')}",
        "timeout": f"seconds one configuration may take {_default('bench_timeout')}",
        "json": "print the results JSON instead of the table",
        "debug": "show a traceback on errors",
    },
)
def bench(
    c,
    wheels,
    wheel=None,
    threads=None,
    onednn=None,
    modes=None,
    batches=None,
    warmup=None,
    repeat=None,
    words=None,
    quick=False,
    reference=False,
    baseline=None,
    out=None,
    timeout=None,
    json=False,
    debug=False,
):
    """Benchmark g2p over wheels x threading x oneDNN x mode x batch; table, JSON and chart."""
    from tfforge.commands import bench as bench_mod

    run(
        bench_mod.bench_command,
        [wheels, *(wheel or [])],
        threads=threads,
        onednn=onednn,
        modes=modes,
        batches=batches,
        warmup=warmup,
        repeat=repeat,
        words=words,
        quick=quick,
        reference=reference,
        baseline=baseline,
        out_dir=out,
        timeout=timeout,
        as_json=json,
        debug=debug,
    )


# ---- index / serve / publish (issue 7) ----------------------------------------------------
@task(
    help={
        "json": "print one JSON document (index path, file:// URL, wheels with sha256)",
        "debug": "show a traceback on errors",
    }
)
def index(c, json=False, debug=False):
    """Write the static PEP 503 + PEP 691 simple index of wheels/ into wheels/simple/."""
    from tfforge.commands import index as index_mod

    run(index_mod.index_command, as_json=json, debug=debug)


@task(
    help={
        "port": f"TCP port on 127.0.0.1 {_default('serve_port')}",
        "htpasswd": "Apache htpasswd file whose users may upload; without it the index is "
        "read-only",
        "json": "print one JSON document (URLs, pid) once the server listens",
        "debug": "show a traceback on errors",
    }
)
def serve(c, port=None, htpasswd=None, json=False, debug=False):
    """Serve wheels/ with pypiserver on 127.0.0.1 until Ctrl-C (a team's quick private index)."""
    from tfforge.commands import serve as serve_mod

    run(serve_mod.serve_command, port=port, htpasswd=htpasswd, as_json=json, debug=debug)


@task(
    iterable=["wheel"],
    auto_shortflags=False,
    help={
        "wheels": "wheel file, glob (quoted, e.g. 'wheels/*.whl') or comma-separated list",
        "wheel": "another wheel file or glob; repeat for more",
        "repository": "upload URL of the index, e.g. http://127.0.0.1:8080/ "
        + _default("publish_repository", "none; TFFORGE_PUBLISH_REPOSITORY"),
        "skip_existing": "leave wheels the index already has instead of failing",
        "timeout": f"seconds one upload may take {_default('publish_timeout')}",
        "json": "print one JSON document with each wheel's sha256 and status",
        "debug": "show a traceback on errors",
    },
)
def publish(
    c,
    wheels,
    wheel=None,
    repository=None,
    skip_existing=False,
    timeout=None,
    json=False,
    debug=False,
):
    """Check wheels (structure, hashes) and upload them with twine.

    Credentials: TWINE_USERNAME and TWINE_PASSWORD, or keyring; never a flag."""
    from tfforge.commands import publish as publish_mod

    run(
        publish_mod.publish_command,
        [wheels, *(wheel or [])],
        repository=repository,
        skip_existing=skip_existing,
        timeout=timeout,
        as_json=json,
        debug=debug,
    )


# ---- matrix / cache (issue 13) ------------------------------------------------------------
@task(
    iterable=["bazel_arg"],
    auto_shortflags=False,
    help={
        "hosts": "host files: a folder, a glob or a comma list of snapshots (as `match` takes)",
        "tf_version": "comma list of TensorFlow releases to build (default from config)",
        "python_version": "comma list of Pythons to build for (default from config)",
        "one": "one build for the whole fleet: the single common target `match` gives",
        "dry_run": "plan only: print the cells, write and run nothing",
        "emit": "write the matrix for an engine: github (strategy.matrix), gitlab "
        "(parallel:matrix) or slurm (sbatch array script)",
        "out": "where --emit writes (default: matrix/tfforge.<format file>)",
        "run": "slurm: submit the array with sbatch, follow it, collect wheels and logs "
        "(assumes the project folder is on storage every node shares)",
        "concurrent": "cells running at once (default from config: 2)",
        "timeout": "seconds one cell's build may take (default from config: 21600)",
        "base_image": _SPEC_HELP["base_image"],
        "source_dir": _SPEC_HELP["source_dir"],
        "bazel_provider": _SPEC_HELP["bazel_provider"],
        "bazel_arg": _SPEC_HELP["bazel_arg"],
        "compiler": _SPEC_HELP["compiler"],
        "gcc_version": _SPEC_HELP["gcc_version"],
        "mkl": _SPEC_HELP["mkl"],
        "remote_cache": _SPEC_HELP["remote_cache"] + "; credentials from TFFORGE_REMOTE_HEADER"
        " or TFFORGE_REMOTE_NETRC_FILE at build time",
        "remote_executor": "Bazel remote executor (grpc[s]://; rendered, untested here)",
        "json": "print one JSON document",
        "debug": "show a traceback on errors",
    },
)
def matrix(
    c,
    hosts,
    tf_version=None,
    python_version=None,
    one=False,
    dry_run=False,
    emit=None,
    out=None,
    run=None,
    concurrent=None,
    timeout=None,
    base_image=None,
    source_dir=None,
    bazel_provider=None,
    bazel_arg=None,
    compiler=None,
    gcc_version=None,
    mkl=False,
    remote_cache=None,
    remote_executor=None,
    json=False,
    debug=False,
):
    """A fleet's build matrix: one build per best target (x TF x Python); emit it or run it."""
    from tfforge.commands import matrix as matrix_mod

    shared = {
        "base_image": base_image,
        "source_dir": source_dir,
        "bazel_provider": bazel_provider,
        "bazel_args": list(bazel_arg or []) or None,
        "compiler": compiler,
        "gcc_version": gcc_version,
        "mkl": True if mkl else None,
        "remote_cache": remote_cache,
        "remote_executor": remote_executor,
    }
    from tfforge.commands import runner  # the `run` flag shadows runner.run here

    runner.run(
        matrix_mod.matrix_command,
        hosts,
        tf_versions=tf_version,
        python_versions=python_version,
        one=one,
        shared=shared,
        emit_format=emit,
        out=out,
        run=run,
        dry_run=dry_run,
        concurrent=concurrent,
        timeout=timeout,
        as_json=json,
        debug=debug,
    )


@task(
    help={
        "action": "serve: run an nginx WebDAV Bazel HTTP cache until Ctrl-C",
        "port": "TCP port (default from config: 9090)",
        "bind": "address to listen on (default from config: 127.0.0.1; see README before "
        "exposing it)",
        "htpasswd": "htpasswd file: clients must send basic auth (TFFORGE_REMOTE_HEADER)",
        "folder": "where the cache lives (default: the tfforge cache folder)",
        "json": "print one JSON document once it listens",
        "debug": "show a traceback on errors",
    }
)
def cache(c, action, port=None, bind=None, htpasswd=None, folder=None, json=False, debug=False):
    """A Bazel remote cache for a team that has none (`invoke cache serve`)."""
    from tfforge.commands import matrix as matrix_mod

    run(
        matrix_mod.cache_command,
        action,
        port=port,
        bind=bind,
        htpasswd=htpasswd,
        folder=folder,
        as_json=json,
        debug=debug,
    )
