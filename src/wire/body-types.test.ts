import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CONTAINER_CREATE_BODY, CONTAINER_UPDATE_BODY, EXEC_CREATE_BODY, checkBodyTypes } from './body-types.js';

const rejects = (body: unknown, re: RegExp, schema = CONTAINER_CREATE_BODY): void => {
  assert.throws(() => checkBodyTypes(body, schema), (e: Error & { kind?: string }) => {
    assert.equal(e.kind, 'invalid-argument');
    assert.match(e.message, re);
    return true;
  });
};

test('create body: what Docker clients send passes; unknown fields and nulls are ignored', () => {
  checkBodyTypes(
    {
      Image: 'busybox',
      Cmd: 'echo hi',
      Entrypoint: ['sh', '-c'],
      User: 1000, // docker-py
      Env: ['A=1'],
      Labels: { a: 'b' },
      Healthcheck: { Test: ['CMD-SHELL', 'true'], Timeout: null, Interval: 1e9 },
      Bogus: { anything: [1, 2] },
      HostConfig: {
        Memory: 64 * 1024 * 1024,
        PortBindings: { '80/tcp': [{ HostIp: '', HostPort: '8080' }] },
        RestartPolicy: { Name: 'always', MaximumRetryCount: 0 },
        ConsoleSize: [30, 90],
        Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 2048 }],
        LogConfig: null,
        Nope: true,
      },
      NetworkingConfig: { EndpointsConfig: { default: { Aliases: ['web'] } } },
    },
    CONTAINER_CREATE_BODY,
  );
  checkBodyTypes(undefined, CONTAINER_CREATE_BODY);
});

test('create body: wrong types are rejected with Go decoder wording', () => {
  rejects({ HostConfig: { Memory: 'lots' } }, /^json: cannot unmarshal string into Go struct field CreateRequest\.HostConfig\.Memory of type int64$/);
  rejects({ HostConfig: { memory: 'lots' } }, /HostConfig\.Memory of type int64/); // case-insensitive like Go
  rejects({ HostConfig: { Memory: 1e30 } }, /cannot unmarshal number 1e\+30 into .*Memory of type int64/);
  rejects({ HostConfig: { Memory: 1.5 } }, /number 1\.5 into .* of type int64/);
  rejects({ HostConfig: { BlkioWeight: 70000 } }, /of type uint16/);
  rejects({ Env: 'A=1' }, /cannot unmarshal string into Go struct field CreateRequest\.Env of type \[\]string/);
  rejects({ Cmd: 5 }, /cannot unmarshal number into Go struct field CreateRequest\.Cmd/);
  rejects({ Labels: { a: 5 } }, /cannot unmarshal number into Go struct field CreateRequest\.Labels of type string/);
  rejects({ Tty: 'yes' }, /cannot unmarshal string .*Tty of type bool/);
  rejects({ HostConfig: { PortBindings: { '80/tcp': [{ HostPort: 8080 }] } } }, /HostConfig\.PortBindings\.HostPort of type string/);
  rejects({ HostConfig: [] }, /cannot unmarshal array into .*HostConfig of type container\.HostConfig/);
  rejects([1], /cannot unmarshal array into Go value of type CreateRequest/);
});

test('update and exec bodies', () => {
  checkBodyTypes({ Memory: 67108864, RestartPolicy: { Name: 'no' } }, CONTAINER_UPDATE_BODY);
  rejects({ CpuShares: '512' }, /UpdateConfig\.CpuShares of type int64/, CONTAINER_UPDATE_BODY);
  checkBodyTypes({ Cmd: ['ls'], Tty: true, ConsoleSize: [1, 2] }, EXEC_CREATE_BODY);
  rejects({ Cmd: ['ls'], ConsoleSize: [-1, 2] }, /number -1 into .*ConsoleSize of type uint64/, EXEC_CREATE_BODY);
});
