#!/usr/bin/env bash
# A/B of the start path of two built checkouts (e.g. main and a branch) under the same load: one
# private berthd from each, side by side (own data roots, bridges, subnets), driven by the docker
# CLI; RUNS rounds (default 25) of `run --rm busybox true` on the default bridge and with
# --network none, and `run -d busybox sleep` (+ rm -f, untimed), interleaved A, B, A, B, ...
# Prints the medians and the network overhead (bridge − none) of each. Needs root and dist/ built in
# both checkouts.
#
#   scripts/ab-start-network.sh /work/main .
#   RUNS=40 scripts/ab-start-network.sh /work/main /work/wt/mybranch
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: $0 CHECKOUT_A CHECKOUT_B" >&2; exit 2; }
RUNS=${RUNS:-25}
OCTET=${BERTH_TEST_NET_OCTET:-214}
DOCKER=${DOCKER:-/usr/local/bin/docker}
declare -A repo=([A]=$(cd "$1" && pwd) [B]=$(cd "$2" && pwd)) work=() pid=() t=()
third=$((200 + RANDOM % 50))
declare -A bip=([A]="10.$OCTET.$third.1/24" [B]="10.$OCTET.$((third + 1)).1/24")
tar=/tmp/berth-test-cache/busybox.tar
if [[ ! -s $tar ]]; then
  mkdir -p /tmp/berth-test-cache
  bash "${repo[A]}/scripts/make-busybox-rootfs.sh" "$tar" >/dev/null
fi

d() { local k=$1; shift; DOCKER_HOST="unix://${work[$k]}/s.sock" "$DOCKER" "$@"; }
finish() {
  for k in A B; do
    [[ -n ${work[$k]:-} ]] || continue
    d "$k" rm -f $(d "$k" ps -aq 2>/dev/null) >/dev/null 2>&1 || true
    [[ -n ${pid[$k]:-} ]] && { kill "${pid[$k]}" 2>/dev/null || true; wait "${pid[$k]}" 2>/dev/null || true; }
    rm -rf "${work[$k]}"
  done
}
trap finish EXIT
for k in A B; do
  work[$k]=$(mktemp -d "/tmp/berth-ab-$k-XXXXXX")
  (cd "${repo[$k]}" && exec node dist/src/bin/berthd.js --data-root "${work[$k]}/root" -H "unix://${work[$k]}/s.sock" \
    --bridge "ab$k$((RANDOM % 100000))" --bip "${bip[$k]}" >"${work[$k]}/berthd.log" 2>&1) &
  pid[$k]=$!
done
for k in A B; do
  for _ in $(seq 100); do d "$k" version >/dev/null 2>&1 && break; sleep 0.1; done
  d "$k" import --change 'CMD ["sh"]' "$tar" busybox:latest >/dev/null
  # warm up: the first bridge container makes the bridge and its rules
  d "$k" run --rm busybox true; d "$k" run --rm --network none busybox true
done

ms() { local k=$1; shift; local t0 t1; t0=$(date +%s%N); d "$k" run --rm "$@" busybox true >/dev/null; t1=$(date +%s%N); echo $(((t1 - t0) / 1000000)); }
msd() {
  local k=$1 t0 t1 id
  t0=$(date +%s%N); id=$(d "$k" run -d busybox sleep 600); t1=$(date +%s%N)
  d "$k" rm -f "$id" >/dev/null
  echo $(((t1 - t0) / 1000000))
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
for _ in $(seq "$RUNS"); do
  for k in A B; do
    t[$k-bridge]+="$(ms "$k") "
    t[$k-none]+="$(ms "$k" --network none) "
    t[$k-rund]+="$(msd "$k") "
  done
done
for k in A B; do
  echo "$k = ${repo[$k]}"
  declare -A m=()
  for x in bridge none rund; do
    # shellcheck disable=SC2086
    m[$x]=$(printf '%s\n' ${t[$k-$x]} | median)
    printf '  %-7s median %4s ms   (%s)\n' "$x" "${m[$x]}" "${t[$k-$x]% }"
  done
  echo "  network overhead of run --rm (bridge - none): $((m[bridge] - m[none])) ms"
done
