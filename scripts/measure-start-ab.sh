#!/usr/bin/env bash
# Start-path A/B (issue 7): two berthd builds side by side, driven by the docker CLI, interleaved:
# `run --rm --network none busybox true`, `exec <running container> true`, `run -d --network none`.
# Prints the median (and all samples) per build. Each build is a checkout with a built dist/ (and
# node_modules); each daemon gets its own temporary data root, removed at the end.
#
#   scripts/measure-start-ab.sh /work/main /work/wt/start          # 20 runs each
#   RUNS=40 scripts/measure-start-ab.sh OLD NEW
set -euo pipefail
RUNS=${RUNS:-20}
[[ $# -ge 1 ]] || { echo "usage: $0 CHECKOUT [CHECKOUT...]" >&2; exit 2; }
dirs=("$@")
docker=${DOCKER_CLI:-/usr/local/bin/docker}
tar=/tmp/berth-test-cache/busybox.tar
if [[ ! -s $tar ]]; then
  mkdir -p /tmp/berth-test-cache
  bash "$(dirname "${BASH_SOURCE[0]}")/make-busybox-rootfs.sh" "$tar" >/dev/null
fi
work=$(mktemp -d /tmp/berth-start-ab-XXXXXX)
pids=()
finish() {
  for j in "${!pids[@]}"; do
    local h=unix://$work/$j/s.sock
    ids=$(DOCKER_HOST=$h "$docker" ps -aq 2>/dev/null || true)
    # shellcheck disable=SC2086
    [[ -n $ids ]] && DOCKER_HOST=$h "$docker" rm -f $ids >/dev/null 2>&1 || true
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap finish EXIT
for j in "${!dirs[@]}"; do
  mkdir -p "$work/$j"
  node "${dirs[$j]}/dist/src/bin/berthd.js" --data-root "$work/$j/root" -H "unix://$work/$j/s.sock" --bridge none >"$work/$j/log" 2>&1 &
  pids+=($!)
done
for j in "${!dirs[@]}"; do
  export DOCKER_HOST=unix://$work/$j/s.sock
  for _ in $(seq 100); do "$docker" version >/dev/null 2>&1 && break; sleep 0.1; done
  "$docker" import --change 'CMD ["sh"]' "$tar" busybox:latest >/dev/null
  "$docker" run -d --network none --name sleeper busybox sleep 100000 >/dev/null
done
ms() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null; t1=$(date +%s%N); echo $(((t1 - t0) / 100000)); }
median() { sort -n | awk '{ a[NR] = $1 } END { printf "%.1f", a[int((NR + 1) / 2)] / 10 }'; }
declare -A t=()
for r in $(seq 0 "$RUNS"); do # run 0 is a warm-up
  for j in "${!dirs[@]}"; do
    export DOCKER_HOST=unix://$work/$j/s.sock
    a=$(ms "$docker" run --rm --network none busybox true)
    b=$(ms "$docker" exec sleeper true)
    c=$(ms "$docker" run -d --network none --name "d$r" busybox sleep 1000)
    "$docker" rm -f "d$r" >/dev/null
    if [[ $r -gt 0 ]]; then t[$j,run]+="$a "; t[$j,exec]+="$b "; t[$j,rund]+="$c "; fi
  done
done
for k in run exec rund; do
  for j in "${!dirs[@]}"; do
    # shellcheck disable=SC2086
    printf '%-5s %-28s median %7s ms   (tenths of ms: %s)\n' "$k" "${dirs[$j]}" "$(printf '%s\n' ${t[$j,$k]} | median)" "${t[$j,$k]% }"
  done
done
