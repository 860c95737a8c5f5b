import { test } from 'node:test';
import assert from 'node:assert/strict';

import { IgnoreMatcher, readDockerignore } from './dockerignore.js';

const m = (text: string): IgnoreMatcher => new IgnoreMatcher(readDockerignore(text));

test('simple names match at the root and cover directory contents', () => {
  const x = m('# c\nnode_modules\n/tmp/\n*.log\n');
  assert.equal(x.ignores('node_modules'), true);
  assert.equal(x.ignores('node_modules/a/b.js'), true);
  assert.equal(x.ignores('src/node_modules'), false);
  assert.equal(x.ignores('tmp/x'), true);
  assert.equal(x.ignores('a.log'), true);
  assert.equal(x.ignores('dir/a.log'), false);
  assert.equal(x.ignores('a.txt'), false);
});

test('** spans directories', () => {
  const x = m('**/*.o\ndocs/**/draft*\n');
  assert.equal(x.ignores('a.o'), true);
  assert.equal(x.ignores('x/y/z.o'), true);
  assert.equal(x.ignores('docs/draft1'), true);
  assert.equal(x.ignores('docs/a/b/draft2'), true);
  assert.equal(x.ignores('docs/final'), false);
});

test('! exceptions and ordering: last match wins', () => {
  const x = m('*.md\n!README.md\n');
  assert.equal(x.ignores('CHANGES.md'), true);
  assert.equal(x.ignores('README.md'), false);
  const y = m('!README.md\n*.md\n');
  assert.equal(y.ignores('README.md'), true);
  const z = m('build\n!build/keep\n');
  assert.equal(z.ignores('build/x'), true);
  assert.equal(z.ignores('build/keep'), false);
  assert.equal(z.ignores('build/keep/inner'), false);
});

test('? and classes stay within one component', () => {
  const x = m('a?c\n[xy].txt\n');
  assert.equal(x.ignores('abc'), true);
  assert.equal(x.ignores('a/c'), false);
  assert.equal(x.ignores('x.txt'), true);
  assert.equal(x.ignores('z.txt'), false);
});

test('empty matcher ignores nothing', () => {
  assert.equal(m('\n# only comments\n').ignores('a'), false);
});
