import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertProblem, clientFor, eventually, type Client } from '../support/api.ts';
import { testBackends } from '../support/backends.ts';
import { freePort } from '../support/sipp.ts';
import { inDialogText, inviteText, newCall, replyText, request, response, UdpPeer, calleeRequestText } from '../support/sip-peers.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

interface StreamFrame {
  id: string;
  event: string;
  data: any;
}

/** A Server-Sent Events reader over fetch: frames as they arrive, and close(). */
async function openStream(server: TestServer, key: string, options: { types?: string; lastEventId?: string } = {}) {
  const url = new URL('/api/v1/events', server.url);
  if (options.types) url.searchParams.set('types', options.types);
  const controller = new AbortController();
  const headers: Record<string, string> = { authorization: `Bearer ${key}` };
  if (options.lastEventId) headers['last-event-id'] = options.lastEventId;
  const res = await fetch(url, { headers, signal: controller.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const frames: StreamFrame[] = [];
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  const pump = (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields = Object.fromEntries(
            block
              .split('\n')
              .filter((line) => !line.startsWith(':'))
              .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)]),
          );
          if (fields.data) frames.push({ id: fields.id, event: fields.event, data: JSON.parse(fields.data) });
        }
      }
    } catch {
      // aborted
    }
  })();
  return {
    frames,
    close: async () => {
      controller.abort();
      await pump;
    },
  };
}

for (const backend of await testBackends()) {
  describe(`event stream (${backend})`, () => {
    let server: TestServer;
    let org: Client;
    let other: Client;

    before(async () => {
      server = await startTestServer(backend);
      org = await clientFor(server);
      other = await clientFor(server);
    });
    after(() => server.close());

    test('carries the organization’s events only, filtered by type, and resumes after Last-Event-ID', async () => {
      const all = await openStream(server, org.key);
      const linksOnly = await openStream(server, org.key, { types: 'phone_number.linked,registration.state_changed' });
      const others = await openStream(server, other.key);
      try {
        const creds = await org.createCredentials();
        const agent = await org.createAgent();
        const number = await org.createNumber({ phoneNumber: '+15550143001', credentialsId: creds.id });
        await org.link(number.id, agent.agentId);
        await other.createAgent({ name: 'elsewhere' });
        await eventually('streamed', async () => all.frames.length >= 4 && linksOnly.frames.length >= 1 && others.frames.length >= 1, 5000);
        assert.deepEqual(
          all.frames.map((f) => f.event),
          ['sip_credentials.created', 'agent.created', 'phone_number.created', 'phone_number.linked'],
        );
        assert.ok(all.frames.every((f) => f.data.orgId === org.orgId && f.data.type === f.event && /^evt_/.test(f.data.id)));
        assert.equal(all.frames[3].data.data.agentIdAfter, agent.agentId);
        assert.deepEqual(
          linksOnly.frames.map((f) => f.event),
          ['phone_number.linked'],
        );
        assert.deepEqual(
          others.frames.map((f) => f.data.orgId),
          [other.orgId],
        );

        // Missed while disconnected: a registration that starts, an agent renamed.
        const lastSeen = all.frames[3].id;
        await all.close();
        await org.req('PUT', `/api/v1/sip-phone-numbers/${number.id}`, {
          body: { phoneNumber: '+15550143001', credentialsId: creds.id, registration: true },
        });
        await org.req('PUT', `/api/v1/agents/${agent.agentId}`, { body: { name: 'renamed' } });
        const resumed = await openStream(server, org.key, { lastEventId: lastSeen });
        try {
          await eventually('missed events replayed', async () => resumed.frames.some((f) => f.event === 'agent.updated'), 5000);
          // The registration may move on (its server does not answer) before the rename: later state changes are left out.
          const missed = resumed.frames
            .map((f) => f.event)
            .filter((event, i, events) => event !== 'registration.state_changed' || events.indexOf(event) === i);
          assert.deepEqual(missed.slice(0, 3), ['phone_number.updated', 'registration.state_changed', 'agent.updated']);
          const registration = resumed.frames[1].data.data;
          assert.equal(registration.stateBefore, 'Disabled');
          assert.equal(registration.stateAfter, 'Registering');
          assert.ok(Number(resumed.frames[0].id) > Number(lastSeen));
        } finally {
          await resumed.close();
        }
        await eventually('the filtered stream saw the registration', async () => linksOnly.frames.length >= 2);
        assert.equal(linksOnly.frames[1].event, 'registration.state_changed');
      } finally {
        await all.close();
        await linksOnly.close();
        await others.close();
      }
    });

    test('bad requests: unknown types, a bad Last-Event-ID, no key', async () => {
      assertProblem(await org.req('GET', '/api/v1/events', { query: { types: 'call.ended,nope' } }), 400);
      assertProblem(await org.req('GET', '/api/v1/events', { headers: { 'last-event-id': 'abc' } }), 400);
      assert.equal((await server.request('GET', '/api/v1/events')).status, 401);
    });
  });
}

