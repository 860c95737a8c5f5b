#!/usr/bin/env bash
# Start-path cost of networking (issue 6): wall time of `berth run --rm busybox true` on the default
# bridge and with --network none (and on a user network with DNS), RUNS times each (default 20),
# interleaved; prints the medians. A private berthd runs on a temporary data root and is removed at
# the end. Needs root and a built checkout (dist/).
#
#   scripts/measure-start-network.sh
#   RUNS=40 scripts/measure-start-network.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

RUNS=${RUNS:-20}
OCTET=${BERTH_TEST_NET_OCTET:-214}
work=$(mktemp -d /tmp/berth-start-XXXXXX)
bridge=bs$((RANDOM % 100000))
third=$((200 + RANDOM % 50))
net=bs$((RANDOM % 100000))u

. scripts/lib/scratch-daemon.sh
finish() {
  berth network rm "$net" >/dev/null 2>&1 || true
  scratch_daemon_stop
}
trap finish EXIT
scratch_daemon_start "$work" "$bridge" "10.$OCTET.$third.1/24"
berth network create --subnet "10.$OCTET.$((third + 1)).0/24" -o "com.docker.network.bridge.name=$net" "$net" >/dev/null

ms() { local t0 t1; t0=$(date +%s%N); berth run --rm "$@" busybox true >/dev/null; t1=$(date +%s%N); echo $(((t1 - t0) / 1000000)); }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# warm up (first bridge setup creates the bridge and the shared chains)
ms >/dev/null; ms --network none >/dev/null; ms --network "$net" >/dev/null
declare -A t=()
for _ in $(seq "$RUNS"); do
  t[bridge]+="$(ms) "
  t[none]+="$(ms --network none) "
  t[user]+="$(ms --network "$net") "
done
for k in none bridge user; do
  # shellcheck disable=SC2086
  printf '%-7s median %4s ms   (%s)\n' "$k" "$(printf '%s\n' ${t[$k]} | median)" "${t[$k]% }"
done
