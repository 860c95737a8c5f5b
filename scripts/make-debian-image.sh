#!/usr/bin/env bash
# Make a Debian bookworm base image locally (no registry needed): `debootstrap --variant=minbase`
# into a cache directory, packed as a rootfs tarball, reused on later runs.
#
#   bash scripts/make-debian-image.sh            # prints the path of the cached rootfs tarball
#   BERTH_HOST=unix:///path/sock bash scripts/make-debian-image.sh --import [NAME]
#                                                # also imports it (default name debian:bookworm)
#
# Environment:
#   BERTH_DEBIAN_CACHE   cache directory (default /var/cache/berth-test)
#   BERTH_DEBIAN_MIRROR  mirror (default http://deb.debian.org/debian)
#
# The tarball is rebuilt only when missing. debootstrap needs root and the mirror; the first run
# takes a minute or two here, later runs return at once.
set -euo pipefail

cache=${BERTH_DEBIAN_CACHE:-/var/cache/berth-test}
mirror=${BERTH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
tarball=$cache/debian-bookworm-minbase.tar
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() { printf 'make-debian-image: error: %s\n' "$*" >&2; exit 1; }

if [[ ! -s $tarball ]]; then
  [[ $(id -u) -eq 0 ]] || die "debootstrap needs root"
  command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
  mkdir -p "$cache"
  # one builder at a time: concurrent test runs wait for the first one's tarball
  exec 9>"$cache/.lock"
  flock 9
  if [[ ! -s $tarball ]]; then
    work=$(mktemp -d "$cache/rootfs.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    debootstrap --variant=minbase bookworm "$work" "$mirror" >&2
    # apt inside containers: no cached package lists or debs in the image
    rm -rf "$work"/var/lib/apt/lists/* "$work"/var/cache/apt/archives/*.deb
    tar --numeric-owner --xattrs -C "$work" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$work"
    trap - EXIT
  fi
  flock -u 9
fi

if [[ ${1:-} == --import ]]; then
  name=${2:-debian:bookworm}
  node "$repo/dist/src/bin/berth.js" import --change 'CMD ["bash"]' "$tarball" "$name"
else
  printf '%s\n' "$tarball"
fi
