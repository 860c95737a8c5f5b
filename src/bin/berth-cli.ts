/**
 * Entry of the CLI bundle: scripts/bundle-cli.mjs bundles this file and everything it imports into
 * one CommonJS file, dist/src/bin/berth-cli.cjs, which the installed `berth` command runs (one file
 * to read and compile instead of an ESM module graph; command modules stay lazily initialised).
 * The bundle lives next to berthd.js, which the CLI starts when no daemon answers.
 */
import { runCliProcess } from '../cli/main.js';

/** Run the CLI; `binDir` is the directory of the bundle (and of berthd.js). */
export function start(binDir: string): Promise<never> {
  return runCliProcess(binDir);
}
