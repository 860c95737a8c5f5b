/**
 * What the container service needs from the layers below it, as narrow interfaces. The engine's
 * composition root wires the real implementations (image/, snapshot/, runtime/spec/) in.
 */
import type { Readable } from 'node:stream';
import type { Json } from '../engine/services.js';

/** An image resolved for running. */
export interface RunnableImage {
  id: string;
  /** Full OCI image config JSON ({architecture, os, config: {...}, rootfs, history}). */
  config: Json;
  /** Unpacked layer directories, lowest first. */
  layerDirs: string[];
  /** Familiar name (busybox:latest), or the id. */
  ref: string;
}

export interface ImageProvider {
  resolve(ref: string): Promise<RunnableImage>;
}

/** Tar and filesystem helpers used by cp/export/diff. */
export interface Archiver {
  changes(upperDir: string, lowerDirs: string[]): Promise<Array<{ Path: string; Kind: number }>>;
  packTree(dir: string): Readable;
  statInRoot(root: string, path: string): Promise<{ name: string; size: number; mode: number; mtime: string; linkTarget: string }>;
  packPath(root: string, path: string): Promise<Readable>;
  extractInto(root: string, destDir: string, tar: Readable, opts: { noOverwriteDirNonDir: boolean }): Promise<void>;
}

/** Mount description passed to the spec builder (defined by runtime/spec). */
export type { ResolvedMount } from '../runtime/spec/index.js';
import type { ResolvedMount } from '../runtime/spec/index.js';

/** The spec builder (runtime/spec). */
export interface SpecBuilder {
  buildRuntimeSpec(input: Json & { mounts: ResolvedMount[] }): Promise<Json>;
  buildExecProcess(input: Json): Promise<Json>;
  resourcesFromHostConfig(hc: Json, hostLimits: Json): Json;
  validateHostConfig(hc: Json, hostLimits: Json): void;
}
