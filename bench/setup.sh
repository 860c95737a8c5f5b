#!/usr/bin/env bash
# Installs what the full benchmark needs on Debian 12 (root): Debian's docker.io (dockerd 20.10),
# podman and docker-registry, and builds this checkout. On a machine where berth is not set up yet
# (no conmon/crun), it first runs scripts/setup.sh with BERTH_SETUP_SKIP_IMAGE=1 (packages, build,
# wrappers; the bench starts its own daemons and imports its own images).
# The docker CLI 28 that drives every engine is expected at /usr/local/bin/docker.
#
# Installing docker.io normally starts the system dockerd (docker0, iptables rules, FORWARD policy
# DROP). The bench runs its own dockerd instead, so service starts are blocked during the install
# (a temporary /usr/sbin/policy-rc.d, only if there is none already).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ $(id -u) -eq 0 ]] || { echo "bench/setup.sh: run as root" >&2; exit 1; }

if ! command -v conmon >/dev/null || ! command -v crun >/dev/null || ! command -v node >/dev/null; then
  BERTH_SETUP_SKIP_IMAGE=1 bash "$repo/scripts/setup.sh"
fi
(cd "$repo" && npm run build)

packages=(docker.io podman docker-registry runc conmon netavark aardvark-dns iptables busybox-static)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "==> bench: installing ${missing[*]}" >&2
  made_policy=
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  trap '[[ -n $made_policy ]] && rm -f /usr/sbin/policy-rc.d' EXIT
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi
for b in dockerd podman docker-registry; do
  command -v "$b" >/dev/null || { echo "bench/setup.sh: $b missing after install" >&2; exit 1; }
done
[[ -x /usr/local/bin/docker ]] || { echo "bench/setup.sh: the docker CLI 28 is expected at /usr/local/bin/docker" >&2; exit 1; }
echo "==> bench: ready ($(dockerd --version | head -1); $(podman --version); docker CLI $(/usr/local/bin/docker version --format '{{.Client.Version}}' 2>/dev/null || true))" >&2
