/**
 * api/: berthd's HTTP edge serving the Docker Engine API over the Engine interface.
 */
export { createApiServer, type ApiServer, type ApiServerOptions } from './server.js';
export { statusForKind, errorReply, STATUS_BY_KIND } from './errors.js';
export { MAX_API_VERSION, MIN_API_VERSION } from './version.js';
export type { PullFn, PullOptions } from './compat/images.js';
