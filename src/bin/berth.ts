#!/usr/bin/env node
/**
 * The berth CLI entry as plain ESM modules (tests and development: `node dist/src/bin/berth.js`).
 * The installed `berth` command runs the one-file bundle of bin/berth-cli.ts instead (faster start).
 */
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const { runCliProcess } = await import('../cli/main.js');
await runCliProcess(dirname(fileURLToPath(import.meta.url)));
