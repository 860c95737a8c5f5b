/** build/: Dockerfile parser (pure), .dockerignore matcher, build cache and the classic builder. */
export { parseDockerfile, splitStages, flagValue, flagValues, parseJsonArgs, INSTRUCTIONS, type Dockerfile, type Instruction, type Heredoc, type Stage, type StagePlan } from './dockerfile-parser.js';
export { expandWord, expandWords, envLookup, parseKeyValuePairs, type Lookup } from './shell-words.js';
export { IgnoreMatcher, readDockerignore } from './dockerignore.js';
export { BuildCache, cacheKey } from './build-cache.js';
export { ClassicBuilder, type ClassicBuilderOptions, type BuilderImages, type BuilderContainers } from './executor.js';
export { parseRunMount, parseRunNetwork, type RunMount } from './run-mounts.js';
