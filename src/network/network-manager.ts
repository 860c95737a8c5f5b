/**
 * The network service: user-defined and default bridge networks (records under <root>/networks/),
 * IPAM, per-container network namespaces, and netavark/aardvark-dns for veths, NAT, published
 * ports and DNS. Container hooks: register/forget (create/remove), attach/detach (start/stop).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { join } from 'node:path';

import { conflict, EngineError, invalidArgument, messageOf, notFound, permissionDenied } from '../base/errors.js';
import { readJsonIfExists, writeJsonAtomic } from '../host/atomic-fs.js';
import type { Filters, Json } from '../engine/services.js';
import { allocateIp, contains, formatCidr, formatIp, overlaps, parseCidr, parseIp, pickSubnet, routesToCidrs, type Cidr } from './ipam.js';
import { Netavark, type NetavarkNetwork, type NetworkOptions, type PortMapping } from './netavark.js';
import { NetnsManager } from './netns.js';
import { mergeRanges } from './port-ranges.js';
import { run, systemBinary, type Runner } from './exec.js';
import { ResidentShell } from '../host/resident-shell.js';

/** A bridge network as persisted (Docker field names plus berth's own). */
export interface NetworkRecord {
  Id: string;
  Name: string;
  Created: string;
  Driver: 'bridge';
  Internal: boolean;
  Attachable: boolean;
  Labels: Record<string, string>;
  Options: Record<string, string>;
  IPAM: { Driver: string; Options: Record<string, string> | null; Config: Array<{ Subnet: string; Gateway: string; IPRange?: string }> };
  /** Host bridge interface name. */
  Bridge: string;
  /** aardvark-dns serves names on this network (user networks). */
  Dns: boolean;
  /** The default "bridge" network. */
  Default?: boolean;
}

/** What a container asked for on one network (create's EndpointsConfig, or connect). */
export interface EndpointRequest {
  Aliases: string[];
  IPv4Address?: string;
  MacAddress?: string;
}

/** A container's wanted networks, by network id (persisted under networks/containers/). */
interface ContainerNetConfig {
  id: string;
  name: string;
  networks: Record<string, EndpointRequest>;
}

/** One live endpoint. */
interface Endpoint {
  networkId: string;
  endpointId: string;
  ifname: string;
  ip: string;
  prefix: number;
  gateway: string;
  mac: string;
  aliases: string[];
  /**
   * The host side of the veth when berth attached the endpoint itself with iproute2 (the fast path,
   * see {@link NetworkManager.fastBatch}); absent when netavark set it up. Decides how it is undone.
   */
  hostIf?: string;
}

/** A running container's network state (persisted under networks/attachments/). */
interface Attachment {
  id: string;
  name: string;
  netns: string;
  ports: PortMapping[];
  /** NetworkSettings.Ports. */
  portsView: Record<string, Array<{ HostIp: string; HostPort: string }> | null>;
  endpoints: Record<string, Endpoint>;
}

/** The container fields the hooks need. */
export interface AttachContainer {
  id: string;
  /** With or without the leading slash. */
  name: string;
  hostConfig: Json;
  config: Json;
}

/** Result of {@link NetworkManager.attach}. */
export interface AttachResult {
  netnsPath: string;
  /** The primary address and gateway (for /etc/hosts). */
  ip: string;
  gateway: string;
  /** Name servers for resolv.conf: aardvark's address on DNS networks, otherwise empty (use the host's). */
  dnsServers: string[];
  settings: Json;
}

/** A container as the network API sees it. */
export interface ContainerRef {
  id: string;
  name: string;
  running: boolean;
  hostConfig: Json;
  config: Json;
}

/** Options of {@link NetworkManager}. */
export interface NetworkManagerOptions {
  root: string;
  /** Default bridge interface name; "none" disables the default bridge (berthd --bridge none). */
  bridge?: string;
  /** Default bridge gateway address with prefix (berthd --bip, e.g. "10.213.0.1/24"). */
  bip?: string;
  /** Event sink (network create/connect/disconnect/destroy). */
  publish?: (type: string, action: string, id: string, attrs: Record<string, string>) => void;
  log?: (msg: string) => void;
  netavarkBinary?: string;
  aardvarkBinary?: string;
}

const BUILTIN_CREATED = new Date().toISOString();

function isoNano(s: string): string {
  return s.replace(/\.(\d{3})Z$/, '.$1000000Z');
}

/** The id of a built-in pseudo network (host, none). */
function builtinId(name: string): string {
  return createHash('sha256').update(`berth-builtin-network:${name}`).digest('hex');
}

/** Manages networks and container attachments. */
export class NetworkManager {
  private readonly nets = new Map<string, NetworkRecord>();
  private readonly configs = new Map<string, ContainerNetConfig>();
  private readonly attachments = new Map<string, Attachment>();
  private readonly dir: string;
  private readonly netns: NetnsManager;
  private readonly nv: Netavark;
  /** Starts the namespace and fast-path commands (ip, unshare, umount) without forking berthd (see ResidentShell). */
  private readonly shell: ResidentShell;
  private readonly exec: Runner;
  private chain: Promise<unknown> = Promise.resolve();
  /** Whether this daemon's isolation chain exists (undefined: not looked up yet); only berth touches it. */
  private isoExists: boolean | undefined;
  /** Networks whose bridge is held by a keeper port (see keepBridges). */
  private readonly kept = new Set<string>();
  /**
   * Detached fast-path containers whose veths and namespace file are being removed in the
   * background, by container id: deleting a veth waits for an RCU grace period in the kernel (~20 ms
   * here), so detach does not wait for it. Their addresses stay taken until it is done; a new attach
   * of the same container, `network rm` of their network and shutdown wait for it.
   */
  private readonly releasing = new Map<string, { eps: Array<{ networkId: string; ip: string }>; done: Promise<void> }>();
  /** Resolves container refs for connect/disconnect; set by the engine. */
  lookupContainer?: (ref: string) => Promise<ContainerRef>;

  constructor(private readonly o: NetworkManagerOptions) {
    this.dir = join(o.root, 'networks');
    this.shell = new ResidentShell(join(o.root, 'network-jobs'));
    // a shell that died mid-command fails that command; it is then run the ordinary way
    this.exec = (cmd, args, input) => this.shell.exec([cmd, ...args], input).catch(() => run(cmd, args, input));
    this.netns = new NetnsManager(join(o.root, 'netns'), this.exec);
    const nvOpts: { configDir: string; binary?: string; aardvark?: string } = { configDir: join(o.root, 'netavark') };
    if (o.netavarkBinary) nvOpts.binary = o.netavarkBinary;
    if (o.aardvarkBinary) nvOpts.aardvark = o.aardvarkBinary;
    this.nv = new Netavark(nvOpts);
  }

  /** Run one state-changing operation at a time. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn, fn);
    this.chain = p.catch(() => undefined);
    return p;
  }

  private netFile(id: string): string {
    return join(this.dir, `${id}.json`);
  }

  /** True when default-network containers get the bridge (false with --bridge none). */
  get bridgeEnabled(): boolean {
    return this.o.bridge !== 'none';
  }

  /** Load state, create the default bridge record, and drop attachments whose namespace is gone. */
  async init(): Promise<void> {
    await mkdir(join(this.dir, 'containers'), { recursive: true });
    await mkdir(join(this.dir, 'attachments'), { recursive: true });
    await mkdir(join(this.o.root, 'netavark', 'aardvark-dns'), { recursive: true });
    for (const f of await readdir(this.dir)) {
      if (!f.endsWith('.json')) continue;
      const r = await readJsonIfExists<NetworkRecord>(join(this.dir, f)).catch(() => undefined);
      if (r?.Id) this.nets.set(r.Id, r);
    }
    for (const f of await readdir(join(this.dir, 'containers'))) {
      const c = await readJsonIfExists<ContainerNetConfig>(join(this.dir, 'containers', f)).catch(() => undefined);
      if (c?.id) this.configs.set(c.id, c);
    }
    for (const f of await readdir(join(this.dir, 'attachments'))) {
      const a = await readJsonIfExists<Attachment>(join(this.dir, 'attachments', f)).catch(() => undefined);
      if (!a?.id) continue;
      if (await this.netns.isMounted(a.id)) this.attachments.set(a.id, a);
      else await rm(join(this.dir, 'attachments', f), { force: true });
    }
    await this.sweepNetns();
    // one listing of the host's veths serves both the keepers and the restored fast-path endpoints
    const masters = await this.vethMasters();
    this.findKeepers(masters);
    await this.reapply(masters);
    if (this.bridgeEnabled && !this.defaultNet()) {
      const taken = await this.takenSubnets();
      let subnet: Cidr;
      let gateway: number | undefined;
      if (this.o.bip) {
        subnet = parseCidr(this.o.bip);
        gateway = parseIp(this.o.bip.split('/')[0]!);
      } else try {
        const want = parseCidr('172.17.0.0/16');
        subnet = taken.some((t) => overlaps(t, want)) ? pickSubnet(taken) : want;
      } catch {
        subnet = pickSubnet(taken);
      }
      const rec: NetworkRecord = {
        Id: randomBytes(32).toString('hex'),
        Name: 'bridge',
        Created: isoNano(new Date().toISOString()),
        Driver: 'bridge',
        Internal: false,
        Attachable: false,
        Labels: {},
        Options: {
          'com.docker.network.bridge.default_bridge': 'true',
          'com.docker.network.bridge.enable_icc': 'true',
          'com.docker.network.bridge.enable_ip_masquerade': 'true',
          'com.docker.network.bridge.host_binding_ipv4': '0.0.0.0',
          'com.docker.network.bridge.name': this.o.bridge ?? 'berth0',
          'com.docker.network.driver.mtu': '1500',
        },
        IPAM: { Driver: 'default', Options: null, Config: [{ Subnet: formatCidr(subnet), Gateway: formatIp(gateway ?? subnet.base + 1) }] },
        Bridge: this.o.bridge ?? 'berth0',
        Dns: false,
        Default: true,
      };
      await writeJsonAtomic(this.netFile(rec.Id), rec);
      this.nets.set(rec.Id, rec);
    }
  }

