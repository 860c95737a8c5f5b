#!/usr/bin/env node
/**
 * The installed `berth` command (issue 7: CLI start-up). CommonJS on purpose: Node's ESM loader
 * costs ~4 ms more to start than its CommonJS one. It runs the one-file CLI bundle
 * (berth-cli.bundle.cjs, built by scripts/bundle-cli.mjs from bin/berth-cli.ts) through
 * `vm.Script` with V8's code cache, which Node 20 does not do for ordinary modules
 * (`module.enableCompileCache` needs Node ≥ 22.1): the cache skips compiling the bundle's top level
 * and every function a previous run compiled.
 *
 * The cache file sits next to the bundle (berth-cli.bundle.cjs.v8cache). Its first line stamps the
 * bundle's size and mtime and the Node version, because V8 itself checks only the source length;
 * after the stamp come V8's bytes. A missing, stale or V8-rejected cache is rewritten (temporary
 * file + rename) when the process exits; a cache that cannot be written (read-only checkout) is
 * skipped silently. `BERTH_CODE_CACHE=0` turns the cache off.
 */
import fs = require('node:fs');
import vm = require('node:vm');

/** The bundle's exports: bin/berth-cli.ts. */
interface CliBundle {
  start(binDir: string): Promise<never>;
}

const bundle = `${__dirname}/berth-cli.bundle.cjs`;
const cacheFile = `${bundle}.v8cache`;

function readCache(stamp: string): Buffer | undefined {
  let raw: Buffer;
  try {
    raw = fs.readFileSync(cacheFile);
  } catch {
    return undefined;
  }
  const nl = raw.indexOf(10);
  if (nl < 0 || raw.toString('latin1', 0, nl + 1) !== stamp) return undefined;
  return raw.subarray(nl + 1);
}

function writeCache(script: vm.Script, stamp: string): void {
  const tmp = `${cacheFile}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, Buffer.concat([Buffer.from(stamp, 'latin1'), script.createCachedData()]));
    fs.renameSync(tmp, cacheFile);
  } catch {
    try {
      fs.unlinkSync(tmp);
    } catch {
      /* never written */
    }
  }
}

function launch(): void {
  const fd = fs.openSync(bundle, 'r');
  const st = fs.fstatSync(fd);
  const source = fs.readFileSync(fd, 'utf8');
  fs.closeSync(fd);
  const useCache = process.env['BERTH_CODE_CACHE'] !== '0';
  const stamp = `berth-v8cache 1 ${st.size} ${st.mtimeMs} ${process.version} ${process.arch}\n`;
  const cachedData = useCache ? readCache(stamp) : undefined;
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: bundle,
    ...(cachedData ? { cachedData } : {}),
  });
  // Written at exit, so the functions this run compiled are in the cache too.
  if (useCache && (!cachedData || script.cachedDataRejected)) process.once('exit', () => writeCache(script, stamp));
  const mod = { exports: {} as CliBundle };
  (script.runInThisContext() as (e: object, r: NodeJS.Require, m: object, f: string, d: string) => void)(
    mod.exports, require, mod, bundle, __dirname,
  );
  void mod.exports.start(__dirname);
}

launch();
