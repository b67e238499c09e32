"""The typed options of spec. GENERATED from tfforge/data/options.toml by `python -m
tfforge.options.generate`: edit the data file, then run that (a unit test checks that this file
is current).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tfforge.options.base import Options
from tfforge.options.typed.enums import BazelProvider, Compiler


@dataclass(frozen=True, kw_only=True)
class SpecOptions(Options):
    """The spec options: one group, received whole by the tasks that build from it."""

    # TensorFlow release to build, one pinned in tfforge/data/toolchains.toml
    tf_version: str = "2.21.0"
    # Python the wheel is for (one that TensorFlow release supports)
    python_version: str = "3.11"
    # archspec name (haswell, skylake_avx512, zen3 ...), psABI level (x86-64-v3) or 'host' for this
    # machine
    target: str | None = None
    # host snapshot (detect --save JSON or raw cpuinfo) or a folder of them; repeat for a fleet: the
    # best target all of them run
    hosts: tuple[str, ...] = ()
    # ISA feature to target by name (e.g. sha_ni); repeatable, like the boolean feature flags
    features: tuple[str, ...] = ()
    # build with --config=mkl (oneDNN with OpenMP threading; needs GCC >= 6.2)
    mkl: bool = False
    # gcc (TF_NEED_CLANG=0) or clang
    compiler: Compiler = Compiler.GCC
    # GCC version to install and require in the image; refused outside the release recipe's range
    build_gcc_version: str | None = None
    # Clang version with --compiler clang; refused unless it is the release's own major
    clang_version: str | None = None
    # base image; an image without @sha256 is allowed and recorded as unpinned
    base_image: str | None = None
    # local TensorFlow source folder to build
    source_dir: Path | None = None
    # bazelisk (pinned download), debian (bazel-bootstrap) or image (a Bazel on the image's PATH)
    bazel_provider: BazelProvider = BazelProvider.BAZELISK
    # extra bazel build flag, --name or --name=value; repeatable
    bazel_args: tuple[str, ...] = ()
    # Bazel remote cache URL (http, https, grpc, grpcs; no credentials: give them in
    # TFFORGE_REMOTE_HEADER or TFFORGE_REMOTE_NETRC_FILE at build time)
    remote_cache: str | None = None
    # Bazel remote executor URL (grpc, grpcs); rendered, untested here
    remote_executor: str | None = None
    # the glibc and libstdc++ the wheel must load on: auto (the oldest runtime of the --host
    # snapshots, or of this host with --target host; none without one), a suite of
    # tfforge/data/runtimes.toml (bullseye, bookworm, trixie) or none (whatever the build image
    # links against)
    runtime_floor: str = "auto"
    # SOURCE_DATE_EPOCH inside the build (default 1980-01-01, the earliest time a zip entry can
    # carry)
    source_date_epoch: int = 315532800