  /**
   * Re-apply netavark setup for the attachments that survived a daemon restart, so their published
   * ports, NAT and DNS work even when rules or aardvark-dns were lost meanwhile.
   *
   * netavark 1.4 has no "firewall only" verb and refuses to set up an interface that exists in the
   * namespace, so the container's own namespace is left alone: the same options are set up in a
   * scratch namespace, which (re)installs the bridge, the NAT and port-forward rules (netavark adds
   * only missing rules) and the aardvark-dns entries and process, and the scratch namespace is then
   * dropped without a teardown, which deletes its veth pair and nothing else. The container keeps its
   * interfaces, addresses and open connections. Only when its interfaces are gone (the namespace was
   * emptied meanwhile) is it torn down and set up again with the same addresses and MACs. A failure
   * is logged and leaves that container without network (as after a crash).
   *
   * Endpoints berth attached itself (fast path) have no per-container rules: their network's bridge,
   * NAT and forward rules are restored once per network through a scratch endpoint, and their veth
   * is checked to still sit on the bridge; when it or the container side is gone, the container is
   * set up again through netavark. The bridges in use get their keepers back.
   */
  private async reapply(masters: Map<string, string>): Promise<void> {
    if (this.attachments.size === 0) return;
    await this.dropStaleAardvarkPid();
    const restored = new Set<string>();
    for (const a of [...this.attachments.values()]) {
      const eps = Object.values(a.endpoints).filter((ep) => this.nets.has(ep.networkId)).sort((x, y) => x.ifname.localeCompare(y.ifname, 'en', { numeric: true }));
      if (eps.length === 0) continue;
      try {
        const fastIntact = eps.every((ep) => !ep.hostIf || masters.get(ep.hostIf) === this.nets.get(ep.networkId)!.Bridge);
        if (fastIntact && (await this.interfacesIntact(a.netns, eps))) {
          // netavark's endpoints, and fast ones on networks with DNS (their aardvark entries and server)
          const nvEps = eps.filter((ep) => !ep.hostIf || this.nets.get(ep.networkId)!.Dns);
          if (nvEps.length > 0) await this.restoreRules(a, nvEps, this.netOptions(a, nvEps, a.ports));
          for (const ep of nvEps) restored.add(ep.networkId);
          for (const ep of eps) {
            if (restored.has(ep.networkId)) continue;
            await this.restoreNetwork(this.nets.get(ep.networkId)!);
            restored.add(ep.networkId);
          }
        } else {
          for (const ep of eps) {
            if (!ep.hostIf) continue;
            await this.deleteLink(ep.hostIf);
            delete ep.hostIf;
          }
          const opts = this.netOptions(a, eps, a.ports);
          await this.nv.teardown(a.netns, opts).catch(() => undefined);
          const st = await this.nv.setup(a.netns, opts);
          this.applyStatus(eps, st);
          await this.persistAttachment(a);
          for (const ep of eps) restored.add(ep.networkId);
        }
      } catch (e) {
        this.o.log?.(`network restore ${a.id.slice(0, 12)}: ${messageOf(e)}`);
      }
    }
    await this.syncIsolation().catch((e) => this.o.log?.(`isolation rules: ${messageOf(e)}`));
    await this.keepBridges([...restored]);
  }

  /**
   * Namespace files no attachment refers to (a crash between a detach and its background release, or
   * during a scratch setup) are unmounted and removed; their fast-path veths, if any, go with them.
   */
  private async sweepNetns(): Promise<void> {
    const names = await readdir(this.netns.dir).catch(() => [] as string[]);
    for (const f of names) {
      if (this.attachments.has(f)) continue;
      if (!f.startsWith('.')) await this.deleteLink(this.fastIfName(f));
      await this.netns.remove(f).catch((e) => this.o.log?.(`removing namespace ${f}: ${messageOf(e)}`));
    }
  }

  /** Host veths and the bridge each is enslaved to ('' when none). */
  private async vethMasters(): Promise<Map<string, string>> {
    const r = await run(systemBinary('ip'), ['-j', 'link', 'show', 'type', 'veth']).catch(() => undefined);
    try {
      return new Map((JSON.parse(r?.stdout || '[]') as Array<{ ifname: string; master?: string }>).map((l) => [l.ifname, l.master ?? '']));
    } catch {
      return new Map();
    }
  }

  /** True when every endpoint's interface is in the namespace with its address. */
  private async interfacesIntact(netns: string, eps: Endpoint[]): Promise<boolean> {
    const r = await run(systemBinary('nsenter'), [`--net=${netns}`, systemBinary('ip'), '-j', '-4', 'addr', 'show']);
    if (r.code !== 0) return false;
    let links: Array<{ ifname?: string; addr_info?: Array<{ local?: string }> }>;
    try {
      links = JSON.parse(r.stdout) as typeof links;
    } catch {
      return false;
    }
    return eps.every((ep) => links.some((l) => l.ifname === ep.ifname && (l.addr_info ?? []).some((x) => x.local === ep.ip)));
  }

  /** Firewall, port forwarding and DNS of a live attachment, through a scratch namespace (see reapply). */
  private async restoreRules(a: Attachment, eps: Endpoint[], opts: NetworkOptions): Promise<void> {
    for (const ep of eps) if (this.nets.get(ep.networkId)?.Dns) await this.nv.dropDnsEntries(ep.networkId, a.id);
    await this.inScratchNs(`.restore-${a.id}`, (ns) => this.nv.setup(ns, opts));
  }

  /** Run `fn` with a fresh network namespace named `id`, removed afterwards (without a teardown). */
  private async inScratchNs(id: string, fn: (ns: string) => Promise<unknown>): Promise<void> {
    const ns = await this.netns.create(id);
    try {
      await fn(ns);
    } finally {
      await this.netns.remove(id);
    }
  }

  /**
   * A network's own bridge, NAT and forward rules (what fast-path endpoints rely on), through a
   * throwaway endpoint on a free address set up in a scratch namespace, which is then dropped
   * without a teardown (see reapply).
   */
  private async restoreNetwork(n: NetworkRecord): Promise<void> {
    await this.inScratchNs(`.restore-${n.Id}`, (ns) => this.nv.setup(ns, this.scratchOptions(n, 'berth-restore')));
  }

  /** Options of a throwaway endpoint on `n` (a free address, no ports, no DNS entry). */
  private scratchOptions(n: NetworkRecord, tag: string): NetworkOptions {
    const subnet = parseCidr(n.IPAM.Config[0]!.Subnet);
    return {
      container_id: createHash('sha256').update(`${tag}:${n.Id}`).digest('hex'),
      container_name: tag,
      port_mappings: [],
      networks: { [n.Id]: { interface_name: 'eth0', static_ips: [formatIp(allocateIp(subnet, this.usedIps(n.Id)))], aliases: [] } },
      // no DNS: a setup with DNS would start aardvark-dns for a container that never exists, and a
      // teardown would race its pid file
      network_info: { [n.Id]: { ...this.netavarkNet(n), dns_enabled: false } },
    };
  }

  /**
   * netavark signals the pid in aardvark.pid and starts a new aardvark-dns only when that fails; a
   * pid that is gone or a zombie (a dead server not yet reaped) would leave the networks without DNS.
   */
  private async dropStaleAardvarkPid(): Promise<void> {
    const pidFile = join(this.o.root, 'netavark', 'aardvark-dns', 'aardvark.pid');
    const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
    if (!Number.isInteger(pid) || pid <= 0) return;
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (!stat || state === 'Z' || state === 'X' || !stat.includes('(aardvark-dns)')) await rm(pidFile, { force: true });
  }

