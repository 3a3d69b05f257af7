import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createResponse, SipHeaders } from '../../src/sip/message.ts';
import type { TransactionResult } from '../../src/sip/transact.ts';
import type { TargetHealth } from '../../src/health/schemas.ts';
import { DownTargets, probeVerdict, trunkHealth } from '../../src/health/trunk-health.ts';

/** The rules of src/health/trunk-health.ts, table-driven. */
const answered = (status: number, reason: string): TransactionResult => ({ response: createResponse({ status, reason, headers: new SipHeaders() }) });

test('probeVerdict: what an OPTIONS probe’s outcome says of its target', () => {
  const cases: [TransactionResult, 'up' | 'down', string][] = [
    [answered(200, 'OK'), 'up', '200 OK'],
    [answered(403, 'Forbidden'), 'up', '403 Forbidden'],
    [answered(404, 'Not Found'), 'up', '404 Not Found'],
    [answered(405, 'Method Not Allowed'), 'up', '405 Method Not Allowed'],
    [answered(407, 'Proxy Authentication Required'), 'up', '407 Proxy Authentication Required'],
    [answered(603, 'Decline'), 'up', '603 Decline'],
    [answered(408, 'Request Timeout'), 'down', '408 Request Timeout'],
    [answered(500, 'Server Internal Error'), 'down', '500 Server Internal Error'],
    [answered(503, 'Service Unavailable'), 'down', '503 Service Unavailable'],
    [answered(504, 'Server Time-out'), 'down', '504 Server Time-out'],
    [{ timeout: true }, 'down', 'no response within 5 s'],
    [{ error: new Error('connect ECONNREFUSED 127.0.0.1:5061') }, 'down', 'transport error: connect ECONNREFUSED 127.0.0.1:5061'],
  ];
  for (const [result, state, lastResponse] of cases) {
    assert.deepEqual(probeVerdict(result, 5), { state, lastResponse }, lastResponse);
  }
});

const target = (address: string, state: 'up' | 'down', lastResponse: string): TargetHealth => ({
  transport: 'udp',
  host: `${address}.example`,
  address,
  port: 5060,
  state,
  lastCheckedTime: '2026-12-01T10:00:00.000Z',
  lastResponse,
});

test('trunkHealth: up while any target is up, with that target’s response; down otherwise', () => {
  const time = '2026-12-01T10:00:01.000Z';
  const cases: [TargetHealth[], string | null, 'up' | 'down', string][] = [
    [[target('192.0.2.1', 'down', 'no response within 5 s'), target('192.0.2.2', 'up', '200 OK')], null, 'up', '200 OK'],
    [[target('192.0.2.1', 'up', '404 Not Found'), target('192.0.2.2', 'up', '200 OK')], null, 'up', '404 Not Found'],
    [
      [target('192.0.2.1', 'down', '503 Service Unavailable'), target('192.0.2.2', 'down', 'no response within 5 s')],
      null,
      'down',
      '503 Service Unavailable',
    ],
    [[], 'trunk.example was not found in DNS: ENOTFOUND', 'down', 'trunk.example was not found in DNS: ENOTFOUND'],
  ];
  for (const [targets, why, state, lastResponse] of cases) {
    assert.deepEqual(trunkHealth(targets, time, why), { state, lastCheckedTime: time, lastResponse, targets }, lastResponse);
  }
});

test('DownTargets: down targets are skipped while another is not down; all down, nothing is skipped', () => {
  const down = new DownTargets();
  const a = { transport: 'udp' as const, host: '192.0.2.1', port: 5060 };
  const b = { transport: 'udp' as const, host: '192.0.2.2', port: 5060 };
  const first = [target('192.0.2.1', 'down', '503 Service Unavailable'), target('192.0.2.2', 'up', '200 OK')];
  down.update([], first);
  assert.deepEqual(down.skipDown([a, b]), [b]);
  assert.deepEqual(down.skipDown([a]), [a], 'the only target is tried even when down');
  assert.deepEqual(down.skipDown([{ ...a, transport: 'tcp' as const }, b]).length, 2, 'another transport is another target');

  // A second trunk on the same carrier address: the address stays down until neither sees it down.
  down.update([], [target('192.0.2.1', 'down', 'no response within 5 s')]);
  const recovered = [target('192.0.2.1', 'up', '200 OK'), target('192.0.2.2', 'up', '200 OK')];
  down.update(first, recovered);
  assert.deepEqual(down.skipDown([a, b]), [b], 'still down for the other trunk');
  down.update([target('192.0.2.1', 'down', 'no response within 5 s')], []);
  assert.deepEqual(down.skipDown([a, b]), [a, b]);
});
