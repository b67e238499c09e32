"""tfforge tasks: each parses flags, calls one function in tfforge/, prints the result.

Run `invoke --list` for the tasks and `invoke --help TASK` for their flags.
"""

from tfforge.cli import quit_on_interrupt, run  # noqa: I001 - first: Ctrl-C exits 130 from here

quit_on_interrupt()

from invoke import task  # noqa: E402


# ---- detect / match (issue 2) -------------------------------------------------------------
@task(
    help={
        "json": "print one JSON document instead of tables",
        "save": "write a host snapshot to this path (e.g. hosts/web-1.json)",
        "cpuinfo": "analyse a saved /proc/cpuinfo text from another machine instead of this host",
        "gcc_version": "GCC version the recommended flags are for (default from config)",
        "no_tf": "skip probing the installed TensorFlow",
        "debug": "show a traceback on errors",
    }
)
def detect(c, json=False, save=None, cpuinfo=None, gcc_version=None, no_tf=False, debug=False):
    """What this CPU supports, what the installed TensorFlow uses, and the build target for it."""
    from tfforge.commands import detect as report
    run(report.detect_command, as_json=json, save=save, cpuinfo=cpuinfo,
        gcc_version=gcc_version, probe_tf=not no_tf, debug=debug)


@task(
    help={
        "hosts": "host files: a folder (e.g. hosts/), a glob, or a comma-separated list of "
                 "snapshots (.json from detect --save) and raw /proc/cpuinfo copies",
        "json": "print one JSON document instead of a table",
        "gcc_version": "GCC version the recommended flags are for (default from config)",
        "require": "comma-separated features the target must have (e.g. avx512_vnni); "
                   "fails listing the hosts that lack them",
        "debug": "show a traceback on errors",
    }
)
def match(c, hosts, json=False, gcc_version=None, require=None, debug=False):
    """The best build target every host in a fleet can run, and why others are refused."""
    from tfforge.commands import detect as report
    run(report.match_command, hosts, as_json=json, gcc_version=gcc_version, require=require,
        debug=debug)


# ---- render / build (issues 3, 4) ---------------------------------------------------------
from tfforge.host import isa as _isa  # noqa: E402 - the titles in the feature flags' help

# Boolean feature flags (invoke spells sse4_2 as --sse4-2); any other feature: --feature NAME.
_FEATURE_FLAGS = ("sse3", "ssse3", "sse4_1", "sse4_2", "popcnt", "avx", "f16c", "fma", "avx2",
                  "bmi1", "bmi2", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl",
                  "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile",
                  "amx_int8", "amx_bf16")
_SPEC_HELP = {
    "tf_version": "TensorFlow release to build, one pinned in tfforge/data/toolchains.toml "
                  "(default from config: 2.21.0)",
    "python_version": "Python the wheel is for (default from config: 3.11)",
    "target": "archspec name (haswell, skylake_avx512, zen3 ...), psABI level (x86-64-v3) "
              "or 'host' for this machine",
    "host": "host snapshot (detect --save JSON or raw cpuinfo) or a folder of them; repeat for "
            "a fleet: the best target all of them run",
    "feature": "ISA feature to target by name (e.g. sha_ni); repeatable, like the boolean "
               "feature flags",
    "mkl": "build with --config=mkl (oneDNN with OpenMP threading; needs GCC >= 6.2)",
    "compiler": "gcc (default, TF_NEED_CLANG=0) or clang",
    "gcc_version": "GCC version to install and require in the image (default from config: "
                   "12.2.0)",
    "clang_version": "Clang version with --compiler clang (default: TensorFlow's official one)",
    "base_image": "base image (default: digest-pinned debian:bookworm-slim); an image without "
                  "@sha256 is allowed and recorded as unpinned",
    "source_dir": "local TensorFlow source folder to build (default: clone the pinned tag)",
    "bazel_provider": "bazelisk (pinned download, default), debian (bazel-bootstrap) or image",
    "bazel_arg": "extra bazel build flag, --name or --name=value; repeatable",
    "remote_cache": "Bazel remote cache URL (http, https, grpc, grpcs; no credentials)",
    "json": "print one JSON document",
    "debug": "show a traceback on errors",
    **{f: f"target {_isa.title(_isa.canonical(f))} (implied features are added and reported)"
       for f in _FEATURE_FLAGS},
}


def _spec_cli(given: dict) -> dict:
    """The spec options from a render/build task's arguments (None = not given)."""
    features = [f for f in _FEATURE_FLAGS if given[f]] + list(given["feature"] or [])
    return {"tf_version": given["tf_version"], "python_version": given["python_version"],
            "target": given["target"], "hosts": list(given["host"] or []) or None,
            "features": features or None, "mkl": True if given["mkl"] else None,
            "compiler": given["compiler"], "gcc_version": given["gcc_version"],
            "clang_version": given["clang_version"], "base_image": given["base_image"],
            "source_dir": given["source_dir"], "bazel_provider": given["bazel_provider"],
            "bazel_args": list(given["bazel_arg"] or []) or None,
            "remote_cache": given["remote_cache"]}


