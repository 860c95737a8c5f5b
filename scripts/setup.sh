#!/usr/bin/env bash
# Set up berth on a Debian 12 (bookworm) machine. Run as root from anywhere; safe to run again.
#
#   bash scripts/setup.sh
#
# Steps (each is skipped when already done):
#   1. Debian packages: runtimes (crun runc runsc), conmon, busybox-static, socat, tini, ...
#   2. npm dependencies (npm ci) and the TypeScript build (npm run build)
#   3. /usr/local/bin/berth and /usr/local/bin/berthd wrappers pointing at this checkout's dist/
#      (berth runs the one-file CLI bundle through dist/src/bin/berth-launcher.cjs)
#   4. berthd running on the default socket (unix:///run/berth/berth.sock, data root /var/lib/berth)
#   5. the local base image busybox:latest, imported from a rootfs built from Debian's busybox-static
#
# Environment:
#   BERTH_SETUP_SKIP_IMAGE=1   stop after step 3 (no daemon, no image)
#   BERTH_HOST                 use this daemon for step 5 instead of starting the default one
#   BERTH_BIN_DIR              where step 3 writes the wrappers (default /usr/local/bin)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
data_root=/var/lib/berth
default_sock=/run/berth/berth.sock
bin_dir=${BERTH_BIN_DIR:-/usr/local/bin}

# python3-docker (docker-py) and docker-compose (1.29): driven by the compat suite (test/compat, issue 4).
# zstd: zstd-compressed layers are decompressed by the zstd binary; skopeo and docker.io (dockerd):
# registry interop tests (test/integration/registry-interop.test.ts, issue 3).
# debootstrap: scripts/make-debian-image.sh (the debian:bookworm base of the realistic build test);
# xz-utils and bzip2: compressed build contexts (Node has no xz/bzip2 decoder).
packages=(crun runc conmon runsc busybox-static socat iptables uidmap procps psmisc tini attr
  util-linux iproute2 docker-registry python3-docker netavark aardvark-dns docker-compose
  zstd skopeo docker.io debootstrap xz-utils bzip2)

