#!/usr/bin/env bash
# Published-port throughput (issue 6): send SIZE bytes (default 1 GiB) over TCP to a container on the
# default bridge, once directly to its IP and once through a port published on 127.0.0.1, and print
# MB/s of each and the ratio. Needs root, a built checkout (dist/), netavark, socat.
#
#   scripts/measure-port-throughput.sh            # 3 runs of each, medians
#   RUNS=5 SIZE=$((256<<20)) scripts/measure-port-throughput.sh
#
# Receivers, both inside the container's network namespace:
#   nc     busybox `nc -l` running in the container (what a container process sees; busybox reads in
#          small chunks, so this one is CPU-bound in the container)
#   socat  socat joined to the container's namespace with nsenter (a fast sink: shows the network
#          path itself)
# The sender is socat on the host. A private berthd runs on a temporary data root; everything it
# made is removed at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SIZE=${SIZE:-1073741824}
RUNS=${RUNS:-3}
OCTET=${BERTH_TEST_NET_OCTET:-214}
work=$(mktemp -d /tmp/berth-tput-XXXXXX)
bridge=bp$((RANDOM % 100000))
bip=10.$OCTET.$((200 + RANDOM % 50)).1/24
id=

. scripts/lib/scratch-daemon.sh
finish() {
  [[ -n $id ]] && berth rm -f "$id" >/dev/null 2>&1 || true
  scratch_daemon_stop
}
trap finish EXIT
scratch_daemon_start "$work" "$bridge" "$bip"

p_nc=$((31000 + RANDOM % 1000))
p_socat=$((p_nc + 1000))
id=$(berth run -d -p "127.0.0.1:$p_nc:5001" -p "127.0.0.1:$p_socat:5002" busybox sh -c 'while :; do nc -l -p 5001 >/dev/null; done')
ip=$(berth inspect -f '{{.NetworkSettings.IPAddress}}' "$id")
ns=$(berth inspect -f '{{.NetworkSettings.SandboxKey}}' "$id")
nsenter --net="$ns" socat -u TCP-LISTEN:5002,reuseaddr,fork OPEN:/dev/null &
sink=$!
trap 'kill $sink 2>/dev/null || true; finish' EXIT
sleep 0.5

# one transfer; prints MB/s
send() {
  local host=$1 port=$2 t0 t1
  t0=$(date +%s%N)
  head -c "$SIZE" /dev/zero | socat -u -b 262144 - "TCP:$host:$port,retry=20,interval=0.1"
  t1=$(date +%s%N)
  echo "$SIZE $t0 $t1" | awk '{ printf "%.0f\n", $1 / (($3 - $2) / 1e9) / 1e6 }'
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

echo "size: $SIZE bytes, runs: $RUNS, container $ip, published on 127.0.0.1"
for recv in nc socat; do
  if [[ $recv == nc ]]; then cport=5001 hport=$p_nc; else cport=5002 hport=$p_socat; fi
  direct=() published=()
  for _ in $(seq "$RUNS"); do
    direct+=("$(send "$ip" "$cport")")
    published+=("$(send 127.0.0.1 "$hport")")
  done
  d=$(printf '%s\n' "${direct[@]}" | median)
  p=$(printf '%s\n' "${published[@]}" | median)
  printf '%-6s direct %6s MB/s  published %6s MB/s  ratio %s%%   (runs: direct %s; published %s)\n' \
    "$recv" "$d" "$p" "$(awk -v a="$p" -v b="$d" 'BEGIN { printf "%.0f", 100 * a / b }')" "${direct[*]}" "${published[*]}"
done
