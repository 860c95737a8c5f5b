/**
 * Named network namespaces kept as bind-mounted nsfs files under <root>/netns/<id>, so a container's
 * network stack outlives its processes between netavark setup and teardown.
 */
import { mkdir, rm, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { EngineError } from '../base/errors.js';
import { run } from './exec.js';

/** Creates and removes per-container network namespace files. */
export class NetnsManager {
  /** @param dir the directory holding the namespace files (<root>/netns). */
  constructor(readonly dir: string) {}

  /** The path of a container's namespace file. */
  path(id: string): string {
    return join(this.dir, id);
  }

  /** True when the file is a mounted namespace (listed in /proc/self/mountinfo). */
  async isMounted(id: string): Promise<boolean> {
    const info = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
    const p = this.path(id);
    return info.split('\n').some((l) => l.split(' ')[4] === p);
  }

  /** Create a fresh namespace (loopback up) for `id`; returns its path. */
  async create(id: string): Promise<string> {
    await mkdir(this.dir, { recursive: true });
    const p = this.path(id);
    if (await this.isMounted(id)) await this.remove(id);
    await writeFile(p, '');
    const r = await run('unshare', [`--net=${p}`, 'ip', 'link', 'set', 'lo', 'up']);
    if (r.code !== 0) {
      await rm(p, { force: true });
      throw new EngineError('internal', `creating network namespace: ${r.stderr.trim()}`);
    }
    return p;
  }

  /** Unmount and delete a namespace file; missing is fine. */
  async remove(id: string): Promise<void> {
    const p = this.path(id);
    for (let i = 0; i < 3 && (await this.isMounted(id)); i++) await run('umount', ['-l', p]);
    await rm(p, { force: true });
  }
}
