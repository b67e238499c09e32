#!/usr/bin/env bash
# Make the local base image builds use when no registry is reachable: a minimal Debian root
# filesystem from debootstrap, imported into the Docker engine.
#
#   bash scripts/make-base-image.sh [IMAGE [SUITE]]   (default: local/bookworm:base bookworm)
#
# SUITE: bookworm (gcc-11/12, clang-14..16) or trixie (gcc-12/13/14, clang-17..19; the recipes
# of TensorFlow 2.18+ default to gcc-13), or bullseye (glibc 2.31, gcc-10, Python 3.9: the
# runtime floor of older fleet hosts, used as a sysroot and as a test host; see docs/how-to/build-for-host-runtimes.md).
# Without SUITE it is read from IMAGE (local/trixie:base -> trixie). IMAGE is a plain
# name[:tag]: `docker import` cannot create a digest reference.
#
# Idempotent: if IMAGE already exists in the engine, nothing is done. The debootstrapped root
# filesystem is kept as a tarball in $TFFORGE_CACHE/rootfs (default ~/.cache/tfforge/rootfs), so
# making the image again (a fresh engine, CI) costs a `docker import` (seconds), not a
# debootstrap (minutes). Needs root, debootstrap and a running engine. apt keeps working inside containers: the image gets the host's Debian
# sources (same mirror, same suites) so `apt-get update && apt-get install` works in a build.
set -euo pipefail

IMAGE="${1:-local/bookworm:base}"
case "$IMAGE" in
    *@sha256:*)
        echo "make-base-image: $IMAGE is a digest reference, which docker import cannot create; name it like local/bookworm:base and pass that as --base-image" >&2
        exit 2 ;;
esac
case "${2:-$IMAGE}" in
    *trixie*) SUITE=trixie ;;
    *bullseye*) SUITE=bullseye ;;
    *bookworm*|"$IMAGE") SUITE=bookworm ;;
    *) echo "make-base-image: unknown suite ${2}; use bookworm, trixie or bullseye" >&2; exit 2 ;;
esac
# Debian's client runs BuildKit builds itself; a newer /usr/local/bin/docker may lack buildx.
DOCKER=/usr/bin/docker
[ -x "$DOCKER" ] || DOCKER="$(command -v docker || true)"
if [ -z "$DOCKER" ]; then
    echo "make-base-image: no docker client; apt-get install -y docker.io" >&2
    exit 1
fi
if ! "$DOCKER" info >/dev/null 2>&1; then
    echo "make-base-image: Docker engine not reachable; start it: dockerd & (or systemctl start docker)" >&2
    exit 1
fi
if "$DOCKER" image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "make-base-image: $IMAGE already exists ($("$DOCKER" image inspect -f '{{.Id}}' "$IMAGE"))"
    exit 0
fi
CACHE="${TFFORGE_CACHE:-$HOME/.cache/tfforge}/rootfs"
TARBALL="$CACHE/$SUITE.tar"
if [ ! -s "$TARBALL" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "make-base-image: debootstrap needs root; run as root" >&2
        exit 1
    fi
    command -v debootstrap >/dev/null || {
        echo "make-base-image: debootstrap missing; apt-get install -y debootstrap" >&2
        exit 1
    }

    # The mirror the host uses (deb822 sources first, then the one-line format, then Debian's CDN).
    SOURCES=/etc/apt/sources.list.d/debian.sources
    MIRROR=""
    if [ -r "$SOURCES" ]; then
        MIRROR="$(awk '/^URIs:/ {print $2; exit}' "$SOURCES")"
    fi
    if [ -z "$MIRROR" ] && [ -r /etc/apt/sources.list ]; then
        MIRROR="$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list)"
    fi
    MIRROR="${MIRROR:-http://deb.debian.org/debian}"

    ROOTFS="$(mktemp -d /tmp/tfforge-rootfs.XXXXXX)"
    trap 'rm -rf "$ROOTFS" "$TARBALL.partial"' EXIT

    echo "make-base-image: debootstrap --variant=minbase $SUITE from $MIRROR"
    debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR"

    # The engine provides /dev; caches and package lists only bloat the image (builds run
    # `apt-get update` first anyway).
    rm -rf "$ROOTFS"/dev/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb \
           "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/tmp/* "$ROOTFS"/var/log/*.log
    # Same sources as the host (incl. updates/security suites) so apt works inside containers.
    # The host's suites are renamed to the image's (bookworm-updates -> trixie-updates ...).
    if [ -r "$SOURCES" ]; then
        rm -f "$ROOTFS/etc/apt/sources.list"
        HOST_SUITE="$(awk '/^Suites:/ {print $2; exit}' "$SOURCES")"
        sed "/^Suites:/ s/\b${HOST_SUITE:-bookworm}\b/$SUITE/g" "$SOURCES" \
            > "$ROOTFS/etc/apt/sources.list.d/debian.sources"
    fi
    # A mirror serving a dated snapshot has expired Release files; keep the host's apt setting.
    for conf in /etc/apt/apt.conf.d/*; do
        if [ -f "$conf" ] && grep -q 'Check-Valid-Until' "$conf"; then
            cp "$conf" "$ROOTFS/etc/apt/apt.conf.d/"
        fi
    done
    mkdir -p "$CACHE"
    tar --numeric-owner -C "$ROOTFS" -c . > "$TARBALL.partial"
    mv "$TARBALL.partial" "$TARBALL"
    echo "make-base-image: root filesystem cached as $TARBALL ($(du -m "$TARBALL" | cut -f1) MB)"
else
    echo "make-base-image: using the cached root filesystem $TARBALL"
fi

echo "make-base-image: importing as $IMAGE"
"$DOCKER" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' "$TARBALL" "$IMAGE"
"$DOCKER" run --rm "$IMAGE" test -r /etc/apt/sources.list.d/debian.sources -o -r /etc/apt/sources.list
echo "make-base-image: $IMAGE ready ($("$DOCKER" image inspect -f '{{.Id}}' "$IMAGE"))"
