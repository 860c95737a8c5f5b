/**
 * Host firewall bookkeeping: the bench records the FORWARD policy and whether netavark's shared
 * chains existed before it started, and afterwards restores the policy and removes the shared chains
 * it caused to exist (only when they are empty: no one else's rules are in them). Podman and berth
 * both use netavark, which leaves NETAVARK_FORWARD and NETAVARK-HOSTPORT-* behind.
 */
import { run } from './proc.js';

export interface FirewallSnapshot {
  forwardPolicy: string | undefined;
  hadForwardChain: boolean;
  hadHostportChains: boolean;
}

async function rules(table: string): Promise<string[] | undefined> {
  const r = await run('iptables', ['-t', table, '-S']);
  return r.code === 0 ? r.stdout.split('\n') : undefined;
}

/** What the host's firewall looks like now (the parts the bench may change). */
export async function snapshotFirewall(): Promise<FirewallSnapshot> {
  const filter = (await rules('filter')) ?? [];
  const nat = (await rules('nat')) ?? [];
  return {
    forwardPolicy: /^-P FORWARD (\w+)$/m.exec(filter.join('\n'))?.[1],
    hadForwardChain: filter.includes('-N NETAVARK_FORWARD'),
    hadHostportChains: nat.includes('-N NETAVARK-HOSTPORT-DNAT'),
  };
}

/** Splits one `iptables -S` rule into argv (handles double-quoted comments). */
function splitRule(s: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) out.push(m[1] !== undefined ? m[1] : m[2]!);
  return out;
}

/** Restores what {@link snapshotFirewall} recorded; returns what it changed, for the log. */
export async function restoreFirewall(before: FirewallSnapshot): Promise<string[]> {
  const done: string[] = [];
  const filter = (await rules('filter')) ?? [];
  const policy = /^-P FORWARD (\w+)$/m.exec(filter.join('\n'))?.[1];
  if (before.forwardPolicy && policy && policy !== before.forwardPolicy) {
    await run('iptables', ['-P', 'FORWARD', before.forwardPolicy]);
    done.push(`FORWARD policy ${policy} -> ${before.forwardPolicy}`);
  }
  if (!before.hadForwardChain && filter.includes('-N NETAVARK_FORWARD') && !filter.some((l) => l.startsWith('-A NETAVARK_FORWARD '))) {
    for (const l of filter.filter((x) => x.startsWith('-A ') && x.endsWith('-j NETAVARK_FORWARD'))) {
      await run('iptables', ['-t', 'filter', '-D', ...splitRule(l.slice(3))]);
    }
    await run('iptables', ['-t', 'filter', '-X', 'NETAVARK_FORWARD']);
    done.push('removed empty NETAVARK_FORWARD');
  }
  const nat = (await rules('nat')) ?? [];
  const dnatRules = nat.filter((l) => l.startsWith('-A NETAVARK-HOSTPORT-DNAT ') || /^-A NETAVARK-(DN-)?[0-9A-F]+ /.test(l));
  if (!before.hadHostportChains && nat.includes('-N NETAVARK-HOSTPORT-DNAT') && dnatRules.length === 0) {
    for (const l of nat.filter((x) => x.startsWith('-A ') && /-j NETAVARK-HOSTPORT-(DNAT|MASQ)$/.test(x) && !x.startsWith('-A NETAVARK'))) {
      await run('iptables', ['-t', 'nat', '-D', ...splitRule(l.slice(3))]);
    }
    for (const ch of ['NETAVARK-HOSTPORT-DNAT', 'NETAVARK-HOSTPORT-MASQ', 'NETAVARK-HOSTPORT-SETMARK']) {
      await run('iptables', ['-t', 'nat', '-F', ch]);
      await run('iptables', ['-t', 'nat', '-X', ch]);
    }
    done.push('removed empty NETAVARK-HOSTPORT-* chains');
  }
  return done;
}
