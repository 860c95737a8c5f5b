import { test } from 'node:test';
import assert from 'node:assert/strict';

import { envLookup, expandWord, expandWords, parseKeyValuePairs } from './shell-words.js';

const env = envLookup(['A=1', 'E=', 'SP=a b']);

test('plain and braced variables', () => {
  assert.equal(expandWord('$A-${A}x$NOPE.', env), '1-1x.');
  assert.equal(expandWord('cost $', env), 'cost $');
});

test('modifiers :- - :+ +', () => {
  assert.equal(expandWord('${NOPE:-def}', env), 'def');
  assert.equal(expandWord('${E:-def}', env), 'def');
  assert.equal(expandWord('${E-def}', env), '');
  assert.equal(expandWord('${A:+alt}', env), 'alt');
  assert.equal(expandWord('${E:+alt}', env), '');
  assert.equal(expandWord('${E+alt}', env), 'alt');
  assert.equal(expandWord('${NOPE:-${A}z}', env), '1z');
  assert.throws(() => expandWord('${NOPE:?must be set}', env), /NOPE: must be set/);
});

test('quotes and escapes', () => {
  assert.equal(expandWord(`'$A' "$A" \\$A`, env), '$A 1 $A');
  assert.equal(expandWord('"a\\"b"', env), 'a"b');
  assert.equal(expandWord('`$A', env, '`'), '$A');
  assert.throws(() => expandWord('"open', env), /double-quote/);
});

test('word splitting keeps expanded values whole', () => {
  assert.deepEqual(expandWords('x "y z" $SP', env), ['x', 'y z', 'a b']);
});

test('key=value pairs and legacy form', () => {
  assert.deepEqual(parseKeyValuePairs('ENV', 'X=$A Y="two words" Z=a\\ b', env), [['X', '1'], ['Y', 'two words'], ['Z', 'a b']]);
  assert.deepEqual(parseKeyValuePairs('ENV', 'K some value $A', env), [['K', 'some value 1']]);
  assert.throws(() => parseKeyValuePairs('LABEL', 'a=1 b', env), /can't find =/);
});
