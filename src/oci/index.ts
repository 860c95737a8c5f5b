/** oci/: pure image-spec helpers (references, media types, configs, chain ids, change lines). */
export * from './reference.js';
export * from './media-types.js';
export * from './image-spec.js';
export * from './chain-id.js';
export * from './changes.js';
