#!/usr/bin/env bash
# Set up a Debian 12 machine for tfforge: Debian packages, a running Docker engine, the local
# base images the tests build on, and a virtual environment (.venv) with tfforge installed.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
log() { printf '[setup] %s\n' "$*" >&2; }

# Debian packages: Docker engine + BuildKit-capable client (docker.io), debootstrap for the
# base image, qemu-user for emulated runs (`verify --emulate`), binutils/gcc for test libraries,
# wamerican (the word list the g2p golden data was drawn from).
PKGS=(docker.io debootstrap ca-certificates qemu-user binutils gcc python3-venv wamerican)
# A single-node Slurm cluster (slurm-wlm, munge) and nginx's WebDAV Bazel cache for the
# matrix tests; iproute2 gives `ip` for the extra test daemons' bridges.
PKGS+=(slurm-wlm munge nginx-light iproute2)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq
    # Installing daemons (munge, slurmd, nginx) must not start them with Debian's default
    # configuration: a policy-rc.d that refuses, only for this install, only if none exists.
    policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        policy=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod 0755 "$policy"
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    [ -z "$policy" ] || $SUDO rm -f "$policy"
fi

# Docker engine: Debian's client is /usr/bin/docker (a newer client elsewhere on PATH may lack
# buildx; see docs). Start dockerd when nothing answers.
if ! /usr/bin/docker info >/dev/null 2>&1; then
    log "starting dockerd (log: /tmp/dockerd.log)"
    $SUDO sh -c 'nohup dockerd --storage-driver=overlay2 >/tmp/dockerd.log 2>&1 &'
    for _ in $(seq 60); do /usr/bin/docker info >/dev/null 2>&1 && break; sleep 1; done
    /usr/bin/docker info >/dev/null 2>&1 || { log "dockerd did not start; see /tmp/dockerd.log"; exit 1; }
fi

# The base images (no registry is reachable: made with debootstrap; each root filesystem is
# cached under ~/.cache/tfforge/rootfs, so a fresh engine re-imports it in seconds): bookworm,
# which builds start from; trixie, which ships the clang majors of TensorFlow 2.15-2.21's own
# builds (tests/integration/test_clang_route.py); bullseye (glibc 2.31, Python 3.9), the runtime
# floor older fleet hosts have: the sysroot of floor builds and the test host of the runtime
# tests (docs/how-to/build-for-host-runtimes.md).
if [ -f scripts/make-base-image.sh ]; then
    bash scripts/make-base-image.sh local/bookworm:base bookworm
    bash scripts/make-base-image.sh local/trixie:base trixie
    bash scripts/make-base-image.sh local/bullseye:base bullseye
fi

# Python environment.
if [ ! -x .venv/bin/python ]; then
    log "creating .venv"
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
log "ready: . .venv/bin/activate"
