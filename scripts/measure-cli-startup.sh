#!/usr/bin/env bash
# CLI start-up (issue 7): `berth version`, `berth ps -a` and `berth inspect` through the installed
# wrapper (scripts/lib/cli-wrappers.sh) of this checkout and, with AGAINST=<other checkout>, of that
# one too (A/B in the same run), RUNS times each (default 30), interleaved, against one private
# berthd with 50 created containers. Prints median and min of the wall time and, when `perf` is
# installed, of the CPU time (perf stat task-clock), plus bare `node -e 0` with and without
# NODE_EXTRA_CA_CERTS for reference. Needs root and built checkouts (npm run build).
#
#   scripts/measure-cli-startup.sh
#   AGAINST=/work/main RUNS=40 scripts/measure-cli-startup.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

RUNS=${RUNS:-30}
OCTET=${BERTH_TEST_NET_OCTET:-214}
work=$(mktemp -d /tmp/berth-cli-start-XXXXXX)
. scripts/lib/scratch-daemon.sh
. scripts/lib/cli-wrappers.sh
finish() {
  # shellcheck disable=SC2046
  berth rm -f $(berth ps -aq 2>/dev/null) >/dev/null 2>&1 || true
  scratch_daemon_stop
}
trap finish EXIT
scratch_daemon_start "$work" "bc$((RANDOM % 100000))" "10.$OCTET.$((200 + RANDOM % 50)).1/24"
for i in $(seq 50); do berth create --network none --name "c$i" busybox sleep 1000 >/dev/null; done

host=unix://$work/berthd.sock
write_cli_wrappers "$PWD" "$work/bin-this" "$(command -v node)" 2>/dev/null
cmds=(this "$work/bin-this/berth")
if [[ -n ${AGAINST:-} ]]; then
  other=$(cd "$AGAINST" && pwd)
  if [[ -f $other/dist/src/bin/berth-launcher.cjs ]]; then
    write_cli_wrappers "$other" "$work/bin-other" "$(command -v node)" 2>/dev/null
  else # a checkout from before the bundle: its wrapper ran the ESM entry
    mkdir -p "$work/bin-other"
    printf '#!/bin/sh\nexec %s %s "$@"\n' "$(command -v node)" "$other/dist/src/bin/berth.js" >"$work/bin-other/berth"
    chmod 755 "$work/bin-other/berth"
  fi
  cmds+=(against "$work/bin-other/berth")
fi

node --input-type=module - "$RUNS" "$host" "${cmds[@]}" <<'JS'
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
const [runs, host, ...pairs] = process.argv.slice(2);
const perf = spawnSync('perf', ['--version']).status === 0;
const noCa = { ...process.env };
delete noCa.NODE_EXTRA_CA_CERTS;
const cases = [
  { label: 'node -e 0', cmd: [process.execPath, '-e', '0'] },
  { label: 'node -e 0, no NODE_EXTRA_CA_CERTS', cmd: [process.execPath, '-e', '0'], env: noCa },
];
for (let i = 0; i < pairs.length; i += 2) {
  for (const args of [['version'], ['ps', '-a'], ['inspect', 'c1']]) {
    cases.push({ label: `${pairs[i]}: berth ${args.join(' ')}`, cmd: [pairs[i + 1], '-H', host, ...args] });
  }
}
const tf = `/tmp/berth-cli-start-perf.${process.pid}`;
const once = (c) => {
  const argv = perf ? ['perf', 'stat', '-x,', '-e', 'task-clock', '-o', tf, '--', ...c.cmd] : c.cmd;
  const t0 = process.hrtime.bigint();
  const r = spawnSync(argv[0], argv.slice(1), { stdio: 'ignore', env: c.env ?? process.env });
  const wall = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${c.cmd.join(' ')} exited ${r.status}`);
  const cpu = perf ? Number(readFileSync(tf, 'utf8').split('\n').find((l) => l.includes('task-clock')).split(',')[0]) : NaN;
  return { wall, cpu };
};
for (const c of cases) { once(c); c.wall = []; c.cpu = []; }
for (let i = 0; i < Number(runs); i++) for (const c of cases) { const r = once(c); c.wall.push(r.wall); c.cpu.push(r.cpu); }
rmSync(tf, { force: true });
const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const min = (a) => Math.min(...a);
console.log(`${runs} runs each, interleaved; ms`);
for (const c of cases) {
  const cpu = perf ? `   CPU median ${med(c.cpu).toFixed(1).padStart(6)} min ${min(c.cpu).toFixed(1).padStart(6)}` : '';
  console.log(`${c.label.padEnd(36)} wall median ${med(c.wall).toFixed(1).padStart(6)} min ${min(c.wall).toFixed(1).padStart(6)}${cpu}`);
}
JS
