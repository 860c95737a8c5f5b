/**
 * `berth version`: kept in its own small module so the command starts fast (no template or
 * table code is loaded unless --format is given).
 */
import { CLIENT_API_VERSION, compareVersions } from '../../client/index.js';
import { parseArgs } from '../args.js';
import type { Cli } from '../context.js';

const CLI_VERSION = '0.1.0';

function goArch(): string {
  const a = process.arch;
  return a === 'x64' ? 'amd64' : a === 'ia32' ? '386' : a;
}

/** `berth version [--format]`. */
export async function version(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ name: 'format', short: 'f', type: 'string' }], { command: 'version' });
  const clientInfo = {
    Platform: { Name: '' },
    Version: CLI_VERSION,
    ApiVersion: CLIENT_API_VERSION,
    DefaultAPIVersion: CLIENT_API_VERSION,
    GitCommit: 'unknown',
    GoVersion: process.version,
    Os: process.platform,
    Arch: goArch(),
    BuildTime: '',
    Context: 'default',
  };
  let server: Record<string, unknown> | undefined;
  let serverErr: unknown;
  try {
    // one round trip: the unversioned /version answers the daemon's API version, which is what the
    // /_ping negotiation would have learnt (the client's version, lowered to an older daemon's)
    const c = await cli.client();
    server = await c.json<Record<string, unknown>>('GET', '/version', { noVersion: true });
    const serverApi = server?.['ApiVersion'];
    if (!cli.getenv('BERTH_API_VERSION') && typeof serverApi === 'string' && compareVersions(serverApi, CLIENT_API_VERSION) < 0) {
      clientInfo.ApiVersion = serverApi;
    } else clientInfo.ApiVersion = cli.getenv('BERTH_API_VERSION') || CLIENT_API_VERSION;
  } catch (err) {
    serverErr = err;
  }
  const format = p.flags['format'];
  if (typeof format === 'string' && format) {
    const { renderOne } = await import('../format.js');
    cli.print(renderOne(format, { Client: clientInfo, Server: server ?? null }));
  } else {
    let s = 'Client:\n';
    s += ` Version:           ${clientInfo.Version}\n`;
    s += ` API version:       ${clientInfo.ApiVersion}\n`;
    s += ` Node version:      ${clientInfo.GoVersion}\n`;
    s += ` OS/Arch:           ${clientInfo.Os}/${clientInfo.Arch}\n`;
    s += ` Context:           ${clientInfo.Context}\n`;
    if (server) {
      const platform = (server['Platform'] as { Name?: string } | undefined)?.Name;
      s += `\nServer:${platform ? ` ${platform}` : ''}\n`;
      const comps = (server['Components'] as { Name: string; Version: string; Details?: Record<string, string> }[] | undefined) ?? [];
      const engine = comps.find((c) => c.Name === 'Engine');
      const d = engine?.Details ?? {};
      s += ' Engine:\n';
      s += `  Version:          ${String(server['Version'] ?? '')}\n`;
      s += `  API version:      ${String(server['ApiVersion'] ?? '')} (minimum version ${String(server['MinAPIVersion'] ?? '')})\n`;
      if (server['GoVersion'] ?? d['GoVersion']) s += `  Go version:       ${String(server['GoVersion'] ?? d['GoVersion'])}\n`;
      s += `  Git commit:       ${String(server['GitCommit'] ?? d['GitCommit'] ?? '')}\n`;
      s += `  Built:            ${String(server['BuildTime'] ?? d['BuildTime'] ?? '')}\n`;
      s += `  OS/Arch:          ${String(server['Os'] ?? '')}/${String(server['Arch'] ?? '')}\n`;
      s += `  Experimental:     ${String(server['Experimental'] ?? false)}\n`;
      for (const c of comps) {
        if (c.Name === 'Engine') continue;
        s += ` ${c.Name}:\n  Version:          ${c.Version}\n`;
        if (c.Details?.['GitCommit']) s += `  GitCommit:        ${c.Details['GitCommit']}\n`;
      }
    }
    cli.print(s);
  }
  if (serverErr) throw serverErr;
  return 0;
}

