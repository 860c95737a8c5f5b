/** store/: content-addressed blobs and image metadata. */
export * from './digest-verifier.js';
export * from './content-store.js';
export * from './metadata-store.js';
