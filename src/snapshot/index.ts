/** snapshot/: layer tars (apply, pack, changes) and safe paths inside a rootfs. */
export { applyLayer, type ApplyLayerOptions, type ApplyLayerResult } from './apply-layer.js';
export { decodeRecipe, encodeRecipe, rebuildTar, recipeSize, resolveRecipe, TarSegmenter, type RecipePart } from './tar-split.js';
export { changes, ChangeKind, type Change } from './changes.js';
export { extractInto, writeEntries, type ExtractIntoOptions, type HostEntry } from './extract-into.js';
export { packLayerFromUpper, type PackLayerOptions, packPath, packTree, isOverlayWhiteout, writeTarEntry } from './pack.js';
export { resolveInRoot, statInRoot, resolveRequestPath, goFileMode, GoMode, type PathStat } from './root-path.js';
export { readTar, type TarHeader, type ReadTarResult, type ReadTarOptions } from './tar-read.js';
export { sanitizeEntryName } from './entry-writer.js';