  private defaultNet(): NetworkRecord | undefined {
    return [...this.nets.values()].find((n) => n.Default);
  }

  /** Host routes plus the subnets of every network. */
  private async takenSubnets(): Promise<Cidr[]> {
    const r = await run(systemBinary('ip'), ['-j', 'route']).catch(() => undefined);
    let routes: Array<{ dst?: string; dev?: string }> = [];
    try {
      routes = r && r.code === 0 ? (JSON.parse(r.stdout) as typeof routes) : [];
    } catch {
      routes = [];
    }
    const ours = new Set([...this.nets.values()].map((n) => n.Bridge));
    const out = routesToCidrs(routes.filter((x) => !x.dev || !ours.has(x.dev)));
    for (const n of this.nets.values()) for (const c of n.IPAM.Config) out.push(parseCidr(c.Subnet));
    return out;
  }

  // ------------------------------------------------------------ lookup and views

  /** Find a network by name, full id or unique id prefix (built-ins host/none are not records). */
  private findRec(ref: string): NetworkRecord | undefined {
    const all = [...this.nets.values()];
    const byName = all.find((n) => n.Name === ref || n.Id === ref);
    if (byName) return byName;
    const pre = all.filter((n) => n.Id.startsWith(ref));
    if (pre.length > 1) throw invalidArgument(`network ${ref} is ambiguous (${pre.length} matches found based on ID prefix)`);
    return pre[0];
  }

  private mustFind(ref: string): NetworkRecord {
    const n = this.findRec(ref);
    if (!n) throw notFound(`network ${ref} not found`);
    return n;
  }

  private pseudo(name: 'host' | 'none'): Json {
    return {
      Name: name, Id: builtinId(name), Created: isoNano(BUILTIN_CREATED), Scope: 'local', Driver: name === 'host' ? 'host' : 'null',
      EnableIPv4: false, EnableIPv6: false, IPAM: { Driver: 'default', Options: null, Config: [] }, Internal: false, Attachable: false,
      Ingress: false, ConfigFrom: { Network: '' }, ConfigOnly: false, Containers: {}, Options: {}, Labels: {},
    };
  }

  private viewOf(n: NetworkRecord, withContainers: boolean): Json {
    const containers: Json = {};
    if (withContainers) {
      for (const a of this.attachments.values()) {
        const ep = a.endpoints[n.Id];
        if (!ep) continue;
        containers[a.id] = { Name: a.name, EndpointID: ep.endpointId, MacAddress: ep.mac, IPv4Address: `${ep.ip}/${ep.prefix}`, IPv6Address: '' };
      }
    }
    return {
      Name: n.Name, Id: n.Id, Created: n.Created, Scope: 'local', Driver: n.Driver, EnableIPv4: true, EnableIPv6: false,
      IPAM: n.IPAM, Internal: n.Internal, Attachable: n.Attachable, Ingress: false, ConfigFrom: { Network: '' }, ConfigOnly: false,
      Containers: containers, Options: n.Options, Labels: n.Labels,
    };
  }

  private allViews(withContainers: boolean): Json[] {
    const recs = [...this.nets.values()].sort((a, b) => (a.Default ? -1 : b.Default ? 1 : a.Created.localeCompare(b.Created)));
    return [...recs.map((n) => this.viewOf(n, withContainers)), this.pseudo('host'), this.pseudo('none')];
  }

  private inUse(id: string): boolean {
    return [...this.attachments.values()].some((a) => a.endpoints[id]);
  }

  /** GET /networks. */
  async list(filters: Filters): Promise<Json[]> {
    return this.allViews(true).filter((n) => this.matches(n, filters));
  }

  private matches(n: Json, f: Filters): boolean {
    const name = String(n['Name']);
    const id = String(n['Id']);
    const builtin = ['bridge', 'host', 'none'].includes(name);
    if (f['name']?.length && !f['name'].some((v) => name.includes(v))) return false;
    if (f['id']?.length && !f['id'].some((v) => id.startsWith(v))) return false;
    if (f['driver']?.length && !f['driver'].includes(String(n['Driver']))) return false;
    if (f['type']?.length && !f['type'].includes(builtin ? 'builtin' : 'custom')) return false;
    if (f['dangling']?.length) {
      const want = f['dangling'].includes('true') || f['dangling'].includes('1');
      const dangling = !builtin && Object.keys(n['Containers'] as Json).length === 0;
      if (want !== dangling) return false;
    }
    if (f['label']?.length) {
      const labels = (n['Labels'] as Record<string, string>) ?? {};
      for (const l of f['label']) {
        const i = l.indexOf('=');
        if (i < 0 ? !(l in labels) : labels[l.slice(0, i)] !== l.slice(i + 1)) return false;
      }
    }
    return true;
  }

  /** GET /networks/{id}. */
  async inspect(ref: string): Promise<Json> {
    const n = this.findRec(ref);
    if (n) return this.viewOf(n, true);
    for (const p of ['host', 'none'] as const) {
      const v = this.pseudo(p);
      if (ref === p || ref === v['Id'] || (ref.length > 0 && String(v['Id']).startsWith(ref))) return v;
    }
    throw notFound(`network ${ref} not found`);
  }

  // ------------------------------------------------------------ create / remove / prune

  /** POST /networks/create. */
  async create(body: Json): Promise<{ Id: string; Warning: string }> {
    return this.serial(async () => {
      const name = String(body['Name'] ?? '');
      if (!name) throw invalidArgument('network name is required');
      const driver = String(body['Driver'] || 'bridge');
      if (['bridge', 'host', 'none'].includes(name) || [...this.nets.values()].some((n) => n.Name === name)) {
        if (name === 'host' || name === 'none' || name === 'bridge') throw conflict(`network with name ${name} already exists`);
        throw conflict(`network with name ${name} already exists`);
      }
      if (driver === 'host' || driver === 'null') throw permissionDenied(`only one instance of "${driver}" network is allowed`);
      if (driver !== 'bridge') throw notFound(`plugin "${driver}" not found`);
      if (body['EnableIPv6'] === true) throw invalidArgument('IPv6 networks are not supported by berth yet');
      const ipam = (body['IPAM'] as Json | undefined) ?? {};
      const cfgs = ((ipam['Config'] as Json[] | null) ?? []).filter((c) => c && (c['Subnet'] || c['Gateway'] || c['IPRange']));
      if (cfgs.length > 1) throw invalidArgument('berth supports one IPv4 subnet per network');
      const taken = await this.takenSubnets();
      let subnet: Cidr;
      let gateway: number;
      let ipRange: string | undefined;
      if (cfgs[0] && cfgs[0]['Subnet']) {
        subnet = parseCidr(String(cfgs[0]['Subnet']));
        if (formatCidr(subnet) !== String(cfgs[0]['Subnet'])) throw invalidArgument(`invalid subnet ${String(cfgs[0]['Subnet'])}: it should be ${formatCidr(subnet)}`);
        if (subnet.prefix > 30) throw invalidArgument(`subnet ${formatCidr(subnet)} is too small`);
        for (const n of this.nets.values()) {
          for (const c of n.IPAM.Config) if (overlaps(parseCidr(c.Subnet), subnet)) throw conflict(`Pool overlaps with other one on this address space`);
        }
        const gw = cfgs[0]['Gateway'] ? parseIp(String(cfgs[0]['Gateway'])) : subnet.base + 1;
        if (gw === undefined || !contains(subnet, gw)) throw invalidArgument(`no matching subnet for gateway ${String(cfgs[0]['Gateway'])}`);
        gateway = gw;
        if (cfgs[0]['IPRange']) {
          const r = parseCidr(String(cfgs[0]['IPRange']));
          if (!contains(subnet, r.base) || r.prefix < subnet.prefix) throw invalidArgument(`no matching subnet for range ${String(cfgs[0]['IPRange'])}`);
          ipRange = formatCidr(r);
        }
      } else {
        if (cfgs[0]) throw invalidArgument('a gateway or IP range needs a subnet');
        subnet = pickSubnet(taken);
        gateway = subnet.base + 1;
      }
      const id = randomBytes(32).toString('hex');
      const options = { ...((body['Options'] as Record<string, string> | null) ?? {}) };
      const bridge = options['com.docker.network.bridge.name'] || `berth-${id.slice(0, 8)}`;
      if (bridge.length > 15) throw invalidArgument(`bridge name ${bridge} is longer than 15 characters`);
      if ([...this.nets.values()].some((n) => n.Bridge === bridge)) throw conflict(`bridge name ${bridge} is already in use`);
      const rec: NetworkRecord = {
        Id: id,
        Name: name,
        Created: isoNano(new Date().toISOString()),
        Driver: 'bridge',
        Internal: body['Internal'] === true,
        Attachable: body['Attachable'] === true,
        Labels: { ...((body['Labels'] as Record<string, string> | null) ?? {}) },
        Options: options,
        IPAM: {
          Driver: String(ipam['Driver'] || 'default'),
          Options: (ipam['Options'] as Record<string, string> | null) ?? null,
          Config: [{ Subnet: formatCidr(subnet), Gateway: formatIp(gateway), ...(ipRange ? { IPRange: ipRange } : {}) }],
        },
        Bridge: bridge,
        Dns: true,
      };
      await writeJsonAtomic(this.netFile(id), rec);
      this.nets.set(id, rec);
      this.o.publish?.('network', 'create', id, { name, type: 'bridge' });
      return { Id: id, Warning: '' };
    });
  }

