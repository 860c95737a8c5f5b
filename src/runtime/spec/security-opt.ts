/**
 * HostConfig.SecurityOpt parsing, with the wording of moby's parseSecurityOpt.
 * Supported: no-new-privileges[=|:bool], seccomp=unconfined|builtin|<json>|<path>,
 * systempaths=unconfined, apparmor=… and label=… (accepted, recorded, not enforced here).
 */
import { invalidArgument } from '../../base/errors.js';

/** Parsed security options. */
export interface SecurityOptions {
  noNewPrivileges: boolean;
  /** 'default' | 'unconfined' | { json } (inline Docker profile) | { path } (host file). */
  seccomp: 'default' | 'unconfined' | { json: string } | { path: string };
  /** systempaths=unconfined: no masked / read-only paths. */
  unmaskSystemPaths: boolean;
  apparmor?: string;
  labels: string[];
}

function parseBool(s: string): boolean | undefined {
  switch (s.toLowerCase()) {
    case '1': case 't': case 'true': return true;
    case '0': case 'f': case 'false': return false;
    default: return undefined;
  }
}

/** Parses SecurityOpt entries; throws invalidArgument(`invalid --security-opt …`) on unknown ones. */
export function parseSecurityOpt(opts: readonly string[]): SecurityOptions {
  const r: SecurityOptions = { noNewPrivileges: false, seccomp: 'default', unmaskSystemPaths: false, labels: [] };
  for (const opt of opts) {
    if (opt === 'no-new-privileges') { r.noNewPrivileges = true; continue; }
    if (opt === 'disable') { r.labels.push('disable'); continue; }
    let key: string;
    let value: string;
    const eq = opt.indexOf('=');
    const colon = opt.indexOf(':');
    if (eq > 0) { key = opt.slice(0, eq); value = opt.slice(eq + 1); }
    else if (colon > 0) { key = opt.slice(0, colon); value = opt.slice(colon + 1); }
    else throw invalidArgument(`invalid --security-opt 1: "${opt}"`);
    switch (key) {
      case 'no-new-privileges': {
        const b = parseBool(value);
        if (b === undefined) throw invalidArgument(`invalid --security-opt 2: "${opt}"`);
        r.noNewPrivileges = b;
        break;
      }
      case 'seccomp': {
        const v = value.trim();
        if (v === 'unconfined') r.seccomp = 'unconfined';
        else if (v === 'builtin' || v === '') r.seccomp = 'default';
        else if (v.startsWith('{')) r.seccomp = { json: v };
        else r.seccomp = { path: v };
        break;
      }
      case 'systempaths':
        if (value !== 'unconfined') throw invalidArgument(`invalid --security-opt 2: "${opt}"`);
        r.unmaskSystemPaths = true;
        break;
      case 'apparmor': r.apparmor = value; break;
      case 'label': r.labels.push(value); break;
      default: throw invalidArgument(`invalid --security-opt 2: "${opt}"`);
    }
  }
  return r;
}
