import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OperatorError } from '../../src/common/errors.ts';
import { resolveRtpengines } from '../../src/media/rtpengine-names.ts';

const names: Record<string, string[]> = {
  'rtp.internal': ['10.0.0.7', '10.0.0.8'],
  'rtp6.internal': ['fd00::7'],
  'alias.internal': ['10.0.0.7'],
};
const lookup = async (name: string) => {
  const addresses = names[name];
  if (addresses === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
  return addresses.map((address) => ({ address }));
};

test('rtpengine names: each address of a name is an rtpengine with its weight; addresses pass as they are; repeats once', async () => {
  const resolved = await resolveRtpengines(
    [
      { host: '10.0.0.5', port: 2223, weight: 1 },
      { host: 'rtp.internal', port: 2223, weight: 3 },
      { host: 'rtp6.internal', port: 2224, weight: 1 },
      { host: 'alias.internal', port: 2223, weight: 1 },
    ],
    lookup,
  );
  assert.deepEqual(resolved, [
    { host: '10.0.0.5', port: 2223, weight: 1 },
    { host: '10.0.0.7', port: 2223, weight: 3 },
    { host: '10.0.0.8', port: 2223, weight: 3 },
    { host: 'fd00::7', port: 2224, weight: 1 },
  ]);
});

test('rtpengine names: a name that does not resolve stops the start with the name and the reason', async () => {
  await assert.rejects(
    resolveRtpengines([{ host: 'missing.internal', port: 2223, weight: 1 }], lookup),
    (error: unknown) =>
      error instanceof OperatorError &&
      error.exitCode === 1 &&
      /DIALPLANE_RTPENGINE: missing\.internal does not resolve \(ENOTFOUND\)/.test(error.message),
  );
});

test('rtpengine names: the system resolver finds localhost', async () => {
  const resolved = await resolveRtpengines([{ host: 'localhost', port: 2223, weight: 1 }]);
  assert.ok(
    resolved.some((entry) => entry.host === '127.0.0.1' || entry.host === '::1'),
    JSON.stringify(resolved),
  );
});
