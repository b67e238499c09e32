# tfforge build 2.21.0-haswell-18355bad2b4e
# Generated from templates/Dockerfile.j2; the inputs and exact commands are in build.json.
# Build it from the project root:
#   DOCKER_BUILDKIT=1 /usr/bin/docker build --progress=plain --target export --output type=local,dest=builds/2.21.0-haswell-18355bad2b4e/.export builds/2.21.0-haswell-18355bad2b4e

# ---- toolchain: base image, compiler, Python, git, Bazel (bazelisk), non-root user
FROM debian:bookworm-slim@sha256:88200866dfff7ea7f5cbcb6ec7c8a701889efe6fe859fe64d6990e4b07ea4171 AS toolchain
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
 && for p in gcc-12 g++-12; do \
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
      apt-get install -y --no-install-recommends ca-certificates curl g++-12 gcc-12 git patch patchelf python3 python3-dev unzip zip; \
    fi \
 && when="$(for f in /var/lib/apt/lists/*Release; do [ -f "$f" ] || continue; date -u -d "$(sed -n 's/^Date: //p' "$f")" +%Y%m%dT%H%M%SZ; done | sort | tail -n 1)" \
 && { echo "# archive-date: ${when:-$(sed -n 's/^# archive-date: //p' /tmp/tfforge-apt-pins)}"; \
      dpkg-query -W -f='${db:Status-Abbrev} ${Package}=${Version}\n' | awk '$1 == "ii" {print $2}' | sort; } > /etc/tfforge-apt.lock \
 && if [ -s /tmp/tfforge-apt-pins ] && ! grep -v '^#' /etc/tfforge-apt.lock | cmp -s - /tmp/tfforge-pins; then \
      grep -v '^#' /etc/tfforge-apt.lock | diff /tmp/tfforge-pins - >&2; \
      echo "tfforge: the installed packages differ from apt.lock (lines above: < locked, > installed)" >&2; exit 1; \
    fi \
 && rm -rf /var/lib/apt/lists/* \
 && dpkg-query -W ca-certificates curl g++-12 gcc-12 git patch patchelf python3 python3-dev unzip zip
RUN have="$(gcc-12 -dumpfullversion)" \
 && if ! dpkg --compare-versions "$have" ge "12.2.0"; then \
      echo "tfforge: gcc-12 is $have, older than the required 12.2.0; use --gcc-version $have or a base image with a newer compiler" >&2; exit 1; \
    fi \
 && echo "tfforge: gcc-12 $have (required >= 12.2.0)"
RUN --mount=type=bind,source=kit,target=/tmp/tfforge-kit \
    if [ -n "$TFFORGE_KIT" ]; then cp /tmp/tfforge-kit/bazelisk /usr/local/bin/bazel; \
    else curl --proto =https --tlsv1.2 -fsSL -o /usr/local/bin/bazel https://github.com/bazelbuild/bazelisk/releases/download/v1.17.0/bazelisk-linux-amd64; fi \
 && echo "61699e22abb2a26304edfa1376f65ad24191f94a4ffed68a58d42b6fee01e124  /usr/local/bin/bazel" | sha256sum -c - \
 && chmod 0755 /usr/local/bin/bazel
RUN groupadd --gid 10001 builder \
 && useradd --uid 10001 --gid 10001 --create-home --shell /bin/sh builder \
 && install -d -o builder -g builder /dist
ENV CC=/usr/bin/gcc-12 \
    CXX=/usr/bin/g++-12 \
    USE_BAZEL_VERSION=7.4.1 \
    BAZELISK_VERIFY_SHA256=c97f02133adce63f0c28678ac1f21d65fa8255c80429b588aeeba8a1fac6202b
USER builder
ENV HOME=/home/builder
WORKDIR /home/builder
# bazelisk fetches Bazel here; a kit build serves the kit's copy on the step's own loopback
# (BAZELISK_BASE_URL), still checked against BAZELISK_VERIFY_SHA256.
RUN --mount=type=bind,source=kit,target=/tmp/tfforge-kit \
    if [ -n "$TFFORGE_KIT" ]; then \
      python3 -m http.server 18080 --bind 127.0.0.1 --directory /tmp/tfforge-kit/bazel >/dev/null 2>&1 & \
      export BAZELISK_BASE_URL=http://127.0.0.1:18080; sleep 1; \
    fi \
 && bazel --version

# ---- source: the pinned tag v2.21.0, its commit verified
FROM toolchain AS source
ARG TFFORGE_KIT
RUN --mount=type=bind,source=kit,target=/tmp/tfforge-kit \
    if [ -n "$TFFORGE_KIT" ]; then mkdir /home/builder/src && tar -xf /tmp/tfforge-kit/source.tar -C /home/builder/src; \
    else git -c advice.detachedHead=false clone --quiet --depth 1 --branch v2.21.0 https://github.com/tensorflow/tensorflow.git /home/builder/src; fi \
 && got="$(git -C /home/builder/src rev-parse HEAD)" \
 && if [ "$got" != "a481b10260dfdf833a1b16007eead49c1d7febf3" ]; then \
      echo "tfforge: tag v2.21.0 is commit $got, expected a481b10260dfdf833a1b16007eead49c1d7febf3 (tfforge/data/toolchains.toml); refusing to build" >&2; exit 1; \
    fi \
 && echo "tfforge: v2.21.0 is a481b10260dfdf833a1b16007eead49c1d7febf3"
# the tree against the recipe (.bazelversion, wheel target, configs, hermetic toolchain,
# version type) and the release's official wheels (version file, clang major, the clang flags
# of its release config): seconds here instead of a failure hours into the compile
COPY clone_check.py /usr/local/share/tfforge/clone_check.py
RUN python3 /usr/local/share/tfforge/clone_check.py --root /home/builder/src --target //tensorflow/tools/pip_package:wheel --config=clang_local --bazel 7.4.1 --wheel-type release --version 2.21.0 --clang-major 18 --clang-arg=--copt=-Wno-gnu-offsetof-extensions --clang-arg=--copt=-Wno-error=array-parameter --clang-arg=--copt=-Wno-error=unused-command-line-argument --clang-arg=--linkopt=-fuse-ld=lld --clang-arg=--linkopt=-lm --clang-arg=--linkopt=-Wl,--undefined-version

# ---- build: configure without questions, bazel build, wheel(s) into /dist
# compiler: gcc 12.2.0 from the image; the release's hermetic clang is switched off with --config=clang_local
FROM source AS build
WORKDIR /home/builder/src
ENV PYTHON_BIN_PATH="/usr/bin/python3" \
    USE_DEFAULT_PYTHON_LIB_PATH="1" \
    TF_NEED_CLANG="0" \
    GCC_HOST_COMPILER_PATH="/usr/bin/gcc-12" \
    CC_OPT_FLAGS="-march=haswell -mtune=haswell -Wno-sign-compare" \
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
      --config=clang_local \
      --copt=-march=haswell \
      --copt=-mtune=haswell \
      --copt=-mneeded \
      --action_env=SOURCE_DATE_EPOCH=315532800 \
      --disk_cache=/home/builder/.cache/bazel/disk \
      --nostamp \
      --action_env=PYTHONHASHSEED=0 \
      --copt=-ffile-prefix-map=/home/builder/.cache/bazel=/bazel \
      --copt=-ffile-prefix-map=/tmp/tfforge-fresh=/bazel \
      --repo_env=HERMETIC_PYTHON_VERSION=3.11 \
      --repo_env=TF_PYTHON_VERSION=3.11 \
      --repo_env=WHEEL_NAME=tensorflow_cpu \
      --repo_env=ML_WHEEL_TYPE=release \
      --repo_env=USE_PYWRAP_RULES=True \
      --define=xnn_enable_avxvnniint8=false \
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
FROM debian:bookworm-slim@sha256:88200866dfff7ea7f5cbcb6ec7c8a701889efe6fe859fe64d6990e4b07ea4171 AS kitdebs
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
    TF_NEED_CLANG="0" \
    GCC_HOST_COMPILER_PATH="/usr/bin/gcc-12" \
    CC_OPT_FLAGS="-march=haswell -mtune=haswell -Wno-sign-compare" \
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
      --config=clang_local \
      --copt=-march=haswell \
      --copt=-mtune=haswell \
      --copt=-mneeded \
      --action_env=SOURCE_DATE_EPOCH=315532800 \
      --disk_cache=/home/builder/.cache/bazel/disk \
      --nostamp \
      --action_env=PYTHONHASHSEED=0 \
      --copt=-ffile-prefix-map=/home/builder/.cache/bazel=/bazel \
      --copt=-ffile-prefix-map=/tmp/tfforge-fresh=/bazel \
      --repo_env=HERMETIC_PYTHON_VERSION=3.11 \
      --repo_env=TF_PYTHON_VERSION=3.11 \
      --repo_env=WHEEL_NAME=tensorflow_cpu \
      --repo_env=ML_WHEEL_TYPE=release \
      --repo_env=USE_PYWRAP_RULES=True \
      --define=xnn_enable_avxvnniint8=false \
      //tensorflow/tools/pip_package:wheel \
 && bazel query --repo_env=HERMETIC_PYTHON_VERSION=3.11 --repo_env=TF_PYTHON_VERSION=3.11 --repo_env=WHEEL_NAME=tensorflow_cpu --repo_env=ML_WHEEL_TYPE=release --repo_env=USE_PYWRAP_RULES=True '//external:*' --output=xml > /tmp/tfforge-kitout/external.xml \
 && bazel shutdown

FROM scratch AS kitexport
COPY --from=kitfetch /tmp/tfforge-kitout/ /bazel/
COPY --from=kitdebs /tmp/tfforge-kitdebs/ /debs/
COPY --from=kitdebs /tmp/tfforge-want /debs/wanted.lock
