import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { createRequest, SipHeaders } from '../../src/sip/message.ts';
import type { MessageSource } from '../../src/sip/transport.ts';
import { decideOutbound, type OutboundRow } from '../../src/outbound/decide.ts';
import { CpsLimiter } from '../../src/outbound/cps-limiter.ts';
import { loadConfig } from '../../src/config.ts';
import { openDatabase } from '../../src/db/connection.ts';
import { migrateToLatest } from '../../src/db/migrations.ts';
import { testBackends } from '../support/backends.ts';
import { freshDatabase, startTestServer, type TestServer } from '../support/server.ts';

/** The outbound decision of docs/outbound.md for a new INVITE from an agent runtime, and the cps limiter (docs/outbound.md), on both backends. */

const RUNTIME: MessageSource = { address: '127.0.0.1', port: 5070, transport: 'udp' } as MessageSource;
const FOREIGN: MessageSource = { address: '198.51.100.7', port: 5070, transport: 'udp' } as MessageSource;

function invite(agentId: string | null, uri = 'sip:15557770001@edge.example'): ReturnType<typeof createRequest> {
  const headers = new SipHeaders([
    ['Via', 'SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKtest'],
    ['From', '"Agent" <sip:agent@127.0.0.1>;tag=abc'],
    ['To', `<${uri}>`],
    ['Call-ID', crypto.randomUUID()],
    ['CSeq', '1 INVITE'],
  ]);
  if (agentId !== null) headers.set('X-Dialplane-Agent-Id', agentId);
  return createRequest({ method: 'INVITE', uri, headers });
}

const ROW: OutboundRow = {
  agentId: 'a',
  orgId: 'o',
  isEnabled: true,
  numberId: 'n',
  phoneNumber: '+15550100000',
  displayName: 'Acme',
  credentialsId: 'c',
  server: 'sip.carrier.example',
  transport: 'udp',
  domain: null,
  authUser: null,
  authPasswordEnc: null,
  cpsLimit: null,
  cpsKey: null,
  media: { mediaAnchoring: 'auto', mediaEncryption: 'none' },
};

describe('decideOutbound (pure)', () => {
  const table: Array<{ name: string; row: OutboundRow | undefined; user: string | null; expect: Record<string, unknown> }> = [
    { name: 'unknown agent', row: undefined, user: '1555', expect: { status: 403, reason: 'Unknown Agent' } },
    { name: 'disabled agent', row: { ...ROW, isEnabled: false }, user: '1555', expect: { status: 403, reason: 'Agent Disabled' } },
    {
      name: 'no outbound number',
      row: { ...ROW, numberId: null, phoneNumber: null, credentialsId: null, server: null },
      user: '1555',
      expect: { status: 403, reason: 'No Outbound Number' },
    },
    { name: 'nothing dialled', row: ROW, user: null, expect: { status: 484 } },
    {
      name: 'udp, default port, caller at the server host',
      row: ROW,
      user: '15557770001',
      expect: {
        target: 'sip:15557770001@sip.carrier.example',
        callerUri: 'sip:+15550100000@sip.carrier.example',
        authUser: '15550100000',
        displayName: 'Acme',
      },
    },
    {
      name: 'tcp, port, domain, authUser',
      row: { ...ROW, server: '192.0.2.1:5080', transport: 'tcp', domain: 'carrier.example', authUser: 'trunk' },
      user: '+4930123',
      expect: { target: 'sip:+4930123@192.0.2.1:5080;transport=tcp', callerUri: 'sip:+15550100000@carrier.example', authUser: 'trunk' },
    },
    {
      name: 'IPv6 server',
      row: { ...ROW, server: '[2001:db8::1]:5062' },
      user: '1555',
      expect: { target: 'sip:1555@[2001:db8::1]:5062', callerUri: 'sip:+15550100000@[2001:db8::1]' },
    },
    {
      name: 'a domain that cannot be a URI host falls back to the server',
      row: { ...ROW, domain: 'not a host' },
      user: '1555',
      expect: { callerUri: 'sip:+15550100000@sip.carrier.example' },
    },
    { name: 'no display name', row: { ...ROW, displayName: null }, user: '1555', expect: { displayName: null } },
  ];
  for (const c of table) {
    test(c.name, () => {
      const decision = decideOutbound(c.row, c.user) as unknown as Record<string, unknown>;
      for (const [key, value] of Object.entries(c.expect)) assert.deepEqual(decision[key], value, key);
    });
  }
});

