/**
 * Named network namespaces kept as bind-mounted nsfs files under <root>/netns/<id>, so a container's
 * network stack outlives its processes between netavark setup and teardown.
 */
import { mkdir, rm, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { EngineError } from '../base/errors.js';
import { run, systemBinary, type Runner } from './exec.js';

/** Creates and removes per-container network namespace files. */
export class NetnsManager {
  /**
   * @param dir the directory holding the namespace files (<root>/netns).
   * @param exec how to run unshare/nsenter/umount (the network service's resident shell).
   */
  constructor(readonly dir: string, private readonly exec: Runner = run) {}

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

  /**
   * Create a fresh namespace (loopback up) for `id`; returns its path. With `batch` (iproute2
   * `ip -batch` lines), the same process then runs those commands inside the new namespace, with
   * IPv6 address autoconfiguration off for the interfaces it creates (as netavark sets it) — one
   * process for the namespace and a container's whole interface setup. On failure the namespace is
   * removed again.
   */
  async create(id: string, batch?: string): Promise<string> {
    await mkdir(this.dir, { recursive: true });
    const p = this.path(id);
    if (await this.isMounted(id)) await this.remove(id);
    await writeFile(p, '');
    const ip = systemBinary('ip');
    const r = batch === undefined
      ? await this.exec(systemBinary('unshare'), [`--net=${p}`, ip, 'link', 'set', 'lo', 'up'])
      : await this.exec(systemBinary('unshare'), [`--net=${p}`, ...this.batchCommand()], `link set lo up\n${batch}`);
    if (r.code !== 0) {
      await this.remove(id).catch(() => undefined);
      throw new EngineError('internal', `creating network namespace: ${r.stderr.trim()}`);
    }
    return p;
  }

  /** Run `ip -batch` lines inside an existing namespace (IPv6 autoconf off for new interfaces, as in create). */
  async configure(id: string, batch: string): Promise<void> {
    const r = await this.exec(systemBinary('nsenter'), [`--net=${this.path(id)}`, ...this.batchCommand()], batch);
    if (r.code !== 0) throw new EngineError('internal', `configuring network namespace: ${r.stderr.trim()}`);
  }

  /** `sh -c '…; exec ip -batch -'`: autoconf off for the interfaces about to be made, then the batch. */
  private batchCommand(): string[] {
    return [systemBinary('sh'), '-c', `{ echo 0 >/proc/sys/net/ipv6/conf/default/autoconf; } 2>/dev/null; exec ${systemBinary('ip')} -batch -`];
  }

  /** Unmount and delete a namespace file; missing is fine. */
  async remove(id: string): Promise<void> {
    const p = this.path(id);
    for (let i = 0; i < 3 && (await this.isMounted(id)); i++) await this.exec(systemBinary('umount'), ['-l', p]);
    await rm(p, { force: true });
  }
}
