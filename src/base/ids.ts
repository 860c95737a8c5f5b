import { randomBytes } from 'node:crypto';

/** A new 64-hex id, as Docker uses for containers and exec sessions. */
export function newId(): string {
  return randomBytes(32).toString('hex');
}

/** The 12-character short form of an id (with or without "sha256:"). */
export function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

export const ID_RE = /^[0-9a-f]{64}$/;
/** Docker's container name rule. */
export const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

const ADJECTIVES = [
  'admiring', 'brave', 'clever', 'dazzling', 'eager', 'festive', 'gallant', 'happy', 'jolly',
  'keen', 'lucid', 'modest', 'nifty', 'optimistic', 'peaceful', 'quirky', 'relaxed', 'serene',
  'tender', 'upbeat', 'vibrant', 'wizardly', 'xenial', 'youthful', 'zealous', 'bold', 'calm',
];
const NAMES = [
  'albattani', 'babbage', 'curie', 'darwin', 'euclid', 'faraday', 'galileo', 'hopper', 'ishango',
  'jennings', 'kepler', 'lovelace', 'meitner', 'noether', 'ohm', 'pascal', 'ramanujan', 'shannon',
  'turing', 'volta', 'wilson', 'yalow', 'zhukovsky', 'bohr', 'dijkstra', 'hamilton', 'knuth',
];

/** A random adjective_name container name, as Docker generates. */
export function randomName(): string {
  const b = randomBytes(3);
  return `${ADJECTIVES[b[0]! % ADJECTIVES.length]}_${NAMES[b[1]! % NAMES.length]}${b[2]! % 4 === 0 ? String(b[2]! % 10) : ''}`;
}