  /** DELETE /networks/{id}. */
  async remove(ref: string): Promise<void> {
    return this.serial(async () => {
      if (ref === 'host' || ref === 'none') throw permissionDenied(`${ref} is a pre-defined network and cannot be removed`);
      const n = this.mustFind(ref);
      if (n.Default) throw permissionDenied(`${n.Name} is a pre-defined network and cannot be removed`);
      const users = [...this.attachments.values()].filter((a) => a.endpoints[n.Id]);
      if (users.length) throw permissionDenied(`error while removing network: network ${n.Name} id ${n.Id} has active endpoints (${users.map((u) => u.name).join(', ')})`);
      await this.releaseBridge(n).catch((e) => this.o.log?.(`releasing bridge ${n.Bridge}: ${messageOf(e)}`));
      await rm(this.netFile(n.Id), { force: true });
      this.nets.delete(n.Id);
      this.o.publish?.('network', 'destroy', n.Id, { name: n.Name, type: 'bridge' });
    });
  }

  /** POST /networks/prune: user networks without active endpoints. */
  async prune(filters: Filters): Promise<{ NetworksDeleted: string[] }> {
    const deleted: string[] = [];
    for (const n of [...this.nets.values()]) {
      if (n.Default || this.inUse(n.Id)) continue;
      if (filters['label']?.length && !this.matches(this.viewOf(n, false), { label: filters['label'] })) continue;
      if (filters['until']?.length) {
        const u = filters['until'][0]!;
        const t = /^\d+(\.\d+)?$/.test(u) ? Number(u) * 1000 : Date.parse(u);
        if (!(Date.parse(n.Created) < t)) continue;
      }
      try {
        await this.remove(n.Id);
        deleted.push(n.Name);
      } catch {
        // became busy
      }
    }
    return { NetworksDeleted: deleted };
  }

  // ------------------------------------------------------------ container hooks

  /** The network mode a container's NetworkMode resolves to: a record, or host/none/container:. */
  private modeNetwork(hc: Json): NetworkRecord | 'none' | 'other' {
    const nm = String(hc['NetworkMode'] || 'default');
    if (nm === 'host' || nm.startsWith('container:')) return 'other';
    if (nm === 'none') return 'none';
    if (nm === 'default' || nm === 'bridge') {
      const d = this.defaultNet();
      return this.bridgeEnabled && d ? d : 'none';
    }
    return this.mustFind(nm);
  }

