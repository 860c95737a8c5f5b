/** registry/: the distribution client (resolve, fetch, push, auth, error decoding). Writes nothing to disk. */
export { RegistryClient, isLoopbackHost, endpointHost, MANIFEST_ACCEPT, type RegistryClientOptions, type FetchedManifest, type RequestOptions, type UploadOptions } from './registry-client.js';
export { parseChallenge, basicHeader, type Challenge, type RegistryCredentials, type TokenOptions } from './auth.js';
export { registryError, parseRegistryErrors, type RegistryErrorEntry, type ErrorContext } from './errors.js';
export { getBlobResponse, type BlobGetOptions, type BlobGetResult } from './blob-get.js';