for (const backend of await testBackends()) {
  describe(`outbound router on ${backend}`, () => {
    let server: TestServer;
    const api = (method: string, path: string, body?: unknown, query?: Record<string, string>) =>
      server.request(method, path, { key: server.defaultKey, body, query });
    const router = () => server.server.edge.outbound!;

    async function credentials(extra: Record<string, unknown> = {}): Promise<string> {
      const res = await api('POST', '/api/v1/sip-credentials', {
        server: '192.0.2.80:5080',
        domain: 'carrier.example',
        authUser: 'trunk',
        authPassword: 'pw',
        ...extra,
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body.id;
    }
    async function number(phoneNumber: string, credentialsId: string, displayName?: string): Promise<string> {
      const res = await api('POST', '/api/v1/sip-phone-numbers', { phoneNumber, credentialsId, displayName });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body.id;
    }
    async function agent(extra: Record<string, unknown> = {}): Promise<string> {
      const res = await api('POST', '/api/v1/agents', { name: 'outbound', ...extra });
      assert.equal(res.status, 201);
      return res.body.agentId;
    }
    const link = (numberId: string, agentId: string) =>
      api('PUT', `/api/v1/sip-phone-numbers/${numberId}/agent-link`, undefined, { agentId, mode: 'replaceOutbound' });

    before(async () => {
      server = await startTestServer(backend, { env: { DIALPLANE_RUNTIME_ADDRESSES: '127.0.0.0/8,::1' } });
    });
    after(() => server.close());

    test('the decision table over the database', async () => {
      const creds = await credentials();
      const linked = await agent();
      const numberId = await number('+1 555 010 3001', creds, 'Acme Support');
      assert.equal((await link(numberId, linked)).status, 200);
      const disabled = await agent({ isEnabled: false });
      assert.equal((await link(numberId, disabled)).status, 200);
      const bare = await agent();
      const table: Array<{ name: string; agent: string | null; source?: MessageSource; expect: Record<string, unknown> }> = [
        { name: 'foreign source', agent: linked, source: FOREIGN, expect: { status: 403, reason: 'Forbidden: not an agent runtime' } },
        { name: 'unknown agent', agent: crypto.randomUUID(), expect: { status: 403, reason: 'Unknown Agent' } },
        { name: 'malformed agent id', agent: 'not-a-uuid', expect: { status: 403, reason: 'Unknown Agent' } },
        { name: 'disabled agent', agent: disabled, expect: { status: 403, reason: 'Agent Disabled' } },
        { name: 'no outbound number', agent: bare, expect: { status: 403, reason: 'No Outbound Number' } },
        {
          name: 'routed',
          agent: linked,
          expect: {
            outcome: 'route',
            target: 'sip:15557770001@192.0.2.80:5080',
            callerUri: 'sip:+15550103001@carrier.example',
            displayName: 'Acme Support',
            authUser: 'trunk',
          },
        },
      ];
      for (const c of table) {
        const decision = (await router().decide(invite(c.agent), c.source ?? RUNTIME)) as unknown as Record<string, unknown>;
        for (const [key, value] of Object.entries(c.expect)) assert.deepEqual(decision[key], value, `${c.name}: ${key}`);
      }
    });

    test('the forward decision: From, P-Asserted-Identity, stripped headers, credentials', async () => {
      const creds = await credentials();
      const agentId = await agent();
      assert.equal((await link(await number('+15550103002', creds, 'Sales'), agentId)).status, 200);
      const decision = await router().route(invite(agentId), RUNTIME);
      assert.equal(decision.action, 'forward');
      if (decision.action !== 'forward') return;
      assert.deepEqual(decision.from, { uri: 'sip:+15550103002@carrier.example', displayName: 'Sales' });
      assert.deepEqual(decision.addHeaders, [['P-Asserted-Identity', '"Sales" <sip:+15550103002@carrier.example>']]);
      assert.ok(
        decision.removeHeaders?.includes('P-Asserted-Identity'),
        'the runtime’s own assertion is replaced (X-Dialplane-* the proxy removes from everything)',
      );
      assert.deepEqual(decision.credentials, { username: 'trunk', password: 'pw' });
    });

    test('credentials without a password: no digest answer', async () => {
      const creds = await credentials({ authPassword: null });
      const agentId = await agent();
      assert.equal((await link(await number('+15550103003', creds), agentId)).status, 200);
      const decision = await router().route(invite(agentId), RUNTIME);
      assert.equal(decision.action === 'forward' && decision.credentials?.password, null);
    });

    test('a changed outbound number (replaceOutbound again, then unlink) applies to the next call', async () => {
      const creds = await credentials();
      const agentId = await agent();
      const first = await number('+15550103004', creds);
      const second = await number('+15550103005', creds);
      assert.equal((await link(first, agentId)).status, 200);
      assert.equal(((await router().decide(invite(agentId), RUNTIME)) as any).callerUri, 'sip:+15550103004@carrier.example');
      assert.equal((await link(second, agentId)).status, 200);
      assert.equal(((await router().decide(invite(agentId), RUNTIME)) as any).callerUri, 'sip:+15550103005@carrier.example');
      const unlinked = await api('DELETE', `/api/v1/sip-phone-numbers/${second}/agent-link`, undefined, { mode: 'replaceOutbound', agentId });
      assert.equal(unlinked.status, 200);
      assert.equal(((await router().decide(invite(agentId), RUNTIME)) as any).reason, 'No Outbound Number');
    });

    test('past cpsLimit: 503 with Retry-After: 1; credentials sharing a cpsKey share the budget', async () => {
      const a = await credentials({ cpsLimit: 3, cpsKey: `trunk-${backend}` });
      const b = await credentials({ cpsLimit: 3, cpsKey: `trunk-${backend}` });
      const agentA = await agent();
      const agentB = await agent();
      assert.equal((await link(await number('+15550103006', a), agentA)).status, 200);
      assert.equal((await link(await number('+15550103007', b), agentB)).status, 200);
      // Start right after a window boundary so that all six calls fall into one window.
      await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 20));
      const decisions = await Promise.all([agentA, agentB, agentA, agentB, agentA, agentB].map((id) => router().route(invite(id), RUNTIME)));
      const rejected = decisions.filter((d) => d.action === 'reject');
      assert.equal(decisions.length - rejected.length, 3);
      for (const d of rejected) {
        assert.equal(d.action === 'reject' && d.status, 503);
        assert.deepEqual(d.action === 'reject' && d.headers, [['Retry-After', '1']]);
      }
    });
  });

  describe(`cps limiter on ${backend}`, () => {
    test('one window admits at most the limit, across two connections to one database (as two instances have)', async () => {
      const database = await freshDatabase(backend);
      const config = loadConfig(database.env).database;
      const [one, two] = [openDatabase(config), openDatabase(config)];
      try {
        await migrateToLatest(one);
        let now = 1_700_000_000_000;
        const clock = () => now;
        const limiters = [new CpsLimiter(one.db, clock), new CpsLimiter(two.db, clock)];
        const budget = { credentialsId: crypto.randomUUID(), orgId: 'o', cpsKey: null, limit: 5 };
        const verdicts = await Promise.all(Array.from({ length: 20 }, (_, i) => limiters[i % 2].take(budget)));
        assert.equal(verdicts.filter((v) => v.allowed).length, 5);
        assert.deepEqual(
          verdicts.map((v) => v.count).sort((x, y) => x - y),
          Array.from({ length: 20 }, (_, i) => i + 1),
          'atomic counting',
        );
        now += 1000;
        assert.equal((await limiters[0].take(budget)).allowed, true, 'the next window starts afresh');
        // A separate budget is not affected.
        assert.equal((await limiters[1].take({ ...budget, credentialsId: crypto.randomUUID() })).allowed, true);
        // Old windows are pruned.
        now += 60_000;
        await limiters[0].take(budget);
        await new Promise((resolve) => setTimeout(resolve, 200));
        const left = await one.db.selectFrom('cps_counters').select('window_start').execute();
        assert.ok(
          left.every((row) => Number(row.window_start) >= Math.floor(now / 1000) - 10),
          'old windows pruned',
        );
      } finally {
        await two.close();
        await one.close();
        await database.drop();
      }
    });
  });
}
