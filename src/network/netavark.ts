/**
 * Driver for Podman's netavark (bridge, veth, NAT and port forwarding) with aardvark-dns. netavark
 * takes a NetworkOptions JSON on stdin (`setup <netns>` / `teardown <netns>`) and prints a
 * StatusBlock per network on setup. It does no IPAM: berth passes static IPs.
 */
import { appendFile, mkdir, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { EngineError } from '../base/errors.js';
import { writeFileAtomic } from '../host/atomic-fs.js';
import { aliveFromStat } from '../host/proc.js';
import { run } from './exec.js';

/** One network as netavark wants it (network_info values). */
export interface NetavarkNetwork {
  name: string;
  id: string;
  driver: 'bridge';
  network_interface: string;
  subnets: Array<{ subnet: string; gateway: string }>;
  ipv6_enabled: false;
  internal: boolean;
  dns_enabled: boolean;
  ipam_options: { driver: 'host-local' };
  options?: Record<string, string>;
}

/** Per-network attachment options of a container. */
export interface PerNetworkOptions {
  interface_name: string;
  static_ips: string[];
  aliases: string[];
  static_mac?: string;
}

/** One published port. */
export interface PortMapping {
  host_ip: string;
  container_port: number;
  host_port: number;
  range: number;
  protocol: 'tcp' | 'udp';
}

/** The NetworkOptions document fed to netavark. */
export interface NetworkOptions {
  container_id: string;
  container_name: string;
  port_mappings: PortMapping[];
  networks: Record<string, PerNetworkOptions>;
  network_info: Record<string, NetavarkNetwork>;
  dns_servers?: string[];
}

/** The part of netavark's StatusBlock berth reads. */
export interface StatusBlock {
  dns_server_ips?: string[];
  dns_search_domains?: string[];
  interfaces?: Record<string, { mac_address: string; subnets?: Array<{ ipnet: string; gateway?: string }> }>;
}

/** Locations of the binaries and the state directory. */
export interface NetavarkOptions {
  binary?: string;
  aardvark?: string;
  /** netavark --config directory (aardvark keeps its config under it). */
  configDir: string;
}

/** Find a binary among the usual locations. */
export function findBinary(name: string): string | undefined {
  for (const d of ['/usr/lib/podman', '/usr/libexec/podman', '/usr/local/lib/podman', '/usr/local/bin', '/usr/bin']) {
    const p = join(d, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** Runs netavark setup/teardown. */
export class Netavark {
  readonly binary: string;
  readonly aardvark: string;

  constructor(private readonly o: NetavarkOptions) {
    this.binary = o.binary ?? findBinary('netavark') ?? 'netavark';
    this.aardvark = o.aardvark ?? findBinary('aardvark-dns') ?? 'aardvark-dns';
  }

  private args(): string[] {
    return ['--config', this.o.configDir, '--aardvark-binary', this.aardvark];
  }

  private async prepare(): Promise<void> {
    // netavark fails (after creating the veth) when the aardvark directory is missing
    await mkdir(join(this.o.configDir, 'aardvark-dns'), { recursive: true });
  }

  /** Configure `netns` for the given options; returns the status per network. */
  async setup(netns: string, opts: NetworkOptions): Promise<Record<string, StatusBlock>> {
    await this.prepare();
    const r = await run(this.binary, [...this.args(), 'setup', netns], JSON.stringify(opts));
    if (r.code !== 0) throw new EngineError('internal', `netavark setup: ${errorText(r.stdout, r.stderr)}`);
    try {
      return JSON.parse(r.stdout) as Record<string, StatusBlock>;
    } catch {
      throw new EngineError('internal', `netavark setup: unreadable output: ${r.stdout.slice(0, 200)}`);
    }
  }

  /**
   * Remove a container's lines from aardvark-dns's file for one network (`<config>/aardvark-dns/<name>`:
   * the gateway line, then `<container id> <ipv4> <ipv6> <names>` per container). Used before a
   * setup that re-adds the same container, which would otherwise list it twice.
   */
  async dropDnsEntries(network: string, containerId: string): Promise<void> {
    await this.dropDnsLines(network, containerId, false);
  }

  /**
   * {@link dropDnsEntries}; with `removeWhenEmpty` the file goes instead when only the gateway
   * line would be left (one read, one write or removal).
   */
  private async dropDnsLines(network: string, containerId: string, removeWhenEmpty: boolean): Promise<void> {
    const f = join(this.o.configDir, 'aardvark-dns', network);
    const text = await readFile(f, 'utf8').catch(() => undefined);
    if (text === undefined) return;
    const lines = text.split('\n');
    const kept = lines.filter((l, i) => i === 0 || !l.startsWith(`${containerId} `));
    if (removeWhenEmpty && kept.filter((l) => l.trim()).length <= 1) await rm(f, { force: true });
    else if (kept.length !== lines.length) await writeFileAtomic(f, kept.join('\n'));
  }

  /** The pid of the aardvark-dns that serves this configuration, when it runs (not a zombie). */
  async aardvarkPid(): Promise<number | undefined> {
    const pid = Number((await readFile(join(this.o.configDir, 'aardvark-dns', 'aardvark.pid'), 'utf8').catch(() => '')).trim());
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    return stat.includes('(aardvark-dns)') && aliveFromStat(stat) ? pid : undefined;
  }

  /**
   * True when aardvark-dns runs and serves `network` on `gateway`: its file (written by netavark for
   * the network's first container) exists and starts with the gateway line. Returns the pid.
   */
  async dnsServing(network: string, gateway: string): Promise<number | undefined> {
    const text = await readFile(join(this.o.configDir, 'aardvark-dns', network), 'utf8').catch(() => undefined);
    if (text === undefined || text.split('\n')[0]!.split(',')[0]!.trim() !== gateway) return undefined;
    return this.aardvarkPid();
  }

  /**
   * Add a container's names to aardvark-dns for one network as netavark does (append
   * `<id> <ipv4> <ipv6> <name,alias…>`, then SIGHUP the server, which reloads its files). Only for a
   * network {@link dnsServing} reported served. berth runs one netavark operation at a time, so
   * netavark's lock file is not needed against itself.
   */
  async addDnsEntry(network: string, containerId: string, ipv4: string, names: string[], pid: number): Promise<void> {
    await appendFile(join(this.o.configDir, 'aardvark-dns', network), `${containerId} ${ipv4}  ${names.join(',')}\n`);
    process.kill(pid, 'SIGHUP');
  }

  /**
   * Remove a container's names from aardvark-dns for one network as netavark's teardown does: its
   * lines go, the file goes when only the gateway line is left (aardvark-dns stops serving the
   * network, and exits when it serves none), and the server is told to reload.
   */
  async removeDnsEntry(network: string, containerId: string): Promise<void> {
    await this.dropDnsLines(network, containerId, true);
    const pid = await this.aardvarkPid();
    if (pid !== undefined) {
      try {
        process.kill(pid, 'SIGHUP');
      } catch {
        // exited meanwhile
      }
    }
  }

  /** Undo a setup with the same options. */
  async teardown(netns: string, opts: NetworkOptions): Promise<void> {
    await this.prepare();
    const r = await run(this.binary, [...this.args(), 'teardown', netns], JSON.stringify(opts));
    if (r.code !== 0) throw new EngineError('internal', `netavark teardown: ${errorText(r.stdout, r.stderr)}`);
  }
}

function errorText(stdout: string, stderr: string): string {
  try {
    const j = JSON.parse(stdout) as { error?: string };
    if (j.error) return j.error;
  } catch {
    // not JSON
  }
  return (stderr.split('\n').filter((l) => l && !l.includes('syslog')).join(' ') || stdout).trim();
}