  /**
   * Validate and remember the networks a new container asks for (NetworkMode plus
   * NetworkingConfig.EndpointsConfig). Throws not-found for an unknown network.
   */
  async register(id: string, name: string, hostConfig: Json, endpointsConfig?: Json | null, opts: { sync?: boolean } = {}): Promise<void> {
    const mode = this.modeNetwork(hostConfig);
    const nets: Record<string, EndpointRequest> = {};
    const eps = (endpointsConfig ?? {}) as Record<string, Json | null>;
    const reqOf = (e: Json | null | undefined): EndpointRequest => {
      const ipam = (e?.['IPAMConfig'] as Json | null | undefined) ?? {};
      const r: EndpointRequest = { Aliases: ((e?.['Aliases'] as string[] | null) ?? []).filter(Boolean) };
      if (ipam['IPv4Address']) r.IPv4Address = String(ipam['IPv4Address']);
      if (e?.['MacAddress']) r.MacAddress = String(e['MacAddress']);
      return r;
    };
    if (typeof mode === 'object') {
      const nm = String(hostConfig['NetworkMode'] || 'default');
      const e = eps[nm] ?? eps[mode.Name] ?? eps[mode.Id] ?? (mode.Default ? eps['default'] : undefined);
      nets[mode.Id] = reqOf(e);
      if (mode.Default && nets[mode.Id]!.Aliases.length) throw invalidArgument('network-scoped alias is supported only for containers in user defined networks');
      for (const [k, v] of Object.entries(eps)) {
        if (k === nm || k === mode.Name || k === mode.Id || (mode.Default && k === 'default')) continue;
        const other = this.mustFind(k);
        nets[other.Id] = reqOf(v);
      }
    } else if (Object.keys(eps).some((k) => k !== String(hostConfig['NetworkMode'] || 'default') && k !== 'default')) {
      throw invalidArgument('container cannot be connected to multiple networks with one of the networks in private (none) mode');
    }
    for (const [nid, r] of Object.entries(nets)) {
      if (r.IPv4Address) {
        const n = this.nets.get(nid)!;
        const ip = parseIp(r.IPv4Address);
        if (ip === undefined || !contains(parseCidr(n.IPAM.Config[0]!.Subnet), ip)) throw invalidArgument(`invalid IPv4 address ${r.IPv4Address} for network ${n.Name}`);
        if (n.Default) throw invalidArgument('user specified IP address is supported only when connecting to networks with user configured subnets');
      }
    }
    const c: ContainerNetConfig = { id, name: name.replace(/^\//, ''), networks: nets };
    // a container without networks (none, host, container:, or the default network with the
    // bridge disabled) has nothing to remember: no file (a missing record reads as no networks).
    // `opts.sync: false` (an auto-removed container, whose own record is not fsynced either)
    // skips the fsyncs.
    if (Object.keys(nets).length > 0) await writeJsonAtomic(join(this.dir, 'containers', `${id}.json`), c, { sync: opts.sync ?? true });
    this.configs.set(id, c);
  }

  /** Forget a removed container (detaches it first if needed). */
  async forget(id: string): Promise<void> {
    await this.detach(id).catch((e) => this.o.log?.(`network detach ${id.slice(0, 12)}: ${messageOf(e)}`));
    this.configs.delete(id);
    await rm(join(this.dir, 'containers', `${id}.json`), { force: true });
  }

  /** The names of networks a container is configured for (for `ps --filter network=`). */
  networkNames(id: string): string[] {
    const c = this.configs.get(id);
    return c ? Object.keys(c.networks).map((nid) => this.nets.get(nid)?.Name ?? nid) : [];
  }

  private usedIps(netId: string): Set<number> {
    const n = this.nets.get(netId)!;
    const used = new Set<number>([parseIp(n.IPAM.Config[0]!.Gateway)!]);
    for (const a of this.attachments.values()) {
      const ep = a.endpoints[netId];
      if (ep) used.add(parseIp(ep.ip)!);
    }
    for (const r of this.releasing.values()) for (const ep of r.eps) if (ep.networkId === netId) used.add(parseIp(ep.ip)!);
    return used;
  }

  private netavarkNet(n: NetworkRecord): NetavarkNetwork {
    const c = n.IPAM.Config[0]!;
    return {
      name: n.Id, id: n.Id, driver: 'bridge', network_interface: n.Bridge, subnets: [{ subnet: c.Subnet, gateway: c.Gateway }],
      ipv6_enabled: false, internal: n.Internal, dns_enabled: n.Dns, ipam_options: { driver: 'host-local' },
    };
  }

  /** Build the published ports of a container; checks that host ports are free. */
  private async portMappings(c: AttachContainer): Promise<{ maps: PortMapping[]; view: Attachment['portsView'] }> {
    const bindings = (c.hostConfig['PortBindings'] as Record<string, Array<{ HostIp?: string; HostPort?: string }> | null> | null) ?? {};
    const exposed = Object.keys((c.config['ExposedPorts'] as Json | null) ?? {});
    const publishAll = c.hostConfig['PublishAllPorts'] === true;
    const maps: PortMapping[] = [];
    const view: Attachment['portsView'] = {};
    const keys = new Set([...Object.keys(bindings), ...exposed]);
    const busy = new Set<string>();
    for (const a of this.attachments.values()) for (const m of a.ports) for (let i = 0; i < m.range; i++) busy.add(`${m.protocol}/${m.host_port + i}`);
    for (const key of keys) {
      const [portStr, protoRaw] = key.split('/');
      const proto = (protoRaw || 'tcp') as 'tcp' | 'udp';
      if (proto !== 'tcp' && proto !== 'udp') throw invalidArgument(`unsupported protocol ${proto}`);
      const cport = Number(portStr);
      if (!Number.isInteger(cport) || cport < 1 || cport > 65535) throw invalidArgument(`invalid port ${key}`);
      let list = bindings[key] ?? null;
      if ((!list || list.length === 0) && publishAll) list = [{ HostIp: '', HostPort: '' }];
      if (!list || list.length === 0) {
        view[`${cport}/${proto}`] = null;
        continue;
      }
      const out: Array<{ HostIp: string; HostPort: string }> = [];
      for (const b of list) {
        const hostIp = b.HostIp ?? '';
        if (hostIp && parseIp(hostIp) === undefined) throw invalidArgument(`invalid host IP ${hostIp}: berth publishes IPv4 only`);
        const hp = b.HostPort ?? '';
        let hostPort = 0;
        if (hp === '' || hp === '0') {
          hostPort = await freePort(proto, hostIp, busy);
        } else {
          const m = /^(\d+)(?:-(\d+))?$/.exec(hp);
          if (!m) throw invalidArgument(`invalid host port ${hp}`);
          const lo = Number(m[1]);
          const hi = m[2] ? Number(m[2]) : lo;
          for (let p = lo; p <= hi && !hostPort; p++) {
            if (!busy.has(`${proto}/${p}`) && (await canBind(proto, hostIp, p))) hostPort = p;
          }
          if (!hostPort) {
            throw new EngineError('internal', `driver failed programming external connectivity on endpoint ${c.name.replace(/^\//, '')}: Bind for ${hostIp || '0.0.0.0'}:${hp} failed: port is already allocated`);
          }
        }
        busy.add(`${proto}/${hostPort}`);
        maps.push({ host_ip: hostIp, container_port: cport, host_port: hostPort, range: 1, protocol: proto });
        out.push({ HostIp: hostIp || '0.0.0.0', HostPort: String(hostPort) });
      }
      view[`${cport}/${proto}`] = out;
    }
    return { maps: mergeRanges(maps), view };
  }

  private netOptions(a: Pick<Attachment, 'id' | 'name'>, eps: Endpoint[], ports: PortMapping[]): NetworkOptions {
    const networks: NetworkOptions['networks'] = {};
    const info: NetworkOptions['network_info'] = {};
    for (const ep of eps) {
      const n = this.nets.get(ep.networkId);
      if (!n) continue;
      const per: NetworkOptions['networks'][string] = { interface_name: ep.ifname, static_ips: [ep.ip], aliases: n.Dns ? ep.aliases : [] };
      if (ep.mac) per.static_mac = ep.mac;
      networks[n.Id] = per;
      info[n.Id] = this.netavarkNet(n);
    }
    return { container_id: a.id, container_name: a.name, port_mappings: ports, networks, network_info: info };
  }

  private newEndpoint(a: { id: string }, n: NetworkRecord, req: EndpointRequest, ifname: string): Endpoint {
    const subnet = parseCidr(n.IPAM.Config[0]!.Subnet);
    const used = this.usedIps(n.Id);
    let ip: number;
    if (req.IPv4Address) {
      ip = parseIp(req.IPv4Address)!;
      if (used.has(ip)) throw conflict(`Address already in use: ${req.IPv4Address}`);
    } else {
      const range = n.IPAM.Config[0]!.IPRange;
      ip = allocateIp(subnet, used, range ? parseCidr(range) : undefined);
    }
    const aliases = n.Dns ? [...new Set([...req.Aliases, a.id.slice(0, 12)])] : [];
    return {
      networkId: n.Id, endpointId: randomBytes(32).toString('hex'), ifname, ip: formatIp(ip), prefix: subnet.prefix,
      gateway: n.IPAM.Config[0]!.Gateway, mac: req.MacAddress ?? '', aliases,
    };
  }

  /**
   * Write a running container's attachment record: atomic, but not fsynced — it describes kernel
   * state (namespace, veths, rules) that a power failure loses anyway, and after a daemon crash the
   * written file is there (saves two fsyncs on every start).
   */
  private async persistAttachment(a: Attachment): Promise<void> {
    await writeJsonAtomic(join(this.dir, 'attachments', `${a.id}.json`), a, { sync: false });
  }

  private applyStatus(eps: Endpoint[], status: Record<string, { interfaces?: Record<string, { mac_address: string }> }>): void {
    for (const ep of eps) {
      const mac = status[ep.networkId]?.interfaces?.[ep.ifname]?.mac_address;
      if (mac) ep.mac = mac;
    }
  }

  /**
   * Give a starting container its network: a namespace, veths on its networks, ports and DNS.
   * Returns undefined when the container's mode needs no namespace from berth (host, none,
   * container:<id>). On failure nothing is left behind.
   */
  async attach(c: AttachContainer): Promise<AttachResult | undefined> {
    const mode = this.modeNetwork(c.hostConfig);
    if (typeof mode !== 'object') return undefined;
    return this.serial(async () => {
      if (this.attachments.has(c.id)) await this.detachLocked(c.id);
      await this.releasing.get(c.id)?.done; // its previous namespace and veth (a restart)
      let cfg = this.configs.get(c.id);
      if (!cfg || !cfg.networks[mode.Id]) {
        // created before networks existed, or the mode changed: the mode's network only
        cfg = { id: c.id, name: c.name.replace(/^\//, ''), networks: { [mode.Id]: { Aliases: [] }, ...(cfg?.networks ?? {}) } };
        this.configs.set(c.id, cfg);
      }
      const name = c.name.replace(/^\//, '');
      const order = [mode.Id, ...Object.keys(cfg.networks).filter((k) => k !== mode.Id && this.nets.has(k))];
      const eps: Endpoint[] = [];
      const a: Attachment = { id: c.id, name, netns: this.netns.path(c.id), ports: [], portsView: {}, endpoints: {} };
      order.forEach((nid, i) => {
        const ep = this.newEndpoint(a, this.nets.get(nid)!, cfg!.networks[nid]!, `eth${i}`);
        eps.push(ep);
        a.endpoints[nid] = ep;
      });
      const ports = await this.portMappings(c);
      a.ports = ports.maps;
      a.portsView = ports.view;
      const fast = eps.length === 1 ? await this.fastBridgeIndex(eps[0]!, a.ports) : undefined;
      const netns = (fast !== undefined ? await this.fastCreate(a, eps[0]!, fast) : undefined) ?? (await this.netns.create(c.id));
      const nvEps = eps.filter((ep) => !ep.hostIf);
      const opts = this.netOptions(a, nvEps, a.ports);
      try {
        if (nvEps.length > 0) this.applyStatus(nvEps, await this.nv.setup(netns, opts));
        this.attachments.set(c.id, a);
        await this.persistAttachment(a);
        await this.syncIsolation();
        await this.keepBridges(eps.map((ep) => ep.networkId));
      } catch (err) {
        this.attachments.delete(c.id);
        for (const ep of eps.filter((x) => x.hostIf)) await this.fastDnsUndo(c.id, ep);
        await Promise.all(eps.filter((ep) => ep.hostIf).map((ep) => this.deleteLink(ep.hostIf!)));
        if (nvEps.length > 0) await this.nv.teardown(netns, opts).catch(() => undefined);
        await this.netns.remove(c.id).catch(() => undefined);
        await rm(join(this.dir, 'attachments', `${c.id}.json`), { force: true });
        await this.syncIsolation().catch(() => undefined);
        throw err;
      }
      const primary = eps[0]!;
      return {
        netnsPath: netns,
        ip: primary.ip,
        gateway: primary.gateway,
        dnsServers: mode.Dns ? [primary.gateway] : [],
        settings: this.settings(c.id, c.hostConfig),
      };
    });
  }

  /** The namespace file of a container that berth attached, if it is running with one. */
  netnsOf(id: string): string | undefined {
    return this.attachments.get(id)?.netns;
  }

  /** Tear down a container's network (stop/exit/remove); a container with none is fine. */
  async detach(id: string, opts: { wait?: boolean } = {}): Promise<void> {
    // a container registered without networks (none, host, container:) never had a namespace
    // from berth: nothing to do, and no waiting behind other containers' network work
    const cfg = this.configs.get(id);
    if (cfg && Object.keys(cfg.networks).length === 0 && !this.attachments.has(id) && !this.releasing.has(id)) return;
    await this.serial(() => this.detachLocked(id));
    // a caller that reports "nothing left behind" (a failed start) waits for the background release
    if (opts.wait) await this.releasing.get(id)?.done;
  }

  private async detachLocked(id: string): Promise<void> {
    const a = this.attachments.get(id);
    if (!a) {
      if (!this.releasing.has(id)) await this.netns.remove(id).catch(() => undefined);
      return;
    }
    const eps = Object.values(a.endpoints);
    const fast = eps.filter((ep) => ep.hostIf);
    const nvEps = eps.filter((ep) => !ep.hostIf);
    for (const ep of fast) await this.fastDnsUndo(id, ep);
    if (nvEps.length === 0 && a.ports.length === 0) {
      // only fast-path endpoints: veths and namespace go in the background (see releasing)
      this.releaseFast(id, fast);
    } else {
      // deleting a host veth takes the container side with it, also from a namespace that a
      // `container:` joiner keeps alive after the file is unmounted
      await Promise.all([
        ...fast.map((ep) => this.deleteLink(ep.hostIf!)),
        (async () => {
          if (!(await this.netns.isMounted(id))) return;
          await this.nv.teardown(a.netns, this.netOptions(a, nvEps, a.ports)).catch((e) => this.o.log?.(`netavark teardown ${id.slice(0, 12)}: ${messageOf(e)}`));
        })(),
      ]);
      await this.netns.remove(id).catch(() => undefined);
    }
    this.attachments.delete(id);
    await rm(join(this.dir, 'attachments', `${id}.json`), { force: true });
    await this.dropUnkept(fast.map((ep) => ep.networkId));
    await this.syncIsolation().catch((e) => this.o.log?.(`isolation rules: ${messageOf(e)}`));
  }

  // ------------------------------------------------------------ fast path (iproute2)

  /**
   * The index of the bridge when `ep` can be attached without netavark: it is the container's
   * first interface, nothing is published, the network is not internal, its bridge is kept (so
   * netavark has set up the bridge, its NAT and forward rules, and keeps them), and on a network
   * with DNS aardvark-dns already serves the network. Then everything netavark would do for this
   * endpoint is the veth, the address and the route (its per-container work on such a network is
   * `iptables -C` checks of the network's rules and IPv6 autoconf off), which one `ip -batch` does
   * (see {@link fastBatch}), plus the aardvark-dns entry (see {@link fastDns}).
   */
  private async fastBridgeIndex(ep: Endpoint, ports: PortMapping[]): Promise<number | undefined> {
    const n = this.nets.get(ep.networkId);
    if (!n || ep.ifname !== 'eth0' || ports.length > 0 || n.Internal || !this.kept.has(n.Id)) return undefined;
    if (n.Dns && (await this.nv.dnsServing(n.Id, ep.gateway)) === undefined) return undefined;
    const idx = Number((await readFile(`/sys/class/net/${n.Bridge}/ifindex`, 'utf8').catch(() => '')).trim());
    return Number.isInteger(idx) && idx > 0 ? idx : undefined;
  }

  /**
   * The DNS part of a fast-path endpoint on a network with DNS: the container's name and aliases
   * added to aardvark-dns as netavark adds them. Throws when aardvark-dns stopped serving the network
   * meanwhile (the caller then undoes the endpoint and uses netavark).
   */
  private async fastDns(a: Pick<Attachment, 'id' | 'name'>, ep: Endpoint): Promise<void> {
    const n = this.nets.get(ep.networkId);
    if (!n?.Dns) return;
    const pid = await this.nv.dnsServing(n.Id, ep.gateway);
    if (pid === undefined) throw new EngineError('internal', `aardvark-dns does not serve network ${n.Name}`);
    await this.nv.addDnsEntry(n.Id, a.id, ep.ip, [a.name, ...ep.aliases], pid);
  }

  /** Host-side veth name of a container's fast-path endpoint (only its eth0 takes the fast path). */
  private fastIfName(id: string): string {
    return `vb${id.slice(0, 13)}`;
  }

  /**
   * The `ip -batch` lines, run inside the container's new namespace, that attach `ep` to the bridge
   * with interface index `bridgeIndex`: the veth pair is made with its host side created straight in
   * berthd's namespace (`netns <pid>`), enslaved to the bridge by index (`if<n>`: the bridge's name
   * does not resolve inside the container's namespace) and up; the container side is `eth0` with the
   * endpoint's MAC, address, and default route (as netavark sets them: proto static, metric 100).
   */
  private fastBatch(hostIf: string, ep: Endpoint, bridgeIndex: number): string {
    return [
      `link add ${hostIf} netns ${process.pid} master if${bridgeIndex} up type veth peer name ${ep.ifname} address ${ep.mac}`,
      `addr add ${ep.ip}/${ep.prefix} brd + dev ${ep.ifname}`,
      `link set ${ep.ifname} up`,
      `route add default via ${ep.gateway} dev ${ep.ifname} proto static metric 100`,
      '',
    ].join('\n');
  }

  /**
   * Create the container's namespace with `ep` attached by iproute2 (one process). A leftover veth
   * of the same name (a crash between setup and record) is deleted and the setup tried once more.
   * Returns undefined when it failed (nothing is left; the caller uses netavark instead).
   */
  private async fastCreate(a: Attachment, ep: Endpoint, bridgeIndex: number): Promise<string | undefined> {
    const hostIf = this.fastIfName(a.id);
    const mac = ep.mac || macOfIp(ep.ip);
    for (let attempt = 0; attempt < 2; attempt++) {
      let p: string;
      try {
        p = await this.netns.create(a.id, this.fastBatch(hostIf, { ...ep, mac }, bridgeIndex));
      } catch (e) {
        await this.deleteLink(hostIf);
        if (attempt > 0) this.o.log?.(`network attach ${a.id.slice(0, 12)} without netavark: ${messageOf(e)}`);
        continue;
      }
      try {
        await this.fastDns(a, ep);
      } catch (e) {
        this.o.log?.(`network attach ${a.id.slice(0, 12)} without netavark: ${messageOf(e)}`);
        await this.deleteLink(hostIf);
        await this.netns.remove(a.id).catch(() => undefined);
        return undefined;
      }
      ep.hostIf = hostIf;
      ep.mac = mac;
      return p;
    }
    return undefined;
  }

  /**
   * `network connect` of a running container whose eth0 is free (it was disconnected): the same
   * iproute2 setup in its existing namespace. False when it failed (nothing is left).
   */
  private async fastConnect(a: Attachment, ep: Endpoint, bridgeIndex: number): Promise<boolean> {
    const hostIf = this.fastIfName(a.id);
    const mac = ep.mac || macOfIp(ep.ip);
    try {
      await this.netns.configure(a.id, this.fastBatch(hostIf, { ...ep, mac }, bridgeIndex));
      await this.fastDns(a, ep);
    } catch (e) {
      await this.deleteLink(hostIf);
      this.o.log?.(`network connect ${a.id.slice(0, 12)} without netavark: ${messageOf(e)}`);
      return false;
    }
    ep.hostIf = hostIf;
    ep.mac = mac;
    return true;
  }

  /** Drop a fast-path endpoint's aardvark-dns entry (networks with DNS); failures are logged. */
  private async fastDnsUndo(id: string, ep: Endpoint): Promise<void> {
    if (!this.nets.get(ep.networkId)?.Dns) return;
    await this.nv.removeDnsEntry(ep.networkId, id).catch((e) => this.o.log?.(`aardvark-dns entry of ${id.slice(0, 12)}: ${messageOf(e)}`));
  }

  /**
   * Remove a detached fast-path container's veths and namespace in the background (see releasing),
   * with one process: the host veths are deleted (their container sides go with them, also from a
   * namespace a `container:` joiner keeps alive), then the namespace file is unmounted.
   */
  private releaseFast(id: string, eps: Endpoint[]): void {
    const p = this.netns.path(id);
    const script = `for i; do ${systemBinary('ip')} link del "$i" 2>/dev/null; done; exec ${systemBinary('umount')} -l "$0"`;
    const done = this.exec(systemBinary('sh'), ['-c', script, p, ...eps.map((ep) => ep.hostIf!)])
      .then(() => this.netns.remove(id)) // the file, and any mount the single umount left
      .catch((e) => this.o.log?.(`network release ${id.slice(0, 12)}: ${messageOf(e)}`))
      .finally(() => {
        if (this.releasing.get(id)?.done === done) this.releasing.delete(id);
      });
    this.releasing.set(id, { eps: eps.map((ep) => ({ networkId: ep.networkId, ip: ep.ip })), done });
  }

  /** Delete a host link (a fast-path veth: its peer goes with it); a missing one is fine. */
  private async deleteLink(name: string): Promise<void> {
    const r = await this.exec(systemBinary('ip'), ['link', 'del', name]).catch(() => undefined);
    if (r && r.code !== 0 && !/Cannot find device/.test(r.stderr)) this.o.log?.(`deleting ${name}: ${r.stderr.trim()}`);
  }

  /**
   * Daemon shutdown: finish pending work and remove netavark's shared chains if nothing uses them.
   * Only here, never while the daemon runs: the chains are host-wide, and another netavark user (a
   * second berthd, Podman) may be between creating them and appending its rules.
   */
  async close(): Promise<void> {
    await this.serial(async () => {
      await Promise.all([...this.releasing.values()].map((r) => r.done));
      for (const id of [...this.kept]) {
        const n = this.nets.get(id);
        if (n) await this.releaseBridge(n).catch((e) => this.o.log?.(`releasing bridge ${n.Bridge}: ${messageOf(e)}`));
      }
      await this.cleanGlobalChains();
    }).catch((e) => this.o.log?.(`netavark chains: ${messageOf(e)}`));
    this.shell.close();
  }

  /** Name stem of a network's keeper veth pair (`<stem>a` on the bridge, `<stem>b` its idle peer). */
  private keeperStem(n: NetworkRecord): string {
    return `bk${createHash('sha256').update(n.Bridge).digest('hex').slice(0, 10)}`;
  }

  /** Mark the networks whose keeper survived a daemon crash (`veths`: {@link vethMasters}). */
  private findKeepers(veths: Map<string, string>): void {
    for (const n of this.nets.values()) if (veths.has(`${this.keeperStem(n)}a`)) this.kept.add(n.Id);
  }

  /**
   * Hold a network's bridge while the daemon runs, as Docker keeps docker0: an idle veth (down, no
   * address) is enslaved to it, so netavark's teardown of the last container sees a port left and
   * keeps the bridge and the network's NAT rules instead of deleting them, and the next container's
   * setup finds them in place. Deleting and re-making the bridge is most of netavark's cost on a
   * `run --rm` (teardown ~190 ms vs ~30 ms here). The keeper's MAC is low and fixed, so the bridge's
   * (the gateway's) MAC stays the same while containers come and go. Released by
   * {@link releaseBridge} on `network rm` and at shutdown. Best effort: a failure only costs speed.
   */
  private async keepBridges(ids: string[]): Promise<void> {
    for (const id of new Set(ids)) {
      const n = this.nets.get(id);
      if (!n || this.kept.has(id)) continue;
      const stem = this.keeperStem(n);
      const mac = `02:00:00:${stem.slice(2, 4)}:${stem.slice(4, 6)}:${stem.slice(6, 8)}`;
      const r = await run(systemBinary('ip'), ['-batch', '-'], `link add ${stem}a address ${mac} type veth peer name ${stem}b\nlink set ${stem}a master ${n.Bridge}\n`);
      if (r.code === 0) this.kept.add(id);
      else {
        await run(systemBinary('ip'), ['link', 'del', `${stem}a`]).catch(() => undefined);
        this.o.log?.(`keeping bridge ${n.Bridge}: ${r.stderr.trim()}`);
      }
    }
  }

  /**
   * Let a kept bridge go: delete the keeper, and when no container is on the network any more have
   * netavark do the complete teardown it skipped (bridge, the network's NAT and forward rules) through
   * a throwaway endpoint in a scratch namespace, set up and torn down again.
   */
  private async releaseBridge(n: NetworkRecord): Promise<void> {
    if (!this.kept.has(n.Id)) return;
    await run(systemBinary('ip'), ['link', 'del', `${this.keeperStem(n)}a`]);
    this.kept.delete(n.Id);
    if (this.inUse(n.Id)) return; // removed with the last of them (netavark's teardown, or dropBridge)
    await this.dropBridge(n);
  }

  /**
   * netavark's complete teardown of a network nobody uses (bridge, NAT and forward rules), through a
   * throwaway endpoint in a scratch namespace, set up and torn down again.
   */
  private async dropBridge(n: NetworkRecord): Promise<void> {
    // netavark keeps a bridge that still has ports: wait for fast-path veths being deleted in the
    // background (a `network rm` right after a container left, as well as the callers below)
    await Promise.all([...this.releasing.values()].filter((r) => r.eps.some((ep) => ep.networkId === n.Id)).map((r) => r.done));
    const opts = this.scratchOptions(n, 'berth-release');
    await this.inScratchNs(`.release-${n.Id}`, async (ns) => {
      await this.nv.setup(ns, opts);
      await this.nv.teardown(ns, opts);
    });
  }

  /**
   * After fast-path endpoints went away: a network that is neither kept nor used any more is torn
   * down completely, as netavark's teardown of its last endpoint would have done (a bridge outlives
   * its keeper only while containers of a stopped or failed keeper use it).
   */
  private async dropUnkept(ids: string[]): Promise<void> {
    for (const id of new Set(ids)) {
      const n = this.nets.get(id);
      if (!n || this.kept.has(id) || this.inUse(id)) continue;
      await this.dropBridge(n).catch((e) => this.o.log?.(`removing bridge ${n.Bridge}: ${messageOf(e)}`));
    }
  }

  private get isoChain(): string {
    return `BERTH-ISO-${createHash('sha256').update(this.o.root).digest('hex').slice(0, 8)}`;
  }

  /**
   * Containers on different networks must not reach each other (netavark 1.4 routes between its
   * bridges): one DROP rule per ordered pair of active bridges in a chain of this daemon's own,
   * jumped to first from FORWARD. The chain goes away with the last attachment.
   */
  private async syncIsolation(): Promise<void> {
    const ch = this.isoChain;
    const active = [...new Set([...this.attachments.values()].flatMap((a) => Object.keys(a.endpoints)))].map((id) => this.nets.get(id)?.Bridge).filter((b): b is string => Boolean(b));
    // the chain is this daemon's own, so whether it exists is looked up once, then tracked
    this.isoExists ??= (await run(systemBinary('iptables'), ['-t', 'filter', '-S', ch]).catch(() => undefined))?.code === 0;
    if (active.length < 2) {
      if (this.isoExists) {
        while ((await run(systemBinary('iptables'), ['-t', 'filter', '-D', 'FORWARD', '-j', ch])).code === 0);
        await run(systemBinary('iptables'), ['-t', 'filter', '-F', ch]);
        await run(systemBinary('iptables'), ['-t', 'filter', '-X', ch]);
        this.isoExists = false;
      }
      return;
    }
    if (!this.isoExists) await run(systemBinary('iptables'), ['-t', 'filter', '-N', ch]);
    this.isoExists = true;
    await run(systemBinary('iptables'), ['-t', 'filter', '-F', ch]);
    for (const a of active) for (const b of active) if (a !== b) await run(systemBinary('iptables'), ['-t', 'filter', '-A', ch, '-i', a, '-o', b, '-j', 'DROP']);
    if ((await run(systemBinary('iptables'), ['-t', 'filter', '-C', 'FORWARD', '-j', ch])).code !== 0) await run(systemBinary('iptables'), ['-t', 'filter', '-I', 'FORWARD', '1', '-j', ch]);
  }

  /**
   * netavark leaves its shared chains (NETAVARK_FORWARD, NETAVARK-HOSTPORT-*) behind; remove them
   * once no container of berth is attached and they hold no rules of anyone else.
   */
  private async cleanGlobalChains(): Promise<void> {
    if (this.attachments.size > 0) return;
    const nat = await run(systemBinary('iptables'), ['-t', 'nat', '-S']).catch(() => undefined);
    if (nat && nat.code === 0) {
      const lines = nat.stdout.split('\n');
      const dnatRules = lines.filter((l) => l.startsWith('-A NETAVARK-HOSTPORT-DNAT ') || /^-A NETAVARK-(DN-)?[0-9A-F]+ /.test(l));
      const hasChains = lines.some((l) => l === '-N NETAVARK-HOSTPORT-DNAT');
      if (hasChains && dnatRules.length === 0) {
        for (const l of lines.filter((x) => x.startsWith('-A ') && /-j NETAVARK-HOSTPORT-(DNAT|MASQ)$/.test(x) && !x.startsWith('-A NETAVARK'))) {
          await run(systemBinary('iptables'), ['-t', 'nat', '-D', ...splitRule(l.slice(3))]);
        }
        for (const ch of ['NETAVARK-HOSTPORT-DNAT', 'NETAVARK-HOSTPORT-MASQ', 'NETAVARK-HOSTPORT-SETMARK']) {
          await run(systemBinary('iptables'), ['-t', 'nat', '-F', ch]);
          await run(systemBinary('iptables'), ['-t', 'nat', '-X', ch]);
        }
      }
    }
    const filter = await run(systemBinary('iptables'), ['-t', 'filter', '-S']).catch(() => undefined);
    if (filter && filter.code === 0) {
      const lines = filter.stdout.split('\n');
      if (lines.includes('-N NETAVARK_FORWARD') && !lines.some((l) => l.startsWith('-A NETAVARK_FORWARD '))) {
        for (const l of lines.filter((x) => x.startsWith('-A ') && x.endsWith('-j NETAVARK_FORWARD'))) {
          await run(systemBinary('iptables'), ['-t', 'filter', '-D', ...splitRule(l.slice(3))]);
        }
        await run(systemBinary('iptables'), ['-t', 'filter', '-X', 'NETAVARK_FORWARD']);
      }
    }
  }

  /** NetworkSettings for inspect/list: IPAddress, Gateway, MacAddress, Networks{…}, Ports. */
  settings(id: string, hostConfig: Json): Json {
    const a = this.attachments.get(id);
    const cfg = this.configs.get(id);
    const networks: Json = {};
    let primary: Endpoint | undefined;
    const nm = String(hostConfig['NetworkMode'] || 'default');
    const epView = (n: NetworkRecord, ep: Endpoint | undefined, req: EndpointRequest | undefined): Json => ({
      IPAMConfig: req?.IPv4Address ? { IPv4Address: req.IPv4Address } : null, Links: null,
      Aliases: req?.Aliases.length ? req.Aliases : null, MacAddress: ep?.mac ?? '', DriverOpts: null, GwPriority: 0,
      NetworkID: n.Id, EndpointID: ep?.endpointId ?? '', Gateway: ep?.gateway ?? '', IPAddress: ep?.ip ?? '',
      IPPrefixLen: ep?.prefix ?? 0, IPv6Gateway: '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0,
      DNSNames: ep && n.Dns ? [String(a?.name ?? ''), ...ep.aliases] : null,
    });
    const ids = new Set([...Object.keys(cfg?.networks ?? {}), ...Object.keys(a?.endpoints ?? {})]);
    if (ids.size === 0 && (nm === 'default' || nm === 'bridge') && this.bridgeEnabled && this.defaultNet()) ids.add(this.defaultNet()!.Id);
    for (const nid of ids) {
      const n = this.nets.get(nid);
      if (!n) continue;
      const ep = a?.endpoints[nid];
      if (ep && (!primary || ep.ifname === 'eth0')) primary = ep;
      networks[n.Name] = epView(n, ep, cfg?.networks[nid]);
    }
    return {
      Bridge: '', SandboxID: '', SandboxKey: a ? a.netns : '', HairpinMode: false, LinkLocalIPv6Address: '', LinkLocalIPv6PrefixLen: 0,
      Ports: a ? a.portsView : {}, SecondaryIPAddresses: null, SecondaryIPv6Addresses: null,
      EndpointID: primary?.endpointId ?? '', Gateway: primary?.gateway ?? '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0,
      IPAddress: primary?.ip ?? '', IPPrefixLen: primary?.prefix ?? 0, IPv6Gateway: '', MacAddress: primary?.mac ?? '', Networks: networks,
    };
  }

  /** `ps` Ports items: [{IP, PrivatePort, PublicPort, Type}]. */
  listPorts(id: string, config: Json): Json[] {
    const a = this.attachments.get(id);
    const out: Json[] = [];
    if (a) {
      for (const m of a.ports) {
        for (let i = 0; i < m.range; i++) out.push({ IP: m.host_ip || '0.0.0.0', PrivatePort: m.container_port + i, PublicPort: m.host_port + i, Type: m.protocol });
      }
    }
    for (const k of Object.keys((config['ExposedPorts'] as Json | null) ?? {})) {
      const [p, proto] = k.split('/');
      if (!out.some((o) => o['PrivatePort'] === Number(p) && o['Type'] === (proto || 'tcp'))) out.push({ PrivatePort: Number(p), Type: proto || 'tcp' });
    }
    return out;
  }

  // ------------------------------------------------------------ connect / disconnect

  /** POST /networks/{id}/connect. */
  async connect(ref: string, body: Json): Promise<void> {
    const n = this.mustFind(ref);
    if (!this.lookupContainer) throw new EngineError('internal', 'network connect is not wired');
    const c = await this.lookupContainer(String(body['Container'] ?? ''));
    const nm = String(c.hostConfig['NetworkMode'] || 'default');
    if (nm === 'host' || nm === 'none' || nm.startsWith('container:')) {
      throw invalidArgument(`container cannot be disconnected from host network or connected to host network`);
    }
    const e = (body['EndpointConfig'] as Json | null) ?? {};
    const ipam = (e['IPAMConfig'] as Json | null) ?? {};
    const req: EndpointRequest = { Aliases: ((e['Aliases'] as string[] | null) ?? []).filter(Boolean) };
    if (ipam['IPv4Address']) req.IPv4Address = String(ipam['IPv4Address']);
    if (req.IPv4Address) {
      const ip = parseIp(req.IPv4Address);
      if (ip === undefined || !contains(parseCidr(n.IPAM.Config[0]!.Subnet), ip)) throw invalidArgument(`invalid IPv4 address ${req.IPv4Address} for network ${n.Name}`);
    }
    if (n.Default && req.Aliases.length) throw invalidArgument('network-scoped alias is supported only for containers in user defined networks');
    await this.serial(async () => {
      const cfg = this.configs.get(c.id) ?? { id: c.id, name: c.name.replace(/^\//, ''), networks: {} };
      const a = this.attachments.get(c.id);
      if (!c.running || !a) {
        // not running: (over)write the endpoint config, as moby does (compose relies on it)
        cfg.networks[n.Id] = req;
        this.configs.set(c.id, cfg);
        await writeJsonAtomic(join(this.dir, 'containers', `${c.id}.json`), cfg);
        return;
      }
      if (a.endpoints[n.Id]) throw permissionDenied(`endpoint with name ${a.name} already exists in network ${n.Name}`);
      const used = new Set(Object.values(a.endpoints).map((x) => x.ifname));
      let i = 0;
      while (used.has(`eth${i}`)) i++;
      const ep = this.newEndpoint(a, n, req, `eth${i}`);
      const fast = await this.fastBridgeIndex(ep, []);
      if (fast !== undefined && (await this.fastConnect(a, ep, fast))) {
        // attached by iproute2
      } else {
        const opts = this.netOptions(a, [ep], []);
        try {
          const st = await this.nv.setup(a.netns, opts);
          this.applyStatus([ep], st);
        } catch (err) {
          await this.nv.teardown(a.netns, opts).catch(() => undefined);
          throw err;
        }
      }
      a.endpoints[n.Id] = ep;
      await this.persistAttachment(a);
      await this.syncIsolation();
      await this.keepBridges([n.Id]);
      cfg.networks[n.Id] = req;
      this.configs.set(c.id, cfg);
      await writeJsonAtomic(join(this.dir, 'containers', `${c.id}.json`), cfg);
    });
    this.o.publish?.('network', 'connect', n.Id, { container: c.id, name: n.Name, type: 'bridge' });
  }

  /** POST /networks/{id}/disconnect. */
  async disconnect(ref: string, body: Json): Promise<void> {
    const n = this.mustFind(ref);
    if (!this.lookupContainer) throw new EngineError('internal', 'network disconnect is not wired');
    const c = await this.lookupContainer(String(body['Container'] ?? ''));
    await this.serial(async () => {
      const cfg = this.configs.get(c.id);
      const a = this.attachments.get(c.id);
      if (!cfg?.networks[n.Id] && !a?.endpoints[n.Id]) throw invalidArgument(`container ${c.id} is not connected to network ${n.Name}`);
      if (a?.endpoints[n.Id]) {
        const ep = a.endpoints[n.Id]!;
        const primary = ep.ifname === 'eth0';
        if (ep.hostIf) await Promise.all([this.deleteLink(ep.hostIf), this.fastDnsUndo(a.id, ep)]); // gone when disconnect returns
        else await this.nv.teardown(a.netns, this.netOptions(a, [ep], primary ? a.ports : [])).catch((e) => this.o.log?.(`netavark teardown: ${messageOf(e)}`));
        if (primary) a.ports = [];
        delete a.endpoints[n.Id];
        await this.persistAttachment(a);
        if (ep.hostIf) await this.dropUnkept([n.Id]);
        await this.syncIsolation();
      }
      if (cfg) {
        delete cfg.networks[n.Id];
        await writeJsonAtomic(join(this.dir, 'containers', `${c.id}.json`), cfg);
      }
    });
    this.o.publish?.('network', 'disconnect', n.Id, { container: c.id, name: n.Name, type: 'bridge' });
  }
}

/**
 * The MAC of a fast-path endpoint without a requested one: derived from its address, as Docker
 * derives it (02:42 + the IPv4 octets), so a container that gets a freed address gets the same MAC
 * and neighbours' ARP caches stay right.
 */
function macOfIp(ip: string): string {
  return ['02', '42', ...ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0'))].join(':');
}

function splitRule(s: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) out.push(m[1] ?? m[2]!);
  return out;
}

/** True when nothing listens on proto host:port (we can bind it). */
function canBind(proto: 'tcp' | 'udp', host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (proto === 'udp') {
      const s = createSocket('udp4');
      s.once('error', () => resolve(false));
      s.bind(port, host || '0.0.0.0', () => s.close(() => resolve(true)));
      return;
    }
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: host || '0.0.0.0', exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** An ephemeral port that is free on the host and not published by another container. */
async function freePort(proto: 'tcp' | 'udp', host: string, busy: Set<string>): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const p = 32768 + Math.floor(Math.random() * (60999 - 32768));
    if (!busy.has(`${proto}/${p}`) && (await canBind(proto, host, p))) return p;
  }
  throw new EngineError('internal', 'no free host port to publish on');
}
