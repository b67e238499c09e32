# tfforge build 2.15.0-avx2.fma.mkl-a833ebdff5fe
# Generated from templates/Dockerfile.j2; the inputs and exact commands are in build.json.
# Build it from the project root:
#   DOCKER_BUILDKIT=1 /usr/bin/docker build --progress=plain --target export --output type=local,dest=builds/2.15.0-avx2.fma.mkl-a833ebdff5fe/.export/export builds/2.15.0-avx2.fma.mkl-a833ebdff5fe

# ---- toolchain: base image, compiler, Python, git, Bazel (bazelisk), non-root user
FROM debian:bookworm-slim@sha256:88200866dfff7ea7f5cbcb6ec7c8a701889efe6fe859fe64d6990e4b07ea4171 AS toolchain
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && for p in gcc-12 g++-12; do \
      apt-cache show "$p" >/dev/null 2>&1 || { echo "tfforge: the base image's archive has no package $p; pick a compiler version it ships or another --base-image" >&2; exit 1; }; \
    done \
 && apt-get install -y --no-install-recommends ca-certificates curl g++-12 gcc-12 git patch patchelf python3 python3-dev python3-setuptools python3-wheel rsync unzip zip \
 && rm -rf /var/lib/apt/lists/* \
 && dpkg-query -W ca-certificates curl g++-12 gcc-12 git patch patchelf python3 python3-dev python3-setuptools python3-wheel rsync unzip zip
RUN have="$(gcc-12 -dumpfullversion)" \
 && if ! dpkg --compare-versions "$have" ge "12.2.0"; then \
      echo "tfforge: gcc-12 is $have, older than the required 12.2.0; use --gcc-version $have or a base image with a newer compiler" >&2; exit 1; \
    fi \
 && echo "tfforge: gcc-12 $have (required >= 12.2.0)"
RUN curl --proto =https --tlsv1.2 -fsSL -o /usr/local/bin/bazel https://github.com/bazelbuild/bazelisk/releases/download/v1.17.0/bazelisk-linux-amd64 \
 && echo "61699e22abb2a26304edfa1376f65ad24191f94a4ffed68a58d42b6fee01e124  /usr/local/bin/bazel" | sha256sum -c - \
 && chmod 0755 /usr/local/bin/bazel
RUN groupadd --gid 10001 builder \
 && useradd --uid 10001 --gid 10001 --create-home --shell /bin/sh builder \
 && install -d -o builder -g builder /dist
ENV CC=/usr/bin/gcc-12 \
    CXX=/usr/bin/g++-12 \
    USE_BAZEL_VERSION=6.1.0 \
    BAZELISK_VERIFY_SHA256=6c25a6d716545d6b672ec46f770521cd9ebb63d73617b8f4e6747825d1db1839
USER builder
ENV HOME=/home/builder
WORKDIR /home/builder
RUN bazel --version

# ---- source: the pinned tag v2.15.0, its commit verified
FROM toolchain AS source
RUN git -c advice.detachedHead=false clone --quiet --depth 1 --branch v2.15.0 https://github.com/tensorflow/tensorflow.git /home/builder/src \
 && got="$(git -C /home/builder/src rev-parse HEAD)" \
 && if [ "$got" != "6887368d6d46223f460358323c4b76d61d1558a8" ]; then \
      echo "tfforge: tag v2.15.0 is commit $got, expected 6887368d6d46223f460358323c4b76d61d1558a8 (tfforge/data/toolchains.toml); refusing to build" >&2; exit 1; \
    fi \
 && echo "tfforge: v2.15.0 is 6887368d6d46223f460358323c4b76d61d1558a8"
# the tree against the recipe (.bazelversion, wheel target, configs, hermetic toolchain,
# version type): seconds here instead of a failure hours into the compile
COPY clone_check.py /usr/local/share/tfforge/clone_check.py
RUN python3 /usr/local/share/tfforge/clone_check.py --root /home/builder/src --target //tensorflow/tools/pip_package:build_pip_package --config=mkl --bazel 6.1.0

# ---- build: configure without questions, bazel build, wheel(s) into /dist
# compiler: gcc 12.2.0 from the image, chosen by ./configure (TF_NEED_CLANG=0)
FROM source AS build
WORKDIR /home/builder/src
ENV PYTHON_BIN_PATH="/usr/bin/python3" \
    USE_DEFAULT_PYTHON_LIB_PATH="1" \
    TF_NEED_CLANG="0" \
    GCC_HOST_COMPILER_PATH="/usr/bin/gcc-12" \
    CC_OPT_FLAGS="-msse -msse2 -msse3 -mssse3 -msse4.1 -msse4.2 -mpopcnt -mavx -mxsave -mfma -mavx2 -Wno-sign-compare" \
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
RUN ./configure < /dev/null
RUN --mount=type=cache,id=tfforge-bazel-10001,target=/home/builder/.cache/bazel,uid=10001,gid=10001,sharing=locked \
    bazel build \
      --config=opt \
      --config=mkl \
      --copt=-msse \
      --copt=-msse2 \
      --copt=-msse3 \
      --copt=-mssse3 \
      --copt=-msse4.1 \
      --copt=-msse4.2 \
      --copt=-mpopcnt \
      --copt=-mavx \
      --copt=-mxsave \
      --copt=-mfma \
      --copt=-mavx2 \
      --action_env=SOURCE_DATE_EPOCH=315532800 \
      --disk_cache=/home/builder/.cache/bazel/disk \
      --repo_env=TF_PYTHON_VERSION=3.10 \
      //tensorflow/tools/pip_package:build_pip_package \
 && bazel-bin/tensorflow/tools/pip_package/build_pip_package /dist --cpu \
 && if ! ls /dist/*.whl >/dev/null 2>&1; then echo "tfforge: the build produced no wheel" >&2; exit 1; fi \
 && bazel shutdown
COPY build.json /dist/build.json

# ---- export: only the wheel(s) and build.json
FROM scratch AS export
COPY --from=build /dist/ /
