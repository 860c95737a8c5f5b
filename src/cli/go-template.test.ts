import { test } from 'node:test';
import assert from 'node:assert/strict';

import { GoTemplate, renderTemplate, TemplateError, goPrint } from './go-template.js';

const data = {
  Id: 'abc',
  State: { Status: 'running', Pid: 42, Running: true, Health: null },
  Config: { Labels: { 'com.x': 'y', a: 'b' }, Env: ['A=1', 'B=2'], Cmd: ['sh', '-c', 'echo'] },
  Names: ['/web'],
  Empty: [],
};

test('fields, nested fields and dot', () => {
  assert.equal(renderTemplate('{{.Id}} {{.State.Status}} {{.State.Pid}}', data), 'abc running 42');
  assert.equal(renderTemplate('{{.}}', 'x'), 'x');
  assert.equal(renderTemplate('{{.Missing}}', data), '<no value>');
  assert.equal(renderTemplate('{{.State.Health}}', data), '<nil>');
});

test('json, index, join, lower/upper, len, println', () => {
  assert.equal(renderTemplate('{{json .Config.Env}}', data), '["A=1","B=2"]');
  assert.equal(renderTemplate('{{json .}}', { a: '<&>' }), '{"a":"<&>"}');
  assert.equal(renderTemplate('{{index .Config.Labels "com.x"}}', data), 'y');
  assert.equal(renderTemplate('{{index .Names 0}}', data), '/web');
  assert.equal(renderTemplate('{{join .Config.Cmd " "}}', data), 'sh -c echo');
  assert.equal(renderTemplate('{{lower "ABC"}}{{upper .Id}}', data), 'abcABC');
  assert.equal(renderTemplate('{{len .Config.Env}}', data), '2');
  assert.equal(renderTemplate('{{println .Id}}', data), 'abc\n');
  assert.equal(renderTemplate('{{.Id | upper}}', data), 'ABC');
  assert.equal(renderTemplate('{{printf "%s-%d" .Id 7}}', data), 'abc-7');
  assert.equal(renderTemplate('{{(index .Names 0) | upper}}', data), '/WEB');
  assert.equal(renderTemplate('{{split "a,b" ","}}', data), '[a b]');
});

test('range over lists and maps, with variables and else', () => {
  assert.equal(renderTemplate('{{range .Config.Env}}[{{.}}]{{end}}', data), '[A=1][B=2]');
  assert.equal(renderTemplate('{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}', data), 'a=b;com.x=y;');
  assert.equal(renderTemplate('{{range .Empty}}x{{else}}none{{end}}', data), 'none');
  assert.equal(renderTemplate('{{range $i, $e := .Config.Cmd}}{{if $i}},{{end}}{{$e}}{{end}}', data), 'sh,-c,echo');
  assert.equal(renderTemplate('{{range .Names}}{{$.Id}}{{end}}', data), 'abc');
});

test('if / else if / else, comparison and logic', () => {
  const t = new GoTemplate('{{if eq .State.Status "exited"}}E{{else if .State.Running}}R{{else}}?{{end}}');
  assert.equal(t.execute(data), 'R');
  assert.equal(t.execute({ State: { Status: 'exited' } }), 'E');
  assert.equal(t.execute({ State: { Status: 'x', Running: false } }), '?');
  assert.equal(renderTemplate('{{if and .State.Running (gt .State.Pid 10)}}big{{end}}', data), 'big');
  assert.equal(renderTemplate('{{if not .Empty}}empty{{end}}', data), 'empty');
  assert.equal(renderTemplate('{{with .State}}{{.Status}}{{end}}', data), 'running');
});

test('trim markers and variables', () => {
  assert.equal(renderTemplate('a  {{- .Id -}}  b', data), 'aabcb');
  assert.equal(renderTemplate('{{$x := .Id}}{{$x}}-{{$x}}', data), 'abc-abc');
});

test('errors', () => {
  assert.throws(() => new GoTemplate('{{.Id'), TemplateError);
  assert.throws(() => new GoTemplate('{{if .Id}}x'), TemplateError);
  assert.throws(() => renderTemplate('{{nosuch .Id}}', data), /function "nosuch" not defined/);
  assert.throws(() => renderTemplate('{{.State.Health.Status}}', data), /nil pointer/);
});

test('goPrint mimics Go %v for JSON values', () => {
  assert.equal(goPrint(['a', 1, true]), '[a 1 true]');
  assert.equal(goPrint({ b: 1, a: 'x' }), 'map[a:x b:1]');
  assert.equal(goPrint(null), '<nil>');
});
