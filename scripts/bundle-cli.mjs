// Bundle the berth CLI into one CommonJS file (issue 7: CLI start-up). Run after `tsc` (it bundles
// the compiled dist/src/bin/berth-cli.js):
//
//   node scripts/bundle-cli.mjs        (part of `npm run build`)
//
// Output: dist/src/bin/berth-cli.bundle.cjs, next to berthd.js (the CLI starts the daemon from its
// own directory). dist/src/bin/berth-launcher.cjs runs it with V8's code cache; the stale cache of
// an earlier bundle is removed here, and one run of the launcher writes the new one.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';

// esbuild leaves `import('node:http')` (a builtin loaded on first use, client/api-client.ts) as a
// real dynamic import, which a vm.Script cannot run; this turns it into a require() made at that point.
function lazyBuiltins() {
  return {
    name: 'lazy-builtins',
    setup(b) {
      b.onResolve({ filter: /^node:/ }, (args) => (args.kind === 'dynamic-import' ? { path: args.path, namespace: 'lazy-builtin' } : undefined));
      b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)});`, loader: 'js' }));
    },
  };
}

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const binDir = join(repo, 'dist/src/bin');
const out = join(binDir, 'berth-cli.bundle.cjs');

await build({
  entryPoints: [join(binDir, 'berth-cli.js')],
  outfile: out,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // less source for V8 to scan at every start; identifiers stay (readable stack traces)
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  logLevel: 'warning',
  plugins: [lazyBuiltins()],
});
if (/\bimport\(/.test(readFileSync(out, 'utf8'))) throw new Error(`bundle-cli: ${out} still contains a dynamic import(), which the launcher's vm.Script cannot run`);
rmSync(`${out}.v8cache`, { force: true });

// Prime the code cache with a run that goes through argument parsing, the client and the error path
// (nothing listens on that socket). The launcher writes the cache at exit; failure is not fatal.
const env = { ...process.env, BERTH_HOST: undefined };
delete env.NODE_EXTRA_CA_CERTS;
const r = spawnSync(process.execPath, [join(binDir, 'berth-launcher.cjs'), '-H', 'unix:///nonexistent/berth.sock', 'version'], { env, stdio: 'ignore' });
if (r.error) console.error(`bundle-cli: priming the code cache failed: ${r.error.message}`);
