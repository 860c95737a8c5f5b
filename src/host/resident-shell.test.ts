import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ResidentShell } from './resident-shell.js';

function shell(): { sh: ResidentShell; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'berth-rsh-'));
  return { sh: new ResidentShell(join(dir, 'jobs')), dir };
}

test('exec: output, exit codes, quoting of arguments and stdin taken literally', async () => {
  const { sh, dir } = shell();
  try {
    const r = await sh.exec(['/bin/sh', '-c', 'printf "%s|" "$@"; echo err >&2; exit 3', 'x', "it's", '$HOME', '`id`', 'a b']);
    assert.deepEqual(r, { code: 3, stdout: "it's|$HOME|`id`|a b|", stderr: 'err\n' });
    const input = "line 1\n'quoted' $PATH `date`\n__berth_input_2\nEOF\n";
    const c = await sh.exec(['/bin/cat'], input);
    assert.equal(c.code, 0);
    assert.equal(c.stdout, input);
    const none = await sh.exec(['/bin/cat']);
    assert.equal(none.stdout, '', 'no input: stdin is empty, not the shell\'s command stream');
    const missing = await sh.exec(['/nonexistent/binary']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /nonexistent/);
  } finally {
    sh.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('exec: commands run concurrently and each gets its own result; a dead shell is replaced', async () => {
  const { sh, dir } = shell();
  try {
    // the first command waits until the last one has run: they cannot run one after another
    const flag = join(dir, 'flag');
    const rs = await Promise.all([
      sh.exec(['/bin/sh', '-c', `while [ ! -e ${flag} ]; do sleep 0.05; done; echo 1`]),
      sh.exec(['/bin/echo', '2']),
      sh.exec(['/bin/touch', flag]),
    ]);
    assert.deepEqual(rs.map((r) => r.stdout.trim()), ['1', '2', '']);
    // kill the shell itself (the job's parent is a subshell; its parent is the shell): the pending
    // command fails, the next one works
    const pending = sh.exec(['/bin/sh', '-c', 'read -r _ _ _ pp _ </proc/$PPID/stat; kill -9 $pp; sleep 1']);
    await assert.rejects(pending, /resident shell/);
    assert.equal((await sh.exec(['/bin/echo', 'again'])).stdout, 'again\n');
  } finally {
    sh.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
