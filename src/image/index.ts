/** image/: local images (list/inspect/tag/remove/import/commit/prune) over store/ and snapshot/. */
export { LocalImageService, type LocalImageServiceOptions, type RegistrySettings, type ResolvedImage, type CommitFromUpperOptions, type ImageEventHook } from './local-image-service.js';
export { LayerStore, type LayerInfo } from './layer-store.js';
export { globMatch, matchLabels } from './image-filters.js';
export { pullImage, credentialsFromAuth, parsePlatformSpec, selectPlatform, type PullImageOptions } from './pull.js';
export { pushImage, type PushImageOptions } from './push.js';
export { saveImages, loadImages, loadMessages, type LoadReport } from './archive.js';
export { Semaphore, Channel, progressBar } from './progress-channel.js';
