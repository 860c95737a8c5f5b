import { test } from 'node:test';
import assert from 'node:assert/strict';

import { flagValue, parseDockerfile, splitStages } from './dockerfile-parser.js';

test('instructions, comments, continuations and line numbers', () => {
  const df = parseDockerfile('# a comment\nFROM busybox\n\nRUN echo a \\\n  # inner comment\n  && echo b\ncmd ["sh", "-c", "x"]\n');
  assert.deepEqual(df.instructions.map((i) => i.cmd), ['FROM', 'RUN', 'CMD']);
  assert.equal(df.instructions[1]!.line, 4);
  assert.equal(df.instructions[1]!.rest, 'echo a   && echo b');
  assert.deepEqual(df.instructions[2]!.json, ['sh', '-c', 'x']);
  assert.equal(df.instructions[2]!.line, 7);
  assert.equal(df.instructions[1]!.json, undefined);
});

test('directives: escape backtick and syntax', () => {
  const df = parseDockerfile('# syntax=docker/dockerfile:1\n# escape=`\nFROM x\nRUN a `\n b\nRUN c \\\nRUN d\n');
  assert.equal(df.escape, '`');
  assert.equal(df.directives['syntax'], 'docker/dockerfile:1');
  assert.deepEqual(df.instructions.map((i) => i.rest), ['x', 'a  b', 'c \\', 'd']);
});

test('a directive after an instruction is a comment', () => {
  const df = parseDockerfile('FROM x\n# escape=`\nRUN a \\\n b\n');
  assert.equal(df.escape, '\\');
  assert.equal(df.instructions[1]!.rest, 'a  b');
});

test('bad escape directive', () => {
  assert.throws(() => parseDockerfile('# escape=x\nFROM a\n'), /invalid ESCAPE/);
});

test('unknown instruction names its line', () => {
  assert.throws(() => parseDockerfile('FROM a\n\nFOO bar\n'), /dockerfile parse error on line 3: unknown instruction: FOO/);
});

test('missing arguments name the line', () => {
  assert.throws(() => parseDockerfile('FROM a\nRUN\n'), /line 2: RUN requires at least one argument/);
});

test('heredocs: RUN <<EOF, <<-, quoted delimiter, COPY <<EOF and several', () => {
  const df = parseDockerfile('FROM a\nRUN <<EOF\necho hi\necho $X\nEOF\nRUN <<-"END" sh\n\tliteral $Y\n\tEND\nCOPY <<A <<B /dst/\none\nA\ntwo\nB\nCMD x\n');
  const [, r1, r2, c, cmd] = df.instructions;
  assert.equal(r1!.heredocs[0]!.content, 'echo hi\necho $X\n');
  assert.equal(r1!.heredocs[0]!.expand, true);
  assert.equal(r2!.heredocs[0]!.content, 'literal $Y\n');
  assert.equal(r2!.heredocs[0]!.expand, false);
  assert.equal(r2!.heredocs[0]!.chomp, true);
  assert.deepEqual(c!.heredocs.map((h) => [h.name, h.content]), [['A', 'one\n'], ['B', 'two\n']]);
  assert.equal(cmd!.cmd, 'CMD');
  assert.equal(cmd!.line, 14);
});

test('unterminated heredoc', () => {
  assert.throws(() => parseDockerfile('FROM a\nRUN <<EOF\necho\n'), /line 2: unterminated heredoc EOF/);
});

test('flags are split off FROM/RUN/COPY/ADD', () => {
  const df = parseDockerfile('FROM --platform=linux/amd64 busybox AS b\nCOPY --from=b --chown=1:2 /a /b\nRUN --mount=type=cache,target=/c echo --not-a-flag\n');
  const [f, c, r] = df.instructions;
  assert.equal(flagValue(f!, 'platform'), 'linux/amd64');
  assert.equal(f!.rest, 'busybox AS b');
  assert.equal(flagValue(c!, 'from'), 'b');
  assert.equal(flagValue(c!, 'chown'), '1:2');
  assert.equal(c!.rest, '/a /b');
  assert.equal(r!.rest, 'echo --not-a-flag');
  assert.equal(flagValue(r!, 'mount'), 'type=cache,target=/c');
});

test('stages: names, meta args, errors', () => {
  const plan = splitStages(parseDockerfile('ARG V=1\nFROM busybox:${V} AS Build\nRUN a\nFROM scratch\nCOPY --from=build /x /x\n'));
  assert.equal(plan.metaArgs.length, 1);
  assert.equal(plan.stages.length, 2);
  assert.equal(plan.stages[0]!.name, 'build');
  assert.equal(plan.stages[0]!.base, 'busybox:${V}');
  assert.equal(plan.stages[1]!.instructions.length, 1);
  assert.throws(() => splitStages(parseDockerfile('RUN x\nFROM a\n')), /line 1: RUN instruction before FROM/);
  assert.throws(() => splitStages(parseDockerfile('FROM a b\n')), /line 1: FROM requires either one or three arguments/);
  assert.throws(() => splitStages(parseDockerfile('FROM a AS x\nFROM b AS x\n')), /line 2: duplicate name x/);
  assert.throws(() => splitStages(parseDockerfile('FROM a\nCOPY --bogus=1 a b\n')), /line 2: unknown flag: bogus/);
  assert.throws(() => splitStages(parseDockerfile('# nothing\n')), /no FROM/);
});

test('CRLF line endings and BOM', () => {
  const df = parseDockerfile('\uFEFFFROM a\r\nRUN b \\\r\n c\r\n');
  assert.deepEqual(df.instructions.map((i) => i.rest), ['a', 'b  c']);
});
