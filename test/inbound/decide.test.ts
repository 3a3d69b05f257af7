import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AddressSet } from '../../src/common/addresses.ts';
import { decideInbound, type AgentEntry, type CredentialsEntry, type NumberEntry } from '../../src/inbound/decide.ts';
import { numberKey } from '../../src/inbound/routing-index.ts';

const trunk = (allowed: string[], orgId = 'o'): CredentialsEntry => ({
  id: `c-${orgId}`,
  orgId,
  sources: allowed,
  allowed: AddressSet.of(allowed),
  media: { mediaAnchoring: 'auto', mediaEncryption: 'none' },
});
const agent = (over: Partial<AgentEntry> = {}): AgentEntry => ({ id: 'a', orgId: 'o', isEnabled: true, sipUri: 'sip:agent@127.0.0.1:5070', ...over });
const number = (credentials: CredentialsEntry, linked: AgentEntry | null, id = 'n'): NumberEntry => ({
  id,
  key: numberKey('+15550100000'),
  credentials,
  agent: linked,
});

const RUNTIME = 'sip:runtime@127.0.0.1:5080';
const fromCarrier = trunk(['192.0.2.0/24']);

const table: {
  name: string;
  candidates: NumberEntry | NumberEntry[] | undefined;
  source: string;
  runtime?: string | null;
  /** A `sips:` Request-URI. */
  secure?: boolean;
  expect: { outcome: string; status?: number; target?: string; numberId?: string; capture?: boolean };
}[] = [
  { name: 'no such number', candidates: undefined, source: '192.0.2.1', expect: { outcome: 'not_found', status: 404 } },
  { name: 'source not allowed', candidates: number(fromCarrier, agent()), source: '198.51.100.7', expect: { outcome: 'forbidden', status: 403 } },
  { name: 'allowed, no agent', candidates: number(fromCarrier, null), source: '192.0.2.9', expect: { outcome: 'unavailable', status: 480 } },
  {
    name: 'agent disabled',
    candidates: number(fromCarrier, agent({ isEnabled: false })),
    source: '192.0.2.9',
    expect: { outcome: 'unavailable', status: 480 },
  },
  {
    name: 'agent sipUri',
    candidates: number(fromCarrier, agent()),
    source: '192.0.2.9',
    expect: { outcome: 'route', target: 'sip:agent@127.0.0.1:5070' },
  },
  {
    name: 'no sipUri: default runtime',
    candidates: number(fromCarrier, agent({ sipUri: null })),
    source: '192.0.2.9',
    runtime: RUNTIME,
    expect: { outcome: 'route', target: RUNTIME },
  },
  {
    name: 'no sipUri and no default runtime',
    candidates: number(fromCarrier, agent({ sipUri: null })),
    source: '192.0.2.9',
    runtime: null,
    expect: { outcome: 'unavailable', status: 480 },
  },
  {
    name: 'sips: Request-URI, agent sips:',
    candidates: number(fromCarrier, agent({ sipUri: 'sips:agent@agents.example' })),
    source: '192.0.2.9',
    secure: true,
    expect: { outcome: 'route', target: 'sips:agent@agents.example' },
  },
  {
    name: 'sips: Request-URI, agent sip: (even with transport=tls): no target may take it',
    candidates: number(fromCarrier, agent({ sipUri: 'sip:agent@agents.example;transport=tls' })),
    source: '192.0.2.9',
    secure: true,
    expect: { outcome: 'unavailable', status: 480 },
  },
  {
    name: 'sips: Request-URI, default runtime sip:',
    candidates: number(fromCarrier, agent({ sipUri: null })),
    source: '192.0.2.9',
    secure: true,
    expect: { outcome: 'unavailable', status: 480 },
  },
  { name: 'IPv4 peer on a dual-stack socket', candidates: number(fromCarrier, agent()), source: '::ffff:192.0.2.9', expect: { outcome: 'route' } },
  { name: 'IPv6 CIDR', candidates: number(trunk(['2001:db8::/32']), agent()), source: '2001:db8::5', expect: { outcome: 'route' } },
  {
    name: 'nobody allowed (unresolvable server)',
    candidates: number(trunk([]), agent()),
    source: '192.0.2.9',
    expect: { outcome: 'forbidden', status: 403 },
  },
  {
    name: 'several records: the linked one wins',
    candidates: [number(fromCarrier, null, 'unlinked'), number(fromCarrier, agent(), 'linked')],
    source: '192.0.2.9',
    expect: { outcome: 'route', numberId: 'linked' },
  },
  {
    name: 'several records: the linked one is not allowed from here, another is',
    candidates: [number(trunk(['203.0.113.1']), agent(), 'linked'), number(fromCarrier, null, 'unlinked')],
    source: '192.0.2.9',
    expect: { outcome: 'unavailable', status: 480, numberId: 'unlinked' },
  },
  {
    name: 'another organization matches the source more closely: no capture',
    candidates: [number(trunk(['192.0.0.0/16'], 'attacker'), agent(), 'broad'), number(trunk(['192.0.2.9'], 'owner'), null, 'exact')],
    source: '192.0.2.9',
    expect: { outcome: 'forbidden', status: 403, numberId: 'broad', capture: true },
  },
  {
    name: 'the linked organization matches as closely as the other: routed',
    candidates: [number(trunk(['192.0.2.0/24'], 'one'), null, 'other'), number(trunk(['192.0.2.0/24'], 'two'), agent(), 'linked')],
    source: '192.0.2.9',
    expect: { outcome: 'route', numberId: 'linked' },
  },
  {
    name: 'the linked organization matches more closely: routed',
    candidates: [number(trunk(['192.0.2.9'], 'owner'), agent(), 'exact'), number(trunk(['192.0.0.0/16'], 'other'), null, 'broad')],
    source: '192.0.2.9',
    expect: { outcome: 'route', numberId: 'exact' },
  },
  {
    name: 'a closer record of the same organization is no capture',
    candidates: [number(trunk(['192.0.0.0/16']), agent(), 'linked'), number(trunk(['192.0.2.9']), null, 'same-org')],
    source: '192.0.2.9',
    expect: { outcome: 'route', numberId: 'linked' },
  },
  {
    name: 'another organization whose trunk does not match at all is no capture',
    candidates: [number(trunk(['192.0.0.0/16'], 'one'), agent(), 'linked'), number(trunk(['203.0.113.0/24'], 'two'), null, 'elsewhere')],
    source: '192.0.2.9',
    expect: { outcome: 'route', numberId: 'linked' },
  },
];

for (const row of table) {
  test(`decideInbound: ${row.name}`, () => {
    const decision = decideInbound(row.candidates, row.source, row.runtime === undefined ? RUNTIME : row.runtime, row.secure);
    assert.equal(decision.outcome, row.expect.outcome);
    if (row.expect.status !== undefined) assert.equal('status' in decision ? decision.status : undefined, row.expect.status);
    if (row.expect.target !== undefined) assert.equal(decision.outcome === 'route' ? decision.target : undefined, row.expect.target);
    if (row.expect.numberId !== undefined) assert.equal('number' in decision ? decision.number.id : undefined, row.expect.numberId);
    assert.equal(decision.outcome === 'forbidden' && decision.capture !== undefined, row.expect.capture === true);
  });
}

test('numberKey keeps leading zeros apart and is exact for 15 digits', () => {
  assert.notEqual(numberKey('+012'), numberKey('+12'));
  assert.equal(numberKey('+999999999999999'), 1999999999999999);
  assert.ok(Number.isSafeInteger(numberKey('+999999999999999')));
});
