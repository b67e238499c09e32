# tfforge build 2.19.0-x86.64.v3-85f207bcfb92
# Generated from templates/Dockerfile.j2; the inputs and exact commands are in build.json.
# Build it from the project root:
#   DOCKER_BUILDKIT=1 /usr/bin/docker build --progress=plain --target export --output type=local,dest=builds/2.19.0-x86.64.v3-85f207bcfb92/.export builds/2.19.0-x86.64.v3-85f207bcfb92

# ---- toolchain: base image, compiler, Python, git, Bazel (image), non-root user
FROM debian:trixie-slim@sha256:d7e12182ce18b85b93007c1dedf31f2d29e01ccf3182cc4017c709b6259bc132 AS toolchain
ARG DEBIAN_FRONTEND=noninteractive
# ---- apt lock (tfforge rebuild): apt-pins is empty in an ordinary build, which then records
# every installed package (the base image's too) in /etc/tfforge-apt.lock, exported as
# builds/<id>/apt.lock; a rebuild fills apt-pins from it and must install exactly those versions.
# ---- kit (tfforge build --kit): TFFORGE_KIT is unset in an ordinary build and kit/ is empty; a
# kit build runs with no network and takes every input from kit/: the Debian packages of
# apt.lock (a local repository), the source, bazelisk and Bazel, Bazel's repository cache.
ARG TFFORGE_KIT
COPY apt-pins /tmp/tfforge-apt-pins
RUN --mount=type=bind,source=kit,target=/tmp/tfforge-kit \
    if [ -n "$TFFORGE_KIT" ]; then export APT_CONFIG=/tmp/tfforge-kit/debs/apt.conf; fi \
 && apt-get update \
 && for p in clang-18 lld-18; do \
      apt-cache show "$p" >/dev/null 2>&1 || { echo "tfforge: the base image's archive has no package $p; pick a compiler version it ships or another --base-image" >&2; exit 1; }; \
    done \
 && if [ -s /tmp/tfforge-apt-pins ]; then \
      grep -v '^#' /tmp/tfforge-apt-pins | sort > /tmp/tfforge-pins; \
      apt-get install -y --no-install-recommends --allow-downgrades $(cat /tmp/tfforge-pins) 2>/tmp/tfforge-apt.err \
      || { cat /tmp/tfforge-apt.err >&2; \
           gone="$(sed -n "s/^E: Version '\(.*\)' for '\(.*\)' was not found$/\2=\1/p; s/^E: Unable to locate package \(.*\)$/\1/p" /tmp/tfforge-apt.err | paste -sd ' ' -)"; \
           when="$(sed -n 's/^# archive-date: //p' /tmp/tfforge-apt-pins)"; \
           echo "tfforge: the Debian archive no longer has the locked package version(s) ${gone:-(see apt's error above)}; apt.lock was recorded from the archive of ${when:-an unknown date}: get them from Debian's snapshot archive, https://snapshot.debian.org/archive/debian/${when:-YYYYMMDDTHHMMSSZ}/ (add it to the base image's apt sources)" >&2; exit 1; }; \
    else \
      apt-get install -y --no-install-recommends ca-certificates clang-18 git lld-18 patch patchelf python3 python3-dev unzip zip; \
    fi \
 && when="$(for f in /var/lib/apt/lists/*Release; do [ -f "$f" ] || continue; date -u -d "$(sed -n 's/^Date: //p' "$f")" +%Y%m%dT%H%M%SZ; done | sort | tail -n 1)" \
 && { echo "# archive-date: ${when:-$(sed -n 's/^# archive-date: //p' /tmp/tfforge-apt-pins)}"; \
      dpkg-query -W -f='${db:Status-Abbrev} ${Package}=${Version}\n' | awk '$1 == "ii" {print $2}' | sort; } > /etc/tfforge-apt.lock \
 && if [ -s /tmp/tfforge-apt-pins ] && ! grep -v '^#' /etc/tfforge-apt.lock | cmp -s - /tmp/tfforge-pins; then \
      grep -v '^#' /etc/tfforge-apt.lock | diff /tmp/tfforge-pins - >&2; \
      echo "tfforge: the installed packages differ from apt.lock (lines above: < locked, > installed)" >&2; exit 1; \
    fi \
 && rm -rf /var/lib/apt/lists/* \
 && dpkg-query -W ca-certificates clang-18 git lld-18 patch patchelf python3 python3-dev unzip zip
RUN have="$(clang-18 -dumpversion)" \
 && if ! dpkg --compare-versions "$have" ge "18"; then \
      echo "tfforge: clang-18 is $have, older than the required 18; use --clang-version $have or a base image with a newer compiler" >&2; exit 1; \
    fi \
 && echo "tfforge: clang-18 $have (required >= 18)"
RUN command -v bazel >/dev/null \
 || { echo "tfforge: bazel provider 'image' but the base image has no bazel on PATH; use --bazel-provider bazelisk" >&2; exit 1; }
RUN groupadd --gid 10001 builder \
 && useradd --uid 10001 --gid 10001 --create-home --shell /bin/sh builder \
 && install -d -o builder -g builder /dist
USER builder
ENV HOME=/home/builder
WORKDIR /home/builder
RUN bazel --version

# ---- source: the pinned tag v2.19.0, its commit verified
FROM toolchain AS source
ARG TFFORGE_KIT
RUN --mount=type=bind,source=kit,target=/tmp/tfforge-kit \
    if [ -n "$TFFORGE_KIT" ]; then mkdir /home/builder/src && tar -xf /tmp/tfforge-kit/source.tar -C /home/builder/src; \
    else git -c advice.detachedHead=false clone --quiet --depth 1 --branch v2.19.0 https://github.com/tensorflow/tensorflow.git /home/builder/src; fi \
 && got="$(git -C /home/builder/src rev-parse HEAD)" \
 && if [ "$got" != "e36baa302922ea3c7131b302c2996bd2051ee5c4" ]; then \
      echo "tfforge: tag v2.19.0 is commit $got, expected e36baa302922ea3c7131b302c2996bd2051ee5c4 (tfforge/data/toolchains.toml); refusing to build" >&2; exit 1; \
    fi \
 && echo "tfforge: v2.19.0 is e36baa302922ea3c7131b302c2996bd2051ee5c4"
# the tree against the recipe (.bazelversion, wheel target, configs, hermetic toolchain,
# version type) and the release's official wheels (version file, clang major, the clang flags
# of its release config): seconds here instead of a failure hours into the compile
COPY clone_check.py /usr/local/share/tfforge/clone_check.py
RUN python3 /usr/local/share/tfforge/clone_check.py --root /home/builder/src --target //tensorflow/tools/pip_package:wheel --version 2.19.0 --clang-major 18 --clang-arg=--copt=-Wno-gnu-offsetof-extensions --clang-arg=--copt=-Wno-error=array-parameter --clang-arg=--copt=-Wno-error=unused-command-line-argument --clang-arg=--linkopt=-fuse-ld=lld --clang-arg=--linkopt=-lm --clang-arg=--linkopt=-Wl,--undefined-version

# ---- build: configure without questions, bazel build, wheel(s) into /dist
# compiler: clang 18 from the image, chosen by ./configure (TF_NEED_CLANG=1)
FROM source AS build
WORKDIR /home/builder/src
ENV PYTHON_BIN_PATH="/usr/bin/python3" \
    USE_DEFAULT_PYTHON_LIB_PATH="1" \
    TF_NEED_CLANG="1" \
    CLANG_COMPILER_PATH="/usr/lib/llvm-18/bin/clang" \
    CC_OPT_FLAGS="-march=x86-64-v3 -mtune=generic -Wno-sign-compare" \
    TF_NEED_CUDA="0" \
    TF_NEED_ROCM="0" \
    TF_NEED_TENSORRT="0" \
    TF_SET_ANDROID_WORKSPACE="0" \
    TF_CONFIGURE_IOS="0" \
    TF_DOWNLOAD_CLANG="0" \
    TF_NEED_MPI="0" \
    TF_NEED_OPENCL="0" \
    TF_ENABLE_XLA="1" \
    SOURCE_DATE_EPOCH="315532800"
# ---- rebuild variations (tfforge rebuild): all unset in an ordinary build. TFFORGE_FRESH: a new
# Bazel output root and no disk/remote cache; TFFORGE_CPUS: CPUs Bazel may use; TFFORGE_UMASK.
ARG TFFORGE_FRESH
ARG TFFORGE_CPUS
# ---- kit and mirror (tfforge build --kit / --mirror), unset in an ordinary build: TFFORGE_KIT
# reads Bazel's downloads from the kit's repository cache only (first proving the step cannot
# reach TFFORGE_KIT_PROBES, where the kit's files were captured from), pip only from the kit's
# wheels; TFFORGE_MIRROR fetches every download through a mirror with the host/path layout
# (Bazel's downloader config; pip's index at MIRROR/pypi.org/simple).
ARG TFFORGE_KIT
ARG TFFORGE_KIT_PROBES
ARG TFFORGE_MIRROR
ARG TFFORGE_UMASK
ARG TZ
ARG LC_ALL
ARG HOSTNAME
RUN ./configure < /dev/null
RUN --mount=type=cache,id=tfforge-bazel-10001,target=/home/builder/.cache/bazel,uid=10001,gid=10001,sharing=locked \
    --mount=type=bind,source=kit,target=/tmp/tfforge-kit,rw \
    --mount=type=secret,id=tfforge_remote_header,target=/run/secrets/tfforge_remote_header,uid=10001,gid=10001,mode=0400 \
    --mount=type=secret,id=tfforge_netrc,target=/run/secrets/tfforge_netrc,uid=10001,gid=10001,mode=0400 \
    set --; tfforge_remote="--remote_cache=grpcs://cache.example.com:9092"; \
    if ! python3 -c "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 5)" cache.example.com 9092 2>/dev/null; then \
      echo "tfforge: warning: remote cache cache.example.com:9092 is not reachable from the build; building locally without it" >&2; tfforge_remote=""; \
    else \
      if [ -s /run/secrets/tfforge_remote_header ]; then set -- "--remote_header=$(cat /run/secrets/tfforge_remote_header)"; fi; \
      if [ -s /run/secrets/tfforge_netrc ]; then export NETRC=/run/secrets/tfforge_netrc; fi; \
    fi; \
    umask "${TFFORGE_UMASK:-0022}" \
 && { if [ -n "$TFFORGE_FRESH" ]; then echo "startup --output_user_root=/tmp/tfforge-fresh"; fi; \
      if [ -n "$TFFORGE_MIRROR" ]; then echo "build --experimental_downloader_config=/tmp/tfforge-downloader.cfg --repo_env=PIP_INDEX_URL=$TFFORGE_MIRROR/pypi.org/simple --repo_env=RULES_PYTHON_PIP_ISOLATED=0"; fi; \
      if [ -n "$TFFORGE_KIT" ]; then echo "build --repository_cache=/tmp/tfforge-kit/repository_cache"; fi; \
      if [ -n "$TFFORGE_KIT" ] && [ -d /tmp/tfforge-kit/pypi ]; then echo "build --repo_env=PIP_NO_INDEX=1 --repo_env=PIP_FIND_LINKS=/tmp/tfforge-kit/pypi --repo_env=RULES_PYTHON_PIP_ISOLATED=0"; fi; \
    } > "$HOME/.bazelrc" \
 && if [ -n "$TFFORGE_MIRROR" ]; then printf 'rewrite (.*) %s/$1\n' "$TFFORGE_MIRROR" > /tmp/tfforge-downloader.cfg; fi \
 && if [ -n "$TFFORGE_KIT" ]; then \
      for end in $TFFORGE_KIT_PROBES; do \
        if python3 -c "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 5)" "${end%:*}" "${end##*:}" 2>/dev/null; then \
          echo "tfforge: kit build: this step reached $end, where the kit was captured from; a kit build must have no network" >&2; exit 1; \
        fi; \
        echo "tfforge: kit build: $end is unreachable from this step, as it must be"; \
      done; \
      echo "tfforge: kit build: network interfaces: $(ls /sys/class/net | tr '\n' ' ')"; \
    fi \
 && ${TFFORGE_CPUS:+taskset -c 0-$((TFFORGE_CPUS - 1))} bazel build \
      --config=opt \
      --copt=-march=x86-64-v3 \
      --copt=-mtune=generic \
      --action_env=SOURCE_DATE_EPOCH=315532800 \
      --disk_cache=/home/builder/.cache/bazel/disk \
      --nostamp \
      --action_env=PYTHONHASHSEED=0 \
      --copt=-ffile-prefix-map=/home/builder/.cache/bazel=/bazel \
      --copt=-ffile-prefix-map=/tmp/tfforge-fresh=/bazel \
      $tfforge_remote \
      "$@" \
      --repo_env=HERMETIC_PYTHON_VERSION=3.11 \
      --repo_env=TF_PYTHON_VERSION=3.11 \
      --repo_env=WHEEL_NAME=tensorflow_cpu \
      --copt=-Wno-gnu-offsetof-extensions \
      --copt=-Wno-error=array-parameter \
      --copt=-Wno-error=unused-command-line-argument \
      --linkopt=-fuse-ld=lld \
      --linkopt=-lm \
      --linkopt=-Wl,--undefined-version \
      ${TFFORGE_FRESH:+--disk_cache= --remote_cache=} \
      //tensorflow/tools/pip_package:wheel \
 && cp bazel-bin/tensorflow/tools/pip_package/wheel_house/*.whl /dist/ \
 && if ! ls /dist/*.whl >/dev/null 2>&1; then echo "tfforge: the build produced no wheel" >&2; exit 1; fi \
 && bazel shutdown
COPY build.json /dist/build.json

# ---- export: only the wheel(s) and build.json
FROM scratch AS export
COPY --from=build /dist/ /
COPY --from=toolchain /etc/tfforge-apt.lock /apt.lock

# ---- kit capture (tfforge kit): never part of a build; `invoke kit` exports the `kitexport`
# target with the network on: the Debian packages of apt.lock the base image lacks, and every
# download Bazel's repository rules make for the wheel target (a fresh repository cache), with
# the list of repository rules that asked for them.
FROM debian:trixie-slim@sha256:d7e12182ce18b85b93007c1dedf31f2d29e01ccf3182cc4017c709b6259bc132 AS kitdebs
COPY kit-capture/apt.lock /tmp/tfforge-kit-apt.lock
RUN dpkg-query -W -f='${db:Status-Abbrev} ${Package}=${Version}\n' | awk '$1 == "ii" {print $2}' | LC_ALL=C sort > /tmp/tfforge-base.lock \
 && grep -v '^#' /tmp/tfforge-kit-apt.lock | LC_ALL=C sort | LC_ALL=C comm -23 - /tmp/tfforge-base.lock > /tmp/tfforge-want \
 && apt-get update \
 && install -d /tmp/tfforge-kitdebs && cd /tmp/tfforge-kitdebs \
 && if [ -s /tmp/tfforge-want ]; then apt-get download $(cat /tmp/tfforge-want); fi \
 && rm -rf /var/lib/apt/lists/*

FROM source AS kitfetch
WORKDIR /home/builder/src
ENV PYTHON_BIN_PATH="/usr/bin/python3" \
    USE_DEFAULT_PYTHON_LIB_PATH="1" \
    TF_NEED_CLANG="1" \
    CLANG_COMPILER_PATH="/usr/lib/llvm-18/bin/clang" \
    CC_OPT_FLAGS="-march=x86-64-v3 -mtune=generic -Wno-sign-compare" \
    TF_NEED_CUDA="0" \
    TF_NEED_ROCM="0" \
    TF_NEED_TENSORRT="0" \
    TF_SET_ANDROID_WORKSPACE="0" \
    TF_CONFIGURE_IOS="0" \
    TF_DOWNLOAD_CLANG="0" \
    TF_NEED_MPI="0" \
    TF_NEED_OPENCL="0" \
    TF_ENABLE_XLA="1" \
    SOURCE_DATE_EPOCH="315532800"
ARG TFFORGE_MIRROR
RUN ./configure < /dev/null
RUN { echo "startup --output_user_root=/tmp/tfforge-kitroot"; \
      if [ -n "$TFFORGE_MIRROR" ]; then echo "build --experimental_downloader_config=/tmp/tfforge-downloader.cfg --repo_env=PIP_INDEX_URL=$TFFORGE_MIRROR/pypi.org/simple --repo_env=RULES_PYTHON_PIP_ISOLATED=0"; fi; \
    } > "$HOME/.bazelrc" \
 && if [ -n "$TFFORGE_MIRROR" ]; then printf 'rewrite (.*) %s/$1\n' "$TFFORGE_MIRROR" > /tmp/tfforge-downloader.cfg; fi \
 && mkdir -p /tmp/tfforge-kitout \
 && bazel build \
      --nobuild \
      --repository_cache=/tmp/tfforge-kitout/repository_cache \
      --config=opt \
      --copt=-march=x86-64-v3 \
      --copt=-mtune=generic \
      --action_env=SOURCE_DATE_EPOCH=315532800 \
      --disk_cache=/home/builder/.cache/bazel/disk \
      --nostamp \
      --action_env=PYTHONHASHSEED=0 \
      --copt=-ffile-prefix-map=/home/builder/.cache/bazel=/bazel \
      --copt=-ffile-prefix-map=/tmp/tfforge-fresh=/bazel \
      --repo_env=HERMETIC_PYTHON_VERSION=3.11 \
      --repo_env=TF_PYTHON_VERSION=3.11 \
      --repo_env=WHEEL_NAME=tensorflow_cpu \
      --copt=-Wno-gnu-offsetof-extensions \
      --copt=-Wno-error=array-parameter \
      --copt=-Wno-error=unused-command-line-argument \
      --linkopt=-fuse-ld=lld \
      --linkopt=-lm \
      --linkopt=-Wl,--undefined-version \
      //tensorflow/tools/pip_package:wheel \
 && bazel query --repo_env=HERMETIC_PYTHON_VERSION=3.11 --repo_env=TF_PYTHON_VERSION=3.11 --repo_env=WHEEL_NAME=tensorflow_cpu '//external:*' --output=xml > /tmp/tfforge-kitout/external.xml \
 && bazel shutdown

FROM scratch AS kitexport
COPY --from=kitfetch /tmp/tfforge-kitout/ /bazel/
COPY --from=kitdebs /tmp/tfforge-kitdebs/ /debs/
COPY --from=kitdebs /tmp/tfforge-want /debs/wanted.lock