describe('registration events', () => {
  test('a REGISTER answered 200 moves the number from Registering to Registered', async () => {
    const server = await startTestServer('sqlite');
    const carrier = await UdpPeer.start('127.0.0.2', { host: '127.0.0.1', port: server.server.sipPort });
    try {
      const org = await clientFor(server, 'default');
      const creds = await org.createCredentials({ server: `127.0.0.2:${carrier.port}`, authUser: 'line1', authPassword: 'pw' });
      const stream = await openStream(server, org.key, { types: 'registration.state_changed' });
      try {
        const number = await org.createNumber({ phoneNumber: '+15550143200', credentialsId: creds.id, registration: true });
        const register = await carrier.next(request('REGISTER'), 'REGISTER', 5000);
        carrier.respond(register, replyText(register, 200, 'OK', 'reg-1', [`Contact: ${register.headers.get('contact')};expires=3600`]));
        await eventually('the state change streamed', async () => stream.frames.length >= 1, 5000);
        const change = stream.frames[0].data.data;
        assert.equal(change.phoneNumber.id, number.id);
        assert.equal(change.stateBefore, 'Registering');
        assert.equal(change.stateAfter, 'Registered');
        assert.equal(change.reason, null, 'a success has no failure to tell');
        assert.equal(change.phoneNumber.registrationStatus.state, 'Registered');
      } finally {
        await stream.close();
      }
    } finally {
      await carrier.close();
      await server.close();
    }
  });
});

describe('call events', () => {
  test('call.started, call.answered, and call.ended with its duration when the BYE comes (even to a restarted process)', async () => {
    const port = await freePort();
    const env = { DIALPLANE_SIP_HOST: '127.0.0.1', DIALPLANE_SIP_PORT: String(port), DIALPLANE_SIP_T1_MS: '100' };
    const edge = { host: '127.0.0.1', port };
    const carrier = await UdpPeer.start('127.0.0.2', edge);
    const agentPeer = await UdpPeer.start('127.0.0.3', edge);
    const { freshDatabase } = await import('../support/server.ts');
    const database = await freshDatabase('sqlite');
    let server = await startTestServer('sqlite', { database, env });
    try {
      const org = await clientFor(server, 'default');
      const creds = await org.createCredentials({ server: `127.0.0.2:${carrier.port}`, allowedAddresses: ['127.0.0.2'] });
      const agent = await org.createAgent({ sipUri: `sip:agent@${agentPeer.hostPort}` });
      const number = await org.createNumber({ phoneNumber: '+15550143100', credentialsId: creds.id });
      await org.link(number.id, agent.agentId);
      const stream = await openStream(server, org.key, { types: 'call.started,call.answered,call.ended' });

      const call = newCall(`127.0.0.1:${port}`, '+15550143100');
      carrier.send(inviteText(call, carrier));
      const invite = await agentPeer.next(request('INVITE'), 'INVITE');
      agentPeer.send(replyText(invite, 200, 'OK', 'agent-r', [`Contact: <sip:agent@${agentPeer.hostPort}>`]));
      const ok = await carrier.next(response(200), '200');
      carrier.send(inDialogText('ACK', 1, call, carrier, ok));
      await agentPeer.next(request('ACK'), 'ACK');
      await eventually('started and answered', async () => stream.frames.length >= 2, 5000);
      assert.deepEqual(
        stream.frames.map((f) => f.event),
        ['call.started', 'call.answered'],
      );
      const started = stream.frames[0].data.data.call;
      assert.equal(started.direction, 'inbound');
      assert.equal(started.phoneNumberId, number.id);
      assert.equal(started.agentId, agent.agentId);
      const callId = started.callId;
      await stream.close();

      // The BYE reaches a process that did not see the call set up: it finds it by its record.
      await server.close();
      server = await startTestServer('sqlite', { database, env });
      const resumed = await openStream(server, org.key, { types: 'call.ended', lastEventId: stream.frames[1].id });
      agentPeer.send(calleeRequestText('BYE', 1, invite, agentPeer, 'agent-r'));
      const bye = await carrier.next(request('BYE'), 'BYE');
      carrier.send(replyText(bye, 200, 'OK', null));
      await eventually('ended', async () => resumed.frames.length >= 1, 5000);
      const ended = resumed.frames[0].data.data.call;
      assert.equal(ended.callId, callId);
      assert.equal(ended.outcome, 'answered');
      assert.equal(typeof ended.durationSeconds, 'number');
      assert.ok(ended.answeredTime && ended.endedTime);
      await resumed.close();
    } finally {
      await carrier.close();
      await agentPeer.close();
      await server.close();
      await database.drop();
    }
  });
});
