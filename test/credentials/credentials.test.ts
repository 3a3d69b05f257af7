import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { testBackends } from '../support/backends.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { UUID, assertProblem, clientFor, missingId, nextMillisecond, type Client } from '../support/api.ts';

/** docs/api.md, SIP credentials: SIP credentials. */
const BASE = '/api/v1/sip-credentials';

const FIELDS = [
  'allowedAddresses',
  'authPasswordSet',
  'authUser',
  'cpsKey',
  'cpsLimit',
  'createdTime',
  'description',
  'domain',
  'health',
  'healthCheck',
  'id',
  'lastUpdateTime',
  'mediaAnchoring',
  'mediaEncryption',
  'orgId',
  'providerId',
  'server',
  'source',
  'transport',
];

const secret = () => `pw-${crypto.randomBytes(12).toString('hex')}`;

for (const backend of await testBackends()) {
  describe(`SIP credentials (${backend})`, () => {
    let server: TestServer;
    let api: Client;

    before(async () => {
      server = await startTestServer(backend);
      api = await clientFor(server, 'default');
    });
    after(() => server.close());

    const storedRow = (id: string) => server.server.ctx.db.selectFrom('sip_credentials').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

    test('POST creates with the documented defaults', async () => {
      const res = await api.req('POST', BASE, { body: { server: 'sip.example.com' } });
      assert.equal(res.status, 201);
      const c = res.body;
      assert.deepEqual(Object.keys(c).sort(), FIELDS);
      assert.match(c.id, UUID);
      assert.equal(c.orgId, api.orgId);
      assert.equal(c.server, 'sip.example.com');
      assert.equal(c.transport, 'udp');
      assert.equal(c.domain, null);
      assert.equal(c.authUser, null);
      assert.equal(c.authPasswordSet, false);
      assert.equal(c.description, null);
      assert.equal(c.cpsLimit, null);
      assert.equal(c.cpsKey, null);
      assert.deepEqual(c.allowedAddresses, []);
      assert.equal(c.source, 'manual');
      assert.equal(c.providerId, null);
      assert.equal(c.healthCheck, false);
      assert.equal(c.health, null, 'no health without healthCheck');
      assert.equal(c.mediaAnchoring, 'auto');
      assert.equal(c.mediaEncryption, 'none');
      assert.equal(c.createdTime, c.lastUpdateTime);
      assert.equal((await storedRow(c.id)).auth_password_enc, null);
    });

    test('POST keeps every field given; GET returns the same object', async () => {
      const providerId = crypto.randomUUID();
      const body = {
        server: 'trunk.example.net:5061',
        transport: 'tls',
        domain: 'example.net',
        authUser: 'alice',
        authPassword: secret(),
        description: 'main trunk',
        cpsLimit: 5,
        cpsKey: 'shared',
        allowedAddresses: ['203.0.113.7', '198.51.100.0/24', '2001:db8::/32'],
        source: 'provider',
        providerId,
        mediaAnchoring: 'off',
        mediaEncryption: 'sdes-srtp',
      };
      const created = await api.req('POST', BASE, { body });
      assert.equal(created.status, 201);
      const { authPassword: _password, ...echoed } = body;
      for (const [k, v] of Object.entries(echoed)) assert.deepEqual(created.body[k], v, k);
      assert.equal(created.body.authPasswordSet, true);
      assert.deepEqual(Object.keys(created.body).sort(), FIELDS);

      const got = await api.req('GET', `${BASE}/${created.body.id}`);
      assert.equal(got.status, 200);
      assert.deepEqual(got.body, created.body);
    });

    test('a PUT that changes nothing (same password included) leaves lastUpdateTime alone', async () => {
      const body = { server: 'same.example.com', authUser: 'u', authPassword: 'p4ss', allowedAddresses: ['192.0.2.1'] };
      const created = (await api.req('POST', BASE, { body })).body;
      await nextMillisecond();
      const again = await api.req('PUT', `${BASE}/${created.id}`, { body });
      assert.equal(again.status, 200);
      assert.equal(again.body.lastUpdateTime, created.lastUpdateTime);
      const withoutPassword = await api.req('PUT', `${BASE}/${created.id}`, { body: { ...body, authPassword: undefined } });
      assert.equal(withoutPassword.body.lastUpdateTime, created.lastUpdateTime);
      const newPassword = await api.req('PUT', `${BASE}/${created.id}`, { body: { ...body, authPassword: 'other' } });
      assert.ok(newPassword.body.lastUpdateTime > created.lastUpdateTime, 'a new password is a change');
    });

    test('healthCheck: true asks for probes; health is unknown until the first one ends, and goes with the flag', async () => {
      const created = await api.req('POST', BASE, { body: { server: '127.0.0.1:9', healthCheck: true } });
      assert.equal(created.status, 201);
      assert.equal(created.body.healthCheck, true);
      assert.deepEqual(created.body.health, { state: 'unknown', lastCheckedTime: null, lastResponse: null, targets: [] });
      const off = await api.req('PUT', `${BASE}/${created.body.id}`, { body: { server: '127.0.0.1:9' } });
      assert.equal(off.body.healthCheck, false);
      assert.equal(off.body.health, null);
    });

    test('GET of a missing id is 404', async () => {
      assertProblem(await api.req('GET', `${BASE}/${missingId()}`), 404, [], /not found/);
    });

    test('list: pagination, totalCount, order by createdTime then id', async () => {
      const org = await clientFor(server);
      const empty = await org.req('GET', BASE);
      assert.equal(empty.status, 200);
      assert.deepEqual(empty.body, { items: [], totalCount: 0, skip: 0, take: 20 });

      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        ids.push((await org.createCredentials({ description: `c${i}` })).id);
        await nextMillisecond();
      }
      const all = await org.req('GET', BASE);
      assert.equal(all.body.totalCount, 5);
      assert.equal(all.body.skip, 0);
      assert.equal(all.body.take, 20);
      assert.deepEqual(
        all.body.items.map((c: any) => c.id),
        ids,
        'creation order',
      );

      const page = await org.req('GET', BASE, { query: { skip: 1, take: 2 } });
      assert.deepEqual(
        page.body.items.map((c: any) => c.id),
        ids.slice(1, 3),
      );
      assert.equal(page.body.totalCount, 5);
      assert.equal(page.body.skip, 1);
      assert.equal(page.body.take, 2);

      const past = await org.req('GET', BASE, { query: { skip: 10, take: 1000 } });
      assert.deepEqual(past.body.items, []);
      assert.equal(past.body.totalCount, 5);

      // Ties on createdTime are broken by id.
      await server.server.ctx.db
        .updateTable('sip_credentials')
        .set({ created_time: '2024-01-01T00:00:00.000Z' })
        .where('org_id', '=', org.orgId)
        .execute();
      const tied = await org.req('GET', BASE);
      assert.deepEqual(
        tied.body.items.map((c: any) => c.id),
        [...ids].sort(),
      );
    });

    test('PUT replaces every field; an absent authPassword keeps it, null clears it', async () => {
      const password = secret();
      const created = await api.createCredentials({
        server: 'a.example.com',
        transport: 'tcp',
        domain: 'a.example.com',
        authUser: 'bob',
        authPassword: password,
        description: 'before',
        cpsLimit: 3,
        cpsKey: 'k',
        allowedAddresses: ['192.0.2.1'],
      });
      await nextMillisecond();

      const replaced = await api.req('PUT', `${BASE}/${created.id}`, { body: { server: 'b.example.com:5080' } });
      assert.equal(replaced.status, 200);
      assert.deepEqual(replaced.body, {
        ...created,
        server: 'b.example.com:5080',
        transport: 'udp',
        domain: null,
        authUser: null,
        authPasswordSet: true,
        description: null,
        cpsLimit: null,
        cpsKey: null,
        allowedAddresses: [],
        lastUpdateTime: replaced.body.lastUpdateTime,
      });
      assert.ok(replaced.body.lastUpdateTime > created.lastUpdateTime, 'lastUpdateTime moves');
      assert.deepEqual((await api.req('GET', `${BASE}/${created.id}`)).body, replaced.body);
      let row = await storedRow(created.id);
      assert.equal(server.server.ctx.secrets.open(row.auth_password_enc!, created.id), password, 'the kept password is intact');

      const newPassword = secret();
      const changed = await api.req('PUT', `${BASE}/${created.id}`, {
        body: { server: 'b.example.com', authPassword: newPassword },
      });
      assert.equal(changed.body.authPasswordSet, true);
      row = await storedRow(created.id);
      assert.equal(server.server.ctx.secrets.open(row.auth_password_enc!, created.id), newPassword);

      const cleared = await api.req('PUT', `${BASE}/${created.id}`, { body: { server: 'b.example.com', authPassword: null } });
      assert.equal(cleared.status, 200);
      assert.equal(cleared.body.authPasswordSet, false);
      assert.equal((await storedRow(created.id)).auth_password_enc, null);
      assert.equal((await api.req('GET', `${BASE}/${created.id}`)).body.authPasswordSet, false);
    });

    test('PUT of a missing id is 404; PUT with a bad body changes nothing', async () => {
      assertProblem(await api.req('PUT', `${BASE}/${missingId()}`, { body: { server: 'x.example.com' } }), 404);
      const created = await api.createCredentials({ description: 'keep me' });
      assertProblem(await api.req('PUT', `${BASE}/${created.id}`, { body: { description: 'no server' } }), 400, ['server']);
      assertProblem(await api.req('PUT', `${BASE}/${created.id}`, { body: { server: 'x.example.com', allowedAddresses: ['nope'] } }), 400, [
        'allowedAddresses',
      ]);
      assertProblem(await api.req('PUT', `${BASE}/${created.id}`, { body: { server: 'x.example.com:0' } }), 400, ['server']);
      assert.deepEqual((await api.req('GET', `${BASE}/${created.id}`)).body, created);
    });

    test('authPassword is never returned, by any route', async () => {
      const org = await clientFor(server);
      const password = secret();
      const created = await org.req('POST', BASE, { body: { server: 'sip.example.com', authUser: 'u', authPassword: password } });
      const id = created.body.id;
      const credentialsId = id;
      const number = await org.createNumber({ phoneNumber: '+15550109999', credentialsId });
      const agent = await org.createAgent();
      await org.link(number.id, agent.agentId);
      const responses = [
        created,
        await org.req('GET', `${BASE}/${id}`),
        await org.req('GET', BASE),
        await org.req('GET', BASE, { query: { take: 1000 } }),
        await org.req('PUT', `${BASE}/${id}`, { body: { server: 'sip.example.com', authUser: 'u' } }),
        await org.req('GET', `${BASE}/${id}/affected-agents`),
        await org.req('GET', `/api/v1/sip-phone-numbers/${number.id}`),
        await org.req('GET', '/api/v1/sip-phone-numbers'),
      ];
      for (const res of responses) {
        assert.ok(res.status < 300);
        const text = JSON.stringify(res.body);
        assert.ok(!text.includes(password), 'the password does not appear in any response');
        assert.ok(!/"authPassword"/.test(text), 'no authPassword field in any response');
      }
    });

    test('the password is stored encrypted, bound to its record', async () => {
      const password = secret();
      const a = await api.createCredentials({ authPassword: password });
      const b = await api.createCredentials({ authPassword: password });
      const rowA = await storedRow(a.id);
      const rowB = await storedRow(b.id);
      assert.ok(!JSON.stringify(rowA).includes(password), 'no plaintext in the row');
      assert.ok(!JSON.stringify(rowA).includes(Buffer.from(password).toString('base64')), 'not merely encoded');
      assert.ok(rowA.auth_password_enc);
      assert.notEqual(rowA.auth_password_enc, rowB.auth_password_enc, 'each sealing is distinct');
      assert.equal(server.server.ctx.secrets.open(rowA.auth_password_enc, a.id), password);
      assert.throws(() => server.server.ctx.secrets.open(rowA.auth_password_enc!, b.id), 'a ciphertext does not open on another record');
    });

    test('server: host or host:port, bracketed IPv6', async () => {
      const valid = [
        'sip.example.com',
        'sip.example.com:5080',
        'SIP.Example.COM',
        'localhost',
        'sip.example.com.',
        '192.0.2.10',
        '192.0.2.10:5060',
        '[2001:db8::1]',
        '[2001:db8::1]:5061',
        '[::1]:1',
        'sip.example.com:65535',
      ];
      for (const value of valid) {
        const res = await api.req('POST', BASE, { body: { server: value } });
        assert.equal(res.status, 201, `${value}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.server, value);
      }
      const invalid = [
        '',
        'sip example.com',
        'sip.example.com:0',
        'sip.example.com:70000',
        'sip.example.com:65536',
        'sip.example.com:',
        'sip.example.com:abc',
        'sip.example.com:5060:5060',
        'sip.example.com:-1',
        '2001:db8::1',
        '[2001:db8::1',
        '[2001:db8::1]5060',
        '[sip.example.com]:5060',
        '[192.0.2.1]',
        'sip://sip.example.com',
        'sip:sip.example.com',
        'user@sip.example.com',
        '-sip.example.com',
        'sip_trunk.example.com',
        'sip..example.com',
        `${'a'.repeat(64)}.example.com`,
      ];
      for (const value of invalid) {
        assertProblem(await api.req('POST', BASE, { body: { server: value } }), 400, ['server']);
      }
    });

    test('allowedAddresses: IPs and CIDRs only, no broader than /16 (IPv4) or /32 (IPv6)', async () => {
      const ok = ['203.0.113.7', '10.1.0.0/16', '192.0.2.0/32', '2001:db8::1', '2001:db8::/32', '::1'];
      const created = await api.req('POST', BASE, { body: { server: 'sip.example.com', allowedAddresses: ok } });
      assert.equal(created.status, 201);
      assert.deepEqual(created.body.allowedAddresses, ok);
      const broad = ['0.0.0.0/0', '10.0.0.0/8', '10.0.0.0/15', '::/0', '2001:db8::/31'];
      for (const bad of [
        '1.2.3.4/33',
        'nope',
        '10.0.0.0/',
        '10.0.0.0/-1',
        '10.0.0.0/8/8',
        '2001:db8::/129',
        '256.1.1.1',
        'sip.example.com',
        '1.2.3.4 ',
        ...broad,
      ]) {
        const res = await api.req('POST', BASE, { body: { server: 'sip.example.com', allowedAddresses: ['10.0.0.1', bad] } });
        assertProblem(res, 400, ['allowedAddresses']);
      }
      const res = await api.req('POST', BASE, { body: { server: 'sip.example.com', allowedAddresses: 'nope' } });
      assertProblem(res, 400, ['allowedAddresses']);
    });

    test('other fields are validated', async () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ transport: 'sctp' }, 'transport'],
        [{ transport: 'UDP' }, 'transport'],
        [{ cpsLimit: 0 }, 'cpsLimit'],
        [{ cpsLimit: 1.5 }, 'cpsLimit'],
        [{ cpsLimit: '5' }, 'cpsLimit'],
        [{ source: 'imported' }, 'source'],
        [{ providerId: 'not-a-uuid' }, 'providerId'],
        [{ domain: '' }, 'domain'],
        [{ authPassword: 12345 }, 'authPassword'],
        [{ authPasswordSet: true }, 'authPasswordSet'],
        [{ healthCheck: 'yes' }, 'healthCheck'],
        [{ mediaAnchoring: 'on' }, 'mediaAnchoring'],
        [{ mediaEncryption: 'zrtp' }, 'mediaEncryption'],
        [{ health: { state: 'up' } }, 'health'],
        [{ id: crypto.randomUUID() }, 'id'],
      ];
      for (const [extra, field] of cases) {
        assertProblem(await api.req('POST', BASE, { body: { server: 'sip.example.com', ...extra } }), 400, [field]);
      }
    });

    test('DELETE: 204, then 404; 404 for a missing id', async () => {
      const created = await api.createCredentials();
      const res = await api.req('DELETE', `${BASE}/${created.id}`);
      assert.equal(res.status, 204);
      assert.equal(res.body, '');
      assertProblem(await api.req('GET', `${BASE}/${created.id}`), 404);
      assertProblem(await api.req('DELETE', `${BASE}/${created.id}`), 404);
      assertProblem(await api.req('DELETE', `${BASE}/${missingId()}`, { query: { force: true } }), 404);
    });

    test('DELETE is 409 while numbers use the credentials; force=true deletes them and their links', async () => {
      const org = await clientFor(server);
      const creds = await org.createCredentials();
      const other = await org.createCredentials();
      const n1 = await org.createNumber({ phoneNumber: '+15550101001', credentialsId: creds.id });
      const n2 = await org.createNumber({ phoneNumber: '+15550101002', credentialsId: creds.id });
      const keep = await org.createNumber({ phoneNumber: '+15550101003', credentialsId: other.id });
      const inbound = await org.createAgent({ name: 'inbound' });
      const outbound = await org.createAgent({ name: 'outbound' });
      const elsewhere = await org.createAgent({ name: 'elsewhere' });
      await org.link(n1.id, inbound.agentId);
      await org.link(n2.id, outbound.agentId, 'replaceOutbound');
      await org.link(keep.id, elsewhere.agentId);
      await org.link(keep.id, elsewhere.agentId, 'replaceOutbound');

      assertProblem(await org.req('DELETE', `${BASE}/${creds.id}`), 409, [], /phone number/);
      assertProblem(await org.req('DELETE', `${BASE}/${creds.id}`, { query: { force: false } }), 409);
      assert.equal((await org.req('GET', `${BASE}/${creds.id}`)).status, 200, 'still there after the 409');
      assert.equal((await org.getNumber(n1.id)).incomingCallsAgentId, inbound.agentId);

      const res = await org.req('DELETE', `${BASE}/${creds.id}`, { query: { force: true } });
      assert.equal(res.status, 204);
      assertProblem(await org.req('GET', `${BASE}/${creds.id}`), 404);
      assertProblem(await org.req('GET', `/api/v1/sip-phone-numbers/${n1.id}`), 404);
      assertProblem(await org.req('GET', `/api/v1/sip-phone-numbers/${n2.id}`), 404);
      assert.equal((await org.getAgent(outbound.agentId)).outboundPhoneNumberId, null, 'the outbound link is cleared');
      assert.equal((await org.getAgent(inbound.agentId)).outboundPhoneNumberId, null);
      const list = await org.req('GET', '/api/v1/sip-phone-numbers');
      assert.deepEqual(
        list.body.items.map((n: any) => n.id),
        [keep.id],
      );
      const untouched = await org.getNumber(keep.id);
      assert.equal(untouched.incomingCallsAgentId, elsewhere.agentId);
      assert.equal((await org.getAgent(elsewhere.agentId)).outboundPhoneNumberId, keep.id);

      // The deleted number is free again: another record of it may take the inbound link.
      const again = await org.createNumber({ phoneNumber: '+15550101001', credentialsId: other.id });
      await org.link(again.id, inbound.agentId);
    });

    test('DELETE racing the creation of a number never answers 500', async () => {
      const org = await clientFor(server);
      for (let i = 0; i < 12; i++) {
        const creds = await org.createCredentials();
        const force = i % 2 === 0;
        const [deleted, created] = await Promise.all([
          org.req('DELETE', `${BASE}/${creds.id}`, { query: { force } }),
          org.req('POST', '/api/v1/sip-phone-numbers', {
            body: { phoneNumber: `+1555010140${String(i).padStart(2, '0')}`, credentialsId: creds.id },
          }),
        ]);
        const what = `force=${force}: delete ${deleted.status}, create ${created.status}`;
        assert.ok([204, 409].includes(deleted.status), what);
        assert.ok([201, 404].includes(created.status), what);
        if (force) assert.equal(deleted.status, 204, what);
        if (created.status === 404) assert.match(created.body.detail, /credentials/i, what);
        if (deleted.status === 409) assert.equal(created.status, 201, what);
        const credsNow = await org.req('GET', `${BASE}/${creds.id}`);
        assert.equal(credsNow.status, deleted.status === 204 ? 404 : 200, what);
        if (created.status === 201) {
          // The number exists exactly when its credentials do.
          assert.equal((await org.req('GET', `/api/v1/sip-phone-numbers/${created.body.id}`)).status, credsNow.status, what);
        }
      }
    });

    test('affected-agents lists each number and its agents', async () => {
      const org = await clientFor(server);
      const creds = await org.createCredentials();
      const unused = await org.createCredentials();
      const both = await org.createAgent({ name: 'both ways' });
      const out = await org.createAgent({ name: 'out only' });
      await org.createAgent({ name: 'bystander' });
      const n1 = await org.createNumber({ phoneNumber: '+1 555 010 2001', credentialsId: creds.id });
      await nextMillisecond();
      const n2 = await org.createNumber({ phoneNumber: '+1 555 010 2002', credentialsId: creds.id });
      await org.link(n1.id, both.agentId);
      await org.link(n1.id, both.agentId, 'replaceOutbound');
      await org.link(n1.id, out.agentId, 'replaceOutbound');

      const res = await org.req('GET', `${BASE}/${creds.id}/affected-agents`);
      assert.equal(res.status, 200);
      assert.deepEqual(Object.keys(res.body).sort(), ['affectedCallsCount', 'phoneNumbers']);
      assert.equal(res.body.affectedCallsCount, 0);
      const byId = new Map(res.body.phoneNumbers.map((p: any) => [p.id, p]));
      assert.equal(byId.size, 2);
      const p1: any = byId.get(n1.id);
      assert.equal(p1.phoneNumber, '+15550102001');
      assert.deepEqual(
        [...p1.affectedAgents].sort((a: any, b: any) => a.agentName.localeCompare(b.agentName)),
        [
          { agentId: both.agentId, agentName: 'both ways', uses: ['inbound', 'outbound'] },
          { agentId: out.agentId, agentName: 'out only', uses: ['outbound'] },
        ],
      );
      assert.deepEqual(byId.get(n2.id), { id: n2.id, phoneNumber: '+15550102002', affectedAgents: [] });

      assert.deepEqual((await org.req('GET', `${BASE}/${unused.id}/affected-agents`)).body, {
        phoneNumbers: [],
        affectedCallsCount: 0,
      });
      assertProblem(await org.req('GET', `${BASE}/${missingId()}/affected-agents`), 404);
    });
  });
}