# auto_shortflags=False: invoke would otherwise invent -1, -2 ... for the feature flags.
@task(iterable=["host", "feature", "bazel_arg"], help=_SPEC_HELP, auto_shortflags=False)
def render(c, tf_version=None, python_version=None, target=None, host=None, feature=None,
           mkl=False, compiler=None, gcc_version=None, clang_version=None, base_image=None,
           source_dir=None, bazel_provider=None, bazel_arg=None, remote_cache=None,
           sse3=False, ssse3=False, sse4_1=False, sse4_2=False, popcnt=False, avx=False,
           f16c=False, fma=False, avx2=False, bmi1=False, bmi2=False, avx512f=False,
           avx512cd=False, avx512bw=False, avx512dq=False, avx512vl=False, avx512_vnni=False,
           avx512_bf16=False, avx512_fp16=False, avx_vnni=False, amx_tile=False,
           amx_int8=False, amx_bf16=False, json=False, debug=False):
    """Render a pinned, reproducible build context into builds/<id>/ (Dockerfile, build.json)."""
    from tfforge.commands import build
    run(build.render_command, _spec_cli(locals()), as_json=json, debug=debug)


@task(iterable=["host", "feature", "bazel_arg"], auto_shortflags=False,
      help={**_SPEC_HELP,
            "dry_run": "render and print the Dockerfile path, docker and bazel commands; "
                       "run nothing",
            "timeout": "seconds the build may run before it is stopped (default from config: "
                       "21600)"})
def build(c, tf_version=None, python_version=None, target=None, host=None, feature=None,
          mkl=False, compiler=None, gcc_version=None, clang_version=None, base_image=None,
          source_dir=None, bazel_provider=None, bazel_arg=None, remote_cache=None,
          sse3=False, ssse3=False, sse4_1=False, sse4_2=False, popcnt=False, avx=False,
          f16c=False, fma=False, avx2=False, bmi1=False, bmi2=False, avx512f=False,
          avx512cd=False, avx512bw=False, avx512dq=False, avx512vl=False, avx512_vnni=False,
          avx512_bf16=False, avx512_fp16=False, avx_vnni=False, amx_tile=False,
          amx_int8=False, amx_bf16=False, dry_run=False, timeout=None, json=False,
          debug=False):
    """Build a tuned TensorFlow wheel into wheels/ (renders first; --dry-run prints the plan)."""
    from tfforge.commands import build as build_mod
    run(build_mod.build_command, _spec_cli(locals()), dry_run=dry_run, timeout=timeout,
        as_json=json, debug=debug)


@task(help={
    "image": "base image to look for (default: local/bookworm:base, made by "
             "scripts/make-base-image.sh)",
    "json": "print one JSON document",
    "debug": "show a traceback on errors",
})
def engine(c, image="local/bookworm:base", json=False, debug=False):
    """Which docker client builds use, the engine's version, BuildKit, and the base image."""
    from tfforge.docker import engine as engine_mod
    run(engine_mod.engine_command, image=image, as_json=json, debug=debug)


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
        "jobs": "processes scanning libraries in parallel (default: verify_jobs, 0 = per CPU)",
        "no_cache": "scan again even when a cached scan of this wheel exists",
        "examples": "example function names kept per feature (default: verify_examples)",
        "debug": "show a traceback on errors",
    }
)
def verify(c, wheel, host=None, python=None, emulate=None, json=False, jobs=None,
           no_cache=False, examples=None, debug=False):
    """Prove what a wheel is and which CPUs can run it: structure, provenance, ISA, hosts."""
    from tfforge.commands import verify as verify_cmd
    run(verify_cmd.verify_command, wheel, hosts=list(host or []), python=python,
        emulate=list(emulate or []), as_json=json, jobs=jobs, no_cache=no_cache,
        examples=examples, debug=debug)


# ---- smoke / bench (issue 6) --------------------------------------------------------------
@task(
    positional=["wheel"],
    help={
        "wheel": "wheel file, name in wheels/ or PyPI pin (tensorflow-cpu==2.21.0); 'current' "
                 "= the TensorFlow of the Python running invoke (invoke has no optional "
                 "positionals)",
        "golden": "golden file of `word<TAB>phonemes` lines (default: the bundled 1,024 words)",
        "mode": "eager, graph (tf.function, default), frozen (GraphDef in a Session) or xla",
        "batch": "words per model call (default 64)",
        "repeat": "timed passes over the golden words; words/s is their median (default 3)",
        "timeout": "seconds the probe or the runner may take (default 900)",
        "json": "print one JSON document",
        "debug": "show a traceback on errors",
    }
)
def smoke(c, wheel, golden=None, mode=None, batch=None, repeat=None, timeout=None,
          json=False, debug=False):
    """Install a wheel in its cached venv, import TensorFlow, check g2p on the golden words."""
    from tfforge.runtime import smoke as smoke_mod
    run(smoke_mod.smoke_command, wheel, golden=golden, mode=mode, batch=batch, repeat=repeat,
        timeout=timeout, as_json=json, debug=debug)


