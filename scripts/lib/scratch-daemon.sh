# Sourced by the measurement scripts: a private berthd on a temporary data root, with busybox:latest.
#
#   scratch_daemon_start WORKDIR BRIDGE BIP   start berthd (socket WORKDIR/berthd.sock), import busybox
#   berth ARGS...                            the CLI against that daemon
#   scratch_daemon_stop                      stop berthd (by its pid) and remove WORKDIR
# Callers remove their own containers and networks before scratch_daemon_stop.

scratch_work=
scratch_pid=

berth() { node dist/src/bin/berth.js -H "unix://$scratch_work/berthd.sock" "$@"; }

scratch_daemon_start() {
  scratch_work=$1
  node dist/src/bin/berthd.js --data-root "$scratch_work/root" -H "unix://$scratch_work/berthd.sock" \
    --bridge "$2" --bip "$3" >"$scratch_work/berthd.log" 2>&1 &
  scratch_pid=$!
  for _ in $(seq 100); do berth version >/dev/null 2>&1 && break; sleep 0.1; done
  local tar=/tmp/berth-test-cache/busybox.tar
  if [[ ! -s $tar ]]; then
    mkdir -p /tmp/berth-test-cache
    bash scripts/make-busybox-rootfs.sh "$tar" >/dev/null
  fi
  berth import --change 'CMD ["sh"]' "$tar" busybox:latest >/dev/null
}

scratch_daemon_stop() {
  if [[ -n $scratch_pid ]]; then
    kill "$scratch_pid" 2>/dev/null || true
    wait "$scratch_pid" 2>/dev/null || true
  fi
  [[ -n $scratch_work ]] && rm -rf "$scratch_work"
  return 0
}
