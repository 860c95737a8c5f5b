#!/usr/bin/env bash
# Process timeline of one `docker run --rm --network none busybox true` against a fresh berthd of a
# checkout (issue 7): every exec/exit of berthd's and the CLI's descendants, in ms from the CLI's
# start. Uses kernel tracepoints (`perf record -e sched:sched_process_{exec,fork,exit} -a`), so
# unlike strace it does not slow the processes down. Needs root and perf; REPEAT runs (default 3)
# after two warm-ups. The daemon's data root is temporary.
#
#   scripts/start-timeline.sh [CHECKOUT]      # default: this checkout
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
src=${1:-$here}
docker=${DOCKER_CLI:-/usr/local/bin/docker}
tar=/tmp/berth-test-cache/busybox.tar
[[ -s $tar ]] || { mkdir -p /tmp/berth-test-cache; bash "$here/scripts/make-busybox-rootfs.sh" "$tar" >/dev/null; }
w=$(mktemp -d /tmp/berth-timeline-XXXXXX)
node "$src/dist/src/bin/berthd.js" --data-root "$w/root" -H "unix://$w/s.sock" --bridge none >"$w/log" 2>&1 &
bp=$!
trap 'kill $bp 2>/dev/null || true; wait $bp 2>/dev/null || true; rm -rf "$w"' EXIT
export DOCKER_HOST=unix://$w/s.sock
for _ in $(seq 100); do "$docker" version >/dev/null 2>&1 && break; sleep 0.1; done
"$docker" import --change 'CMD ["sh"]' "$tar" busybox:latest >/dev/null
"$docker" run --rm --network none busybox true
"$docker" run --rm --network none busybox true
for _ in $(seq "${REPEAT:-3}"); do
  perf record -q -o "$w/perf.data" -e sched:sched_process_exec,sched:sched_process_fork,sched:sched_process_exit -a -- \
    sh -c "sleep 0.05; $docker run --rm --network none busybox true; sleep 0.2" 2>/dev/null
  perf script -i "$w/perf.data" 2>/dev/null >"$w/events.txt"
  node - "$w/events.txt" "$bp" "$docker" <<'JS'
const [file, daemonPid, cli] = process.argv.slice(2);
const lines = require('node:fs').readFileSync(file, 'utf8').split('\n');
const ev = [];
for (const l of lines) {
  const m = /^\s*(\S+)\s+(\d+)\s+\[\d+\]\s+([\d.]+):\s+sched:(\w+):\s+(.*)$/.exec(l);
  if (m) ev.push({ pid: +m[2], ts: +m[3], kind: m[4], rest: m[5] });
}
const cliExec = ev.find((e) => e.kind === 'sched_process_exec' && e.rest.includes(`filename=${cli} `));
if (!cliExec) { console.log('no CLI exec seen'); process.exit(0); }
const tree = new Set([+daemonPid, cliExec.pid]);
const name = new Map();
const out = [];
for (const e of ev) {
  if (e.kind === 'sched_process_fork') {
    const c = +/child_pid=(\d+)/.exec(e.rest)[1];
    if (tree.has(e.pid)) tree.add(c);
  } else if (e.kind === 'sched_process_exec' && tree.has(e.pid)) {
    const f = /filename=(\S+)/.exec(e.rest)[1].split('/').pop();
    name.set(e.pid, { f, ts: e.ts });
    out.push([e.ts, `exec ${f} [${e.pid}]`]);
  } else if (e.kind === 'sched_process_exit' && name.has(e.pid) && e.rest.includes('group_dead=true')) {
    const n = name.get(e.pid);
    out.push([e.ts, `  exit ${n.f} [${e.pid}] ${((e.ts - n.ts) * 1000).toFixed(1)} ms after its exec`]);
  }
}
const t0 = cliExec.ts;
for (const [ts, s] of out) if (ts >= t0) console.log(`${((ts - t0) * 1000).toFixed(1).padStart(7)} ms  ${s}`);
JS
  echo ---
done
