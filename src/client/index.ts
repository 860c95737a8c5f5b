/**
 * The berth API client (layer L7): typed HTTP over the daemon's UNIX socket or TCP.
 */
export { ApiClient, CLIENT_API_VERSION, compareVersions, encodeQuery, multiplexedFromContentType, readBody } from './api-client.js';
export type { ApiClientOptions, HijackedStream, PingResult, QueryValue, RequestOptions } from './api-client.js';
export { ApiError, ConnectionError, errorMessageFromBody, kindForStatus } from './api-error.js';
export { DEFAULT_HOST, DEFAULT_SOCKET, parseHost } from './host.js';
export type { DaemonAddress } from './host.js';
export { readNdjson } from './ndjson.js';
export { copyOutput, forwardStdin } from './attach-io.js';