@task(
    positional=["wheels"],
    iterable=["wheel"],
    help={
        "wheels": "wheel files, names in wheels/, globs or PyPI pins, comma-separated "
                  "(e.g. tensorflow-cpu==2.14.1,intel-tensorflow-avx512==2.14.0)",
        "wheel": "one more wheel spec; repeatable",
        "threads": "comma list of: default (TensorFlow's), 1 (intra=inter=1, OMP_NUM_THREADS=1)",
        "onednn": "comma list of TF_ENABLE_ONEDNN_OPTS values: 0,1",
        "modes": "comma list of: eager, graph, frozen, xla",
        "batches": "comma list of batch sizes (default 1,64)",
        "warmup": "untimed passes before timing (default 1)",
        "repeat": "timed passes per configuration (default 5)",
        "words": "golden words per pass (default 1024)",
        "quick": "small preset for tests: threads 1, oneDNN 0,1, graph+frozen, batch 64, "
                 "2 passes of 256 words (explicit options win)",
        "reference": "also time g2p-en's numpy model (row g2p-en-numpy)",
        "baseline": "row the speedups are against: 'WHEEL threads=T onednn=N MODE' or words "
                    "naming one row (e.g. '2.14.1 threads=default onednn=1 graph'); "
                    "default: g2p-en-numpy with --reference, else the first row",
        "out": "folder for bench.json, bench.md, bench.png (default ./bench)",
        "timeout": "seconds one configuration may take (default 1800)",
        "json": "print the results JSON instead of the table",
        "debug": "show a traceback on errors",
    }
)
def bench(c, wheels, wheel=None, threads=None, onednn=None, modes=None, batches=None,
          warmup=None, repeat=None, words=None, quick=False, reference=False, baseline=None,
          out=None, timeout=None, json=False, debug=False):
    """Benchmark g2p over wheels x threading x oneDNN x mode x batch; table, JSON and chart."""
    from tfforge.runtime import bench as bench_mod
    run(bench_mod.bench_command, [wheels, *(wheel or [])], threads=threads, onednn=onednn,
        modes=modes, batches=batches, warmup=warmup, repeat=repeat, words=words, quick=quick,
        reference=reference, baseline=baseline, out_dir=out, timeout=timeout, as_json=json,
        debug=debug)


# ---- index / serve / publish (issue 7) ----------------------------------------------------
@task(
    help={
        "json": "print one JSON document (index path, file:// URL, wheels with sha256)",
        "debug": "show a traceback on errors",
    }
)
def index(c, json=False, debug=False):
    """Write the static PEP 503 + PEP 691 simple index of wheels/ into wheels/simple/."""
    from tfforge.publish import index as index_mod
    run(index_mod.index_command, as_json=json, debug=debug)


@task(
    help={
        "port": "TCP port on 127.0.0.1 (default from config: 8080)",
        "htpasswd": "Apache htpasswd file whose users may upload; without it the index is "
                    "read-only",
        "json": "print one JSON document (URLs, pid) once the server listens",
        "debug": "show a traceback on errors",
    }
)
def serve(c, port=None, htpasswd=None, json=False, debug=False):
    """Serve wheels/ with pypiserver on 127.0.0.1 until Ctrl-C (a team's quick private index)."""
    from tfforge.publish import index as index_mod
    run(index_mod.serve_command, port=port, htpasswd=htpasswd, as_json=json, debug=debug)


@task(
    iterable=["wheel"],
    auto_shortflags=False,
    help={
        "wheels": "wheel file, glob (quoted, e.g. 'wheels/*.whl') or comma-separated list",
        "wheel": "another wheel file or glob; repeat for more",
        "repository": "upload URL of the index, e.g. http://127.0.0.1:8080/ "
                      "(default from config: publish_repository)",
        "skip_existing": "leave wheels the index already has instead of failing",
        "timeout": "seconds one upload may take (default from config: 3600)",
        "json": "print one JSON document with each wheel's sha256 and status",
        "debug": "show a traceback on errors",
    }
)
def publish(c, wheels, wheel=None, repository=None, skip_existing=False, timeout=None,
            json=False, debug=False):
    """Check wheels (structure, hashes) and upload them with twine.

    Credentials: TWINE_USERNAME and TWINE_PASSWORD, or keyring; never a flag."""
    from tfforge.publish import upload as publish_mod
    run(publish_mod.publish_command, [wheels, *(wheel or [])], repository=repository,
        skip_existing=skip_existing, timeout=timeout, as_json=json, debug=debug)
