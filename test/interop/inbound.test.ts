import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../support/server.ts';
import { freePort, runSipp, settle, sippAvailable, type SippTransport, waitFor } from '../support/sipp.ts';

/**
 * docs/sip-edge.md over real SIP: sipp plays the carrier and sipp plays the agent runtime, with the
 * edge between them, on UDP and on TCP.
 */
const hasSipp = sippAvailable();

for (const transport of ['udp', 'tcp'] as SippTransport[]) {
  describe(`inbound calls over ${transport}`, { skip: !hasSipp && 'sipp not installed' }, () => {
    let server: TestServer;
    let edge: string;
    let key: string;
    let credentialsId: string;
    const suffix = transport === 'tcp' ? ';transport=tcp' : '';

    const api = (method: string, path: string, body?: unknown, query?: Record<string, string>) => server.request(method, path, { key, body, query });

    async function agentAt(port: number, extra: Record<string, unknown> = {}): Promise<string> {
      const agent = await api('POST', '/api/v1/agents', { name: `agent ${port}`, sipUri: `sip:agent@127.0.0.1:${port}${suffix}`, ...extra });
      assert.equal(agent.status, 201);
      return agent.body.agentId;
    }

    async function number(phoneNumber: string, agentId?: string, credentials = credentialsId): Promise<string> {
      const created = await api('POST', '/api/v1/sip-phone-numbers', { phoneNumber, credentialsId: credentials });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      if (agentId) {
        const linked = await api('PUT', `/api/v1/sip-phone-numbers/${created.body.id}/agent-link`, undefined, { agentId });
        assert.equal(linked.status, 200);
      }
      return created.body.id;
    }

    async function records(query: Record<string, string>, count: number) {
      return waitFor(async () => {
        const page = await api('GET', '/api/v1/call-records', undefined, { ...query, take: '1000' });
        return page.body.totalCount >= count ? (page.body.items as any[]) : undefined;
      }, `${count} call records`);
    }

    before(async () => {
      server = await startTestServer('sqlite', { env: { DIALPLANE_SIP_HOST: '127.0.0.1', DIALPLANE_SIP_T1_MS: '100' } });
      edge = `127.0.0.1:${server.server.sipPort}`;
      key = server.defaultKey;
      const creds = await api('POST', '/api/v1/sip-credentials', { server: '127.0.0.1' });
      credentialsId = creds.body.id;
    });
    after(() => server.close());

    test('a full call reaches the linked agent with the three X-Dialplane headers', async () => {
      const agentPort = await freePort();
      const agentId = await agentAt(agentPort);
      const numberId = await number('+1 555 010 1001', agentId);
      const agent = runSipp({ scenario: 'agent-answer.xml', transport, localPort: agentPort, calls: 1 });
      await settle();
      const caller = runSipp({ scenario: 'caller-call.xml', transport, localPort: await freePort(), remote: edge, service: '15550101001', calls: 1 });
      const [c, a] = await Promise.all([caller.done, agent.done]);
      assert.equal(c.code, 0, c.output);
      assert.equal(a.code, 0, a.output);
      assert.match(a.log, new RegExp(`agent\\s+${agentId}`));
      assert.match(a.log, new RegExp(`org\\s+${server.defaultOrgId}`));
      assert.match(a.log, new RegExp(`number\\s+${numberId}`));
      const [record] = await records({ phoneNumberId: numberId }, 1);
      assert.equal(record.outcome, 'answered');
      assert.equal(record.statusCode, 200);
      assert.equal(record.agentId, agentId);
      assert.equal(record.direction, 'inbound');
    });

    test('an unknown number gets 404', async () => {
      const caller = runSipp({
        scenario: 'caller-rejected.xml',
        transport,
        localPort: await freePort(),
        remote: edge,
        service: '+15559999999',
        calls: 1,
        fill: { expected: '404' },
      });
      const result = await caller.done;
      assert.equal(result.code, 0, result.output);
    });

    test('an unlinked number gets 480, and so does a disabled agent', async () => {
      const unlinked = await number('+15550101002');
      const disabledAgent = await agentAt(await freePort(), { isEnabled: false });
      const disabled = await number('+15550101003', disabledAgent);
      for (const service of ['15550101002', '15550101003']) {
        const caller = runSipp({
          scenario: 'caller-rejected.xml',
          transport,
          localPort: await freePort(),
          remote: edge,
          service,
          calls: 1,
          fill: { expected: '480' },
        });
        const result = await caller.done;
        assert.equal(result.code, 0, `${service}: ${result.output}`);
      }
      assert.equal((await records({ phoneNumberId: unlinked, outcome: 'unavailable' }, 1)).length, 1);
      assert.equal((await records({ phoneNumberId: disabled, outcome: 'unavailable' }, 1)).length, 1);
    });

    test('a source the credentials do not allow gets 403', async () => {
      const foreign = await api('POST', '/api/v1/sip-credentials', { server: 'sip.example.com', allowedAddresses: ['192.0.2.0/24'] });
      const agentId = await agentAt(await freePort());
      const numberId = await number('+15550101004', agentId, foreign.body.id);
      const caller = runSipp({
        scenario: 'caller-rejected.xml',
        transport,
        localPort: await freePort(),
        remote: edge,
        service: '+15550101004',
        calls: 1,
        fill: { expected: '403' },
      });
      const result = await caller.done;
      assert.equal(result.code, 0, result.output);
      assert.equal((await records({ phoneNumberId: numberId, outcome: 'forbidden' }, 1)).length, 1);
    });

    test('CANCEL before the agent answers: 487 to the caller, the agent sees the CANCEL', async () => {
      const agentPort = await freePort();
      const agentId = await agentAt(agentPort);
      const numberId = await number('+15550101005', agentId);
      const agent = runSipp({ scenario: 'agent-ring-cancelled.xml', transport, localPort: agentPort, calls: 1 });
      await settle();
      const caller = runSipp({
        scenario: 'caller-cancel.xml',
        transport,
        localPort: await freePort(),
        remote: edge,
        service: '15550101005',
        calls: 1,
      });
      const [c, a] = await Promise.all([caller.done, agent.done]);
      assert.equal(c.code, 0, c.output);
      assert.equal(a.code, 0, a.output);
      const [record] = await records({ phoneNumberId: numberId }, 1);
      assert.equal(record.outcome, 'cancelled');
      assert.equal(record.statusCode, 487);
    });

    test('the edge counts INVITEs by outcome, times its decisions and shows active transactions', async () => {
      const metrics = await server.request('GET', '/metrics');
      assert.match(metrics.body, /dialplane_sip_invites_total\{direction="inbound",outcome="answered"\} [1-9]/);
      assert.match(metrics.body, /dialplane_sip_invites_total\{direction="inbound",outcome="not_found"\} [1-9]/);
      assert.match(metrics.body, /dialplane_sip_routing_decision_seconds_count [1-9]/);
      assert.match(metrics.body, /dialplane_sip_active_transactions\{side="server"\} \d+/);
    });

    test('a relink during traffic sends the next calls to the new agent', async () => {
      const [portA, portB] = [await freePort(), await freePort()];
      const [agentA, agentB] = [await agentAt(portA), await agentAt(portB)];
      const numberId = await number('+15550101006', agentA);
      const calls = 30;
      const a = runSipp({ scenario: 'agent-answer.xml', transport, localPort: portA, calls, timeoutSeconds: 30 });
      const b = runSipp({ scenario: 'agent-answer.xml', transport, localPort: portB, calls, timeoutSeconds: 30 });
      await settle();
      const caller = runSipp({
        scenario: 'caller-call.xml',
        transport,
        localPort: await freePort(),
        remote: edge,
        service: '+15550101006',
        calls,
        rate: 10,
        timeoutSeconds: 30,
      });
      await records({ phoneNumberId: numberId }, 5);
      const relinkSent = new Date().toISOString();
      const relinked = await api('PUT', `/api/v1/sip-phone-numbers/${numberId}/agent-link`, undefined, { agentId: agentB });
      assert.equal(relinked.status, 200);
      const relinkAnswered = new Date().toISOString();
      const c = await caller.done;
      a.stop();
      b.stop();
      await Promise.all([a.done, b.done]);
      assert.equal(c.code, 0, c.output);
      const all = await records({ phoneNumberId: numberId }, calls);
      assert.equal(all.length, calls);
      assert.ok(all.every((r) => r.outcome === 'answered'));
      const before = all.filter((r) => r.startedTime < relinkSent);
      const afterRelink = all.filter((r) => r.startedTime > relinkAnswered);
      assert.ok(before.length >= 5 && afterRelink.length >= 5, `calls on both sides of the relink (${before.length}, ${afterRelink.length})`);
      assert.ok(
        before.every((r) => r.agentId === agentA),
        'calls before the relink went to the first agent',
      );
      assert.ok(
        afterRelink.every((r) => r.agentId === agentB),
        'every call after the relink went to the new agent',
      );
    });
  });
}
