import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { assertProblem, Client, clientFor, eventually, sleep } from '../support/api.ts';
import { testBackends } from '../support/backends.ts';
import { spawnServer } from '../support/process.ts';
import { freshDatabase, request, startTestServer, type TestServer } from '../support/server.ts';

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
  event: any;
}

/**
 * A real HTTP receiver. `answer` decides each request: a status, or 'hang' (never answers).
 * Every request is kept, in arrival order, with its headers and raw body.
 */
async function startReceiver(answer: (received: Received, index: number) => number | 'hang' = () => 204) {
  const received: Received[] = [];
  const hanging: http.ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const entry = { headers: req.headers, body, event: JSON.parse(body) };
      received.push(entry);
      const decision = answer(entry, received.length - 1);
      if (decision === 'hang') hanging.push(res);
      else res.writeHead(decision).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return {
    url,
    received,
    of: (type: string) => received.filter((r) => r.event.type === type),
    close: async () => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Verifies a request with the npm `standardwebhooks` package, an implementation independent of ours. */
function verify(secret: string, received: Received): unknown {
  return new StandardWebhook(secret).verify(received.body, {
    'webhook-id': String(received.headers['webhook-id']),
    'webhook-timestamp': String(received.headers['webhook-timestamp']),
    'webhook-signature': String(received.headers['webhook-signature']),
  });
}

const deliveries = async (c: Client, id: string) => (await c.req('GET', `/api/v1/webhooks/${id}/deliveries`, { query: { take: 100 } })).body;

async function createWebhookOn(c: Client, body: Record<string, unknown>) {
  const res = await c.req('POST', '/api/v1/webhooks', { body });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

const FAST = {
  DIALPLANE_WEBHOOK_RETRY_BASE_SECONDS: '0.05',
  DIALPLANE_WEBHOOK_RETRY_CAP_SECONDS: '0.2',
  DIALPLANE_WEBHOOK_POLL_SECONDS: '0.05',
  DIALPLANE_WEBHOOK_TIMEOUT_SECONDS: '0.5',
};

for (const backend of await testBackends()) {
  describe(`webhooks (${backend})`, () => {
    let server: TestServer;
    let client: Client;

    before(async () => {
      server = await startTestServer(backend, { env: FAST });
      client = await clientFor(server);
    });
    after(() => server.close());

    test('endpoints: the secret is shown once; bad URLs are refused; other organizations see nothing', async () => {
      const receiver = await startReceiver();
      try {
        const created = await createWebhookOn(client, { url: receiver.url, description: 'crm' });
        assert.match(created.secret, /^whsec_[A-Za-z0-9+/]+=*$/);
        assert.equal(created.eventTypes, null);
        assert.equal(created.enabled, true);
        const got = await client.req('GET', `/api/v1/webhooks/${created.id}`);
        assert.equal(got.status, 200);
        assert.equal(got.body.secret, undefined, 'the secret is never shown again');
        assert.ok(!JSON.stringify((await client.req('GET', '/api/v1/webhooks')).body).includes(created.secret));

        for (const url of ['ftp://127.0.0.1/x', 'http://user:pw@127.0.0.1/x', 'not a url']) {
          assertProblem(await client.req('POST', '/api/v1/webhooks', { body: { url } }), 400, ['url']);
        }
        assertProblem(await client.req('POST', '/api/v1/webhooks', { body: { url: receiver.url, eventTypes: ['no.such'] } }), 400);

        const other = await clientFor(server);
        assertProblem(await other.req('GET', `/api/v1/webhooks/${created.id}`), 404);
        assertProblem(await other.req('GET', `/api/v1/webhooks/${created.id}/deliveries`), 404);
        assertProblem(await other.req('DELETE', `/api/v1/webhooks/${created.id}`), 404);
        assert.deepEqual((await other.req('GET', '/api/v1/webhooks')).body.items, []);
        assert.equal((await client.req('DELETE', `/api/v1/webhooks/${created.id}`)).status, 204);
      } finally {
        await receiver.close();
      }
    });

    test('events arrive signed (verified by standardwebhooks), in order per resource, each once; a refused change sends nothing', async () => {
      const org = await clientFor(server);
      const receiver = await startReceiver();
      const otherOrg = await clientFor(server);
      const otherReceiver = await startReceiver();
      try {
        const hook = await createWebhookOn(org, { url: receiver.url });
        await createWebhookOn(otherOrg, { url: otherReceiver.url });
        const creds = await org.createCredentials();
        const [first, second] = [await org.createAgent({ name: 'first' }), await org.createAgent({ name: 'second' })];
        const number = await org.createNumber({ phoneNumber: '+15550142001', credentialsId: creds.id });
        await org.link(number.id, first.agentId);
        await org.link(number.id, second.agentId);
        await org.link(number.id, second.agentId, 'replaceOutbound');
        assert.equal((await org.unlinkRaw(number.id, { mode: 'inbound' })).status, 200);

        // The same number in another organization cannot be linked: 409, and no event.
        const otherCreds = await otherOrg.createCredentials();
        const otherAgent = await otherOrg.createAgent();
        const otherNumber = await otherOrg.createNumber({ phoneNumber: '+15550142001', credentialsId: otherCreds.id });
        await org.link(number.id, first.agentId);
        assertProblem(await otherOrg.linkRaw(otherNumber.id, { agentId: otherAgent.agentId, mode: 'inbound' }), 409);

        await eventually('all events delivered', async () => receiver.received.length >= 9, 5000);
        await sleep(200);
        const types = receiver.received.map((r) => r.event.type);
        assert.deepEqual(
          types.filter((t) => t.startsWith('agent.')),
          ['agent.created', 'agent.created'],
        );
        const numberEvents = receiver.received.filter((r) => r.event.data.phoneNumber?.id === number.id);
        assert.deepEqual(
          numberEvents.map(
            (r) => `${r.event.type}:${r.event.data.mode ?? ''}:${r.event.data.agentIdBefore ?? ''}>${r.event.data.agentIdAfter ?? ''}`,
          ),
          [
            'phone_number.created::>',
            `phone_number.linked:inbound:>${first.agentId}`,
            `phone_number.linked:inbound:${first.agentId}>${second.agentId}`,
            `phone_number.linked:outbound:>${second.agentId}`,
            `phone_number.unlinked:inbound:${second.agentId}>`,
            `phone_number.linked:inbound:>${first.agentId}`,
          ],
          'one resource’s events in the order of their changes',
        );
        for (const r of receiver.received) {
          const verified = verify(hook.secret, r) as any;
          assert.equal(verified.id, r.headers['webhook-id']);
          assert.equal(verified.orgId, org.orgId);
          assert.match(verified.time, /Z$/);
        }
        assert.equal(new Set(receiver.received.map((r) => r.headers['webhook-id'])).size, receiver.received.length, 'each event once');
        assert.throws(() => verify('whsec_' + Buffer.alloc(24, 1).toString('base64'), receiver.received[0]), 'another secret does not verify');

        // The other organization's endpoint got only its own events, none for the refused link.
        assert.ok(otherReceiver.received.every((r) => r.event.orgId === otherOrg.orgId));
        assert.equal(otherReceiver.of('phone_number.linked').length, 0);
        assert.ok(receiver.received.every((r) => r.event.orgId === org.orgId));

        // Each outcome is written just after its receiver answered.
        await eventually('every outcome recorded', async () => (await deliveries(org, hook.id)).items.every((d: any) => d.status === 'delivered'));
        const listed = await deliveries(org, hook.id);
        assert.equal(listed.totalCount, receiver.received.length);
        assert.ok(listed.items.every((d: any) => d.status === 'delivered' && d.attempts.length === 1 && d.attempts[0].responseStatus === 204));
      } finally {
        await receiver.close();
        await otherReceiver.close();
      }
    });

    test('a receiver that fails, then answers: retried with the same webhook-id; a hanging one times out', async () => {
      const org = await clientFor(server);
      let hangs = true;
      const failing = await startReceiver((_r, i) => (i < 2 ? 500 : 200));
      const hanging = await startReceiver(() => (hangs ? 'hang' : 200));
      try {
        const failingHook = await createWebhookOn(org, { url: failing.url, eventTypes: ['agent.created'] });
        const hangingHook = await createWebhookOn(org, { url: hanging.url, eventTypes: ['agent.created'] });
        await org.createAgent({ name: 'retried' });
        await eventually('delivered on the third attempt', async () => failing.received.length >= 3, 5000);
        assert.equal(new Set(failing.received.map((r) => r.headers['webhook-id'])).size, 1, 'one webhook-id across retries');
        await eventually('recorded', async () => (await deliveries(org, failingHook.id)).items[0]?.status === 'delivered');
        const [delivery] = (await deliveries(org, failingHook.id)).items;
        assert.deepEqual(
          delivery.attempts.map((a: any) => a.responseStatus),
          [500, 500, 200],
        );
        assert.equal(delivery.attempts[0].error, 'HTTP 500');

        await eventually(
          'the hanging receiver timed out',
          async () => ((await deliveries(org, hangingHook.id)).items[0]?.attempts.length ?? 0) >= 1,
          5000,
        );
        const [timedOut] = (await deliveries(org, hangingHook.id)).items;
        assert.equal(timedOut.attempts[0].responseStatus, null);
        assert.match(timedOut.attempts[0].error, /no response within 500 ms/);
        assert.ok(timedOut.attempts[0].durationMs >= 450);
        hangs = false;
        await eventually('then delivered', async () => (await deliveries(org, hangingHook.id)).items[0]?.status === 'delivered', 5000);
      } finally {
        await failing.close();
        await hanging.close();
      }
    });

    test('rotation: during the grace period both secrets verify; then only the new one', async () => {
      const org = await clientFor(server);
      const receiver = await startReceiver();
      try {
        const hook = await createWebhookOn(org, { url: receiver.url, eventTypes: ['agent.created'] });
        const rotated = await org.req('POST', `/api/v1/webhooks/${hook.id}/rotate-secret`, { body: { graceSeconds: 60 } });
        assert.equal(rotated.status, 200);
        assert.notEqual(rotated.body.secret, hook.secret);
        assert.ok(rotated.body.previousSecretValidUntil);
        await org.createAgent();
        await eventually('delivered', async () => receiver.received.length === 1);
        verify(hook.secret, receiver.received[0]);
        verify(rotated.body.secret, receiver.received[0]);

        const again = await org.req('POST', `/api/v1/webhooks/${hook.id}/rotate-secret`, { body: { graceSeconds: 0 } });
        await org.createAgent();
        await eventually('delivered', async () => receiver.received.length === 2);
        verify(again.body.secret, receiver.received[1]);
        assert.throws(() => verify(rotated.body.secret, receiver.received[1]));
      } finally {
        await receiver.close();
      }
    });
  });

  describe(`webhooks: where they may go (${backend})`, () => {
    test('the target rules apply to the URL and to what its name resolves to; redirects are not followed; metrics count', async () => {
      const server = await startTestServer(backend, { env: { ...FAST, DIALPLANE_PRIVATE_TARGETS: 'deny' } });
      const redirecting = await startReceiver(() => 302);
      try {
        const org = await clientFor(server);
        assertProblem(await org.req('POST', '/api/v1/webhooks', { body: { url: 'http://127.0.0.1:8080/x' } }), 400, ['url'], /private or loopback/);
        assertProblem(await org.req('POST', '/api/v1/webhooks', { body: { url: 'http://[::1]/x' } }), 400, ['url']);
        // A name is checked when it is resolved: localhost is loopback.
        const named = (await org.req('POST', '/api/v1/webhooks', { body: { url: 'http://localhost:9/x', eventTypes: ['agent.created'] } })).body;
        await org.createAgent();
        await eventually('refused at resolution', async () => (await deliveries(org, named.id)).items[0]?.attempts.length >= 1, 5000);
        const [refused] = (await deliveries(org, named.id)).items;
        assert.match(refused.attempts[0].error, /localhost resolves to a private or loopback address/);
        assert.equal(refused.attempts[0].responseStatus, null);
        const metrics = (await server.request('GET', '/metrics')).body as string;
        assert.match(metrics, /dialplane_events_written_total\{type="agent.created"\} [1-9]/);
        assert.match(metrics, /dialplane_webhook_attempts_total\{result="retry"\} [1-9]/);
      } finally {
        await redirecting.close();
        await server.close();
      }
      const open = await startTestServer(backend, { env: FAST });
      const receiver = await startReceiver(() => 302);
      try {
        const org = await clientFor(open);
        const hook = (await org.req('POST', '/api/v1/webhooks', { body: { url: receiver.url, eventTypes: ['agent.created'] } })).body;
        await org.createAgent();
        await eventually('attempted', async () => (await deliveries(org, hook.id)).items[0]?.attempts.length >= 1, 5000);
        const [redirected] = (await deliveries(org, hook.id)).items;
        assert.equal(redirected.attempts[0].responseStatus, 302);
        assert.match(redirected.attempts[0].error, /redirect to .* not followed/);
        assert.equal(redirected.status, 'pending', 'a redirect is a failed attempt, retried');
      } finally {
        await receiver.close();
        await open.close();
      }
    });
  });

  describe(`webhooks: giving up, disabling, re-sending (${backend})`, () => {
    test('an event not delivered within the retry period fails; the endpoint is disabled and says so; a re-send delivers it', async () => {
      const server = await startTestServer(backend, {
        env: { ...FAST, DIALPLANE_WEBHOOK_RETRY_HOURS: String(0.6 / 3600), DIALPLANE_WEBHOOK_DISABLE_AFTER_HOURS: String(0.3 / 3600) },
      });
      let up = false;
      const receiver = await startReceiver(() => (up ? 200 : 503));
      try {
        const org = await clientFor(server);
        const hook = (await org.req('POST', '/api/v1/webhooks', { body: { url: receiver.url, eventTypes: ['agent.created'] } })).body;
        await org.createAgent();
        await eventually('disabled', async () => (await org.req('GET', `/api/v1/webhooks/${hook.id}`)).body.enabled === false, 5000);
        const disabled = (await org.req('GET', `/api/v1/webhooks/${hook.id}`)).body;
        assert.match(disabled.disabledReason, /every delivery attempt since .* failed \(last: HTTP 503\)/);
        assert.ok(disabled.failingSince);
        // Re-enabled, the pending event is past its retry period: it fails without being sent again.
        await org.req('PUT', `/api/v1/webhooks/${hook.id}`, { body: { url: receiver.url, eventTypes: ['agent.created'] } });
        await eventually(
          'failed',
          async () => (await org.req('GET', `/api/v1/webhooks/${hook.id}/deliveries`)).body.items[0]?.status === 'failed',
          5000,
        );
        const [failed] = (await org.req('GET', `/api/v1/webhooks/${hook.id}/deliveries`, { query: { status: 'failed' } })).body.items;
        assert.ok(failed.attempts.length >= 2);

        up = true;
        const count = receiver.received.length;
        const resent = await org.req('POST', `/api/v1/webhooks/${hook.id}/deliveries/${failed.eventId}/resend`);
        assert.equal(resent.status, 202);
        await eventually(
          're-sent and delivered',
          async () => (await org.req('GET', `/api/v1/webhooks/${hook.id}/deliveries`)).body.items[0]?.status === 'delivered',
          5000,
        );
        assert.equal(receiver.received.at(-1)!.headers['webhook-id'], failed.eventId);
        assert.equal(receiver.received.length, count + 1);
        assertProblem(await org.req('POST', `/api/v1/webhooks/${hook.id}/deliveries/evt_nothing/resend`), 404);
      } finally {
        await receiver.close();
        await server.close();
      }
    });
  });

  describe(`webhooks: an instance killed with kill -9 mid-delivery (${backend})`, () => {
    test('another instance (or the restarted one) delivers the event, with the same webhook-id', { timeout: 60000 }, async () => {
      const database = await freshDatabase(backend);
      let answered = false;
      // The first request is never answered: the instance sending it dies meanwhile.
      const receiver = await startReceiver((_r, i) => (i === 0 ? 'hang' : ((answered = true), 200)));
      const env = { ...database.env, ...FAST, DIALPLANE_WEBHOOK_TIMEOUT_SECONDS: '1' };
      const first = await spawnServer(env);
      let second: Awaited<ReturnType<typeof spawnServer>> | null = null;
      try {
        const key = /\b(dpk_[A-Za-z0-9_-]+)/.exec(first.output())![1];
        // PostgreSQL: a second instance runs beside the first; SQLite: one file, one instance, restarted.
        if (backend === 'postgres') second = await spawnServer(env);
        const hook = (await request(first.url, 'POST', '/api/v1/webhooks', { key, body: { url: receiver.url, eventTypes: ['agent.created'] } })).body;
        await request(first.url, 'POST', '/api/v1/agents', { key, body: { name: 'survives' } });
        await eventually('the first attempt is in flight', async () => receiver.received.length === 1, 5000);
        // Whichever instance sent it, kill that one (on PostgreSQL the other may have claimed it).
        first.child.kill('SIGKILL');
        await first.exited;
        second ??= await spawnServer(env);
        await eventually('delivered by the surviving instance', async () => answered, 15000);
        assert.equal(receiver.received[1].headers['webhook-id'], receiver.received[0].headers['webhook-id']);
        // The receiver answered; the instance writes the outcome just after.
        await eventually(
          'the delivery recorded as delivered',
          async () => (await request(second!.url, 'GET', `/api/v1/webhooks/${hook.id}/deliveries`, { key })).body.items[0]?.status === 'delivered',
          5000,
        );
      } finally {
        first.child.kill('SIGKILL');
        second?.child.kill('SIGKILL');
        await receiver.close();
        await database.drop();
      }
    });
  });

  if (backend === 'postgres') {
    describe('webhooks: two instances on PostgreSQL', () => {
      test('each event is delivered once, by one instance or the other, in order per resource', { timeout: 60000 }, async () => {
        const database = await freshDatabase('postgres');
        const receiver = await startReceiver();
        const first = await startTestServer('postgres', { database, env: FAST });
        const second = await startTestServer('postgres', { database, env: FAST });
        try {
          const org = new Client(first, first.defaultKey, first.defaultOrgId);
          await createWebhookOn(org, { url: receiver.url, eventTypes: ['phone_number.linked'] });
          const creds = await org.createCredentials();
          const agents = [await org.createAgent({ name: 'a' }), await org.createAgent({ name: 'b' })];
          const numbers = [];
          for (let i = 0; i < 10; i++)
            numbers.push(await org.createNumber({ phoneNumber: `+1555014${String(i).padStart(4, '0')}`, credentialsId: creds.id }));
          // Links through both instances: each instance wakes its own dispatcher, both poll.
          let links = 0;
          for (let round = 0; round < 6; round++) {
            await Promise.all(
              numbers.map(async (number, i) => {
                const via = new Client(i % 2 === 0 ? first : second, first.defaultKey, first.defaultOrgId);
                await via.link(number.id, agents[(round + i) % 2].agentId);
                links++;
              }),
            );
          }
          await eventually('all delivered', async () => receiver.received.length >= links, 15000);
          await sleep(500);
          const ids = receiver.received.map((r) => r.headers['webhook-id']);
          assert.equal(ids.length, links, 'no event delivered twice');
          assert.equal(new Set(ids).size, links);
          for (const number of numbers) {
            const afters = receiver.received.filter((r) => r.event.data.phoneNumber.id === number.id).map((r) => r.event.data.agentIdAfter);
            const befores = receiver.received.filter((r) => r.event.data.phoneNumber.id === number.id).map((r) => r.event.data.agentIdBefore);
            // In order: each event's agent before is the previous event's agent after.
            assert.deepEqual(befores.slice(1), afters.slice(0, -1), `events of ${number.phoneNumber} in order`);
          }
        } finally {
          await second.close();
          await first.close();
          await receiver.close();
          await database.drop();
        }
      });
    });
  }
}