step() { printf '\n==> %s\n' "$*" >&2; }
note() { printf '    %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "run as root (sudo bash scripts/setup.sh)"
[[ -r /etc/os-release ]] && . /etc/os-release
if [[ ${ID:-} != debian || ${VERSION_ID:-} != 12 ]]; then
  note "warning: written for Debian 12; this is ${PRETTY_NAME:-an unknown system}"
fi

# --- 1. Debian packages -----------------------------------------------------------------------
step "Debian packages"
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  note "all installed: ${packages[*]}"
else
  note "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  # Packages such as docker.io and docker-registry ship services; installing them must not start
  # them (a running dockerd rewrites the host's FORWARD policy). policy-rc.d answers "not allowed"
  # for the duration of the install, unless the host already has its own.
  own_policy=
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
  fi
  apt_rc=0
  apt-get install -y --no-install-recommends "${missing[@]}" || apt_rc=$?
  [[ -n $own_policy ]] && rm -f /usr/sbin/policy-rc.d
  [[ $apt_rc -eq 0 ]] || die "apt-get install failed ($apt_rc)"
fi
for b in crun runc conmon runsc socat tini-static nsenter; do
  command -v "$b" >/dev/null || die "$b is missing after package installation"
done
[[ -x /bin/busybox ]] || die "/bin/busybox (busybox-static) is missing after package installation"
grep -qw overlay /proc/filesystems 2>/dev/null || modprobe overlay 2>/dev/null ||
  note "warning: the kernel does not list overlayfs in /proc/filesystems"

# --- 2. Node, npm dependencies, build ---------------------------------------------------------
step "Node.js and the build"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  note "node/npm not found; installing Debian's nodejs and npm"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends nodejs npm
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
[[ $node_major -ge 20 ]] ||
  die "berth needs Node.js >= 20 (found $(node --version)); install Node 20 (e.g. from NodeSource) and re-run"
note "node $(node --version), npm $(npm --version)"

cd "$repo"
# `npm ls` fails on missing, invalid or extraneous packages; when it passes, keep node_modules
# (npm ci would delete and rebuild it, which breaks builds running at the same time).
if [[ -f node_modules/.package-lock.json ]] && npm ls --all >/dev/null 2>&1; then
  note "npm dependencies up to date"
elif [[ -f package-lock.json ]]; then
  npm ci --no-audit --no-fund
else
  npm install --no-audit --no-fund
fi
npm run build
for f in dist/src/bin/berth.js dist/src/bin/berth-launcher.cjs dist/src/bin/berthd.js; do
  if [[ -f $f ]]; then chmod 0755 "$f"; fi
done

# --- 3. Commands on PATH -----------------------------------------------------------------------
step "berth and berthd in $bin_dir"
node_bin=$(command -v node)
# shellcheck source=lib/cli-wrappers.sh
. "$repo/scripts/lib/cli-wrappers.sh"
write_cli_wrappers "$repo" "$bin_dir" "$node_bin"

if [[ ${BERTH_SETUP_SKIP_IMAGE:-} == 1 ]]; then
  step "BERTH_SETUP_SKIP_IMAGE=1: not starting berthd, not importing busybox:latest"
  exit 0
fi

if [[ ! -f $repo/dist/src/bin/berth.js || ! -f $repo/dist/src/bin/berthd.js ]]; then
  step "berth is not built yet"
  note "dist/src/bin/berth.js or dist/src/bin/berthd.js does not exist, so the daemon cannot be"
  note "started and busybox:latest cannot be imported. Packages and the build are set up; re-run"
  note "this script once the CLI and daemon exist."
  exit 2
fi

# --- 4. Daemon ----------------------------------------------------------------------------------
# Answers 0 when something serves GET /_ping with "OK" on the socket.
ping_socket() {
  [[ -S $1 ]] || return 1
  local reply
  reply=$(printf 'GET /_ping HTTP/1.0\r\nHost: berth\r\n\r\n' |
    timeout 3 socat -t 2 - "UNIX-CONNECT:$1" 2>/dev/null) || return 1
  [[ $reply == HTTP/1.?\ 200* && $reply == *OK ]]
}

step "berthd"
if [[ -n ${BERTH_HOST:-} ]]; then
  note "BERTH_HOST=$BERTH_HOST is set; using that daemon"
elif ping_socket "$default_sock"; then
  note "already running on unix://$default_sock"
else
  mkdir -p "$data_root" "$(dirname "$default_sock")"
  log=$data_root/berthd.log
  # setsid + all stdio redirected: the daemon must not hold this script's (or CI's) terminal/pipes.
  # UV_THREADPOOL_SIZE: pulls run inflate, hashing and writes of several layers in libuv's pool.
  UV_THREADPOOL_SIZE=${UV_THREADPOOL_SIZE:-16} setsid "$node_bin" "$repo/dist/src/bin/berthd.js" --data-root "$data_root" -H "unix://$default_sock" \
    </dev/null >>"$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    ping_socket "$default_sock" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if ! ping_socket "$default_sock"; then
    echo "---- last lines of $log ----" >&2
    tail -n 40 "$log" >&2 || true
    die "berthd (pid $pid) did not answer /_ping on $default_sock within 10 s"
  fi
  note "started berthd (pid $pid), log $log"
fi

# --- 5. busybox:latest ------------------------------------------------------------------------
step "image busybox:latest"
berth=("$node_bin" "$repo/dist/src/bin/berth.js")
if "${berth[@]}" image inspect busybox:latest >/dev/null 2>&1; then
  note "already present"
else
  work=$(mktemp -d /tmp/berth-setup.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  bash "$repo/scripts/make-busybox-rootfs.sh" "$work/busybox.tar"
  "${berth[@]}" import --change 'CMD ["sh"]' "$work/busybox.tar" busybox:latest
  "${berth[@]}" image inspect busybox:latest >/dev/null ||
    die "busybox:latest is still missing after the import"
  note "imported"
fi

step "done: try  berth run --rm busybox echo hello from berth"
