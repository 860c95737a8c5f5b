#!/usr/bin/env node
/**
 * The berth CLI entry. Kept tiny: everything is loaded lazily by cli/main.js.
 */
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const binDir = dirname(fileURLToPath(import.meta.url));
const { cliMain } = await import('../cli/main.js');
const code = await cliMain(binDir);
// Flush stdout/stderr before exiting: open stdin/sockets must not keep the process alive.
const done = (): void => process.exit(code);
if (process.stdout.writableLength || process.stderr.writableLength) {
  let pending = 2;
  const one = (): void => void (--pending === 0 && done());
  process.stdout.write('', one);
  process.stderr.write('', one);
} else done();
