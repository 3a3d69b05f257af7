import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import SQLite from 'better-sqlite3';
import { kamailioAvailable, startKamailio, type Kamailio } from './support/kamailio.ts';
import { spawnServer } from './support/process.ts';
import { request } from './support/server.ts';
import { freePort } from './support/sipp.ts';
import { inviteText, newCall, replyText, request as sipRequest, response, sip, UdpPeer, unique } from './support/sip-peers.ts';

/**
 * SIGTERM on a real server process with SIP under way: new calls are turned away with 503 and
 * Retry-After, a call already forwarded still gets its answer, its call record is written, the
 * registrations are unREGISTERed (against a real Kamailio over TCP, with the first REGISTER
 * still in flight when the signal comes), and the process exits 0.
 */
const hasKamailio = kamailioAvailable();

function serverSetup(dir: string) {
  return spawnServer({ DIALPLANE_DB: path.join(dir, 'dialplane.db'), DIALPLANE_SIP_T1_MS: '100', DIALPLANE_SHUTDOWN_DRAIN_SECONDS: '10' });
}

function sipPort(output: string): number {
  return Number(/"sip":"127\.0\.0\.1:(\d+)"/.exec(output)![1]);
}

describe('graceful shutdown of the SIP side', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dialplane-sip-shutdown-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('a call in setup at SIGTERM is answered and recorded; a new one gets 503 with Retry-After; exit 0', { timeout: 60_000 }, async () => {
    const server = await serverSetup(path.join(dir, 'drain'));
    const edge = { host: '127.0.0.1', port: sipPort(server.output()) };
    const carrier = await UdpPeer.start('127.0.0.2', edge);
    const agent = await UdpPeer.start('127.0.0.3', edge);
    try {
      const key = /^\s+(dpk_\S+)\s*$/m.exec(server.output())![1];
      const creds = await request(server.url, 'POST', '/api/v1/sip-credentials', {
        key,
        body: { server: '127.0.0.2', allowedAddresses: ['127.0.0.2'] },
      });
      const runtime = await request(server.url, 'POST', '/api/v1/agents', { key, body: { name: 'agent', sipUri: `sip:agent@${agent.hostPort}` } });
      const number = await request(server.url, 'POST', '/api/v1/sip-phone-numbers', {
        key,
        body: { phoneNumber: '+15550180000', credentialsId: creds.body.id },
      });
      await request(server.url, 'PUT', `/api/v1/sip-phone-numbers/${number.body.id}/agent-link`, { key, query: { agentId: runtime.body.agentId } });

      const call = newCall(`127.0.0.1:${edge.port}`, '+15550180000');
      carrier.send(inviteText(call, carrier));
      const invite = await agent.next(sipRequest('INVITE'), 'INVITE at the agent');
      agent.send(replyText(invite, 180, 'Ringing', 'agent-drain'));
      await carrier.next(response(180), 'ringing');

      server.child.kill('SIGTERM');
      await delay(300);
      carrier.send(inviteText(newCall(`127.0.0.1:${edge.port}`, '+15550180000'), carrier));
      const refused = await carrier.next(response(503), '503 for a new call while draining');
      assert.ok(Number(refused.headers.get('retry-after')) > 0, 'with Retry-After');
      assert.equal(agent.received.filter(sipRequest('INVITE')).length, 0, 'the new call went nowhere');

      agent.send(replyText(invite, 200, 'OK', 'agent-drain', [`Contact: <sip:agent@${agent.hostPort}>`]));
      await carrier.next(response(200), 'the call in setup is answered');
      assert.equal(await server.exited, 0);
      const db = new SQLite(path.join(dir, 'drain', 'dialplane.db'), { readonly: true });
      try {
        const records = db.prepare('select outcome, status_code from call_records where call_id = ?').all(call.callId);
        assert.deepEqual(records, [{ outcome: 'answered', status_code: 200 }], 'its call record was written before the exit');
      } finally {
        db.close();
      }
      assert.match(server.output().trim().split('\n').at(-1)!, /"msg":"dialplane stopped"/);
    } finally {
      await carrier.close();
      await agent.close();
    }
  });

  describe('registrations', { skip: !hasKamailio && 'kamailio not installed' }, () => {
    let kamailio: Kamailio;
    let port: number;
    before(async () => {
      port = await freePort();
      kamailio = await startKamailio('registrar.cfg', port, { REGISTER_DELAY_US: '1500000' });
    });
    after(() => kamailio?.stop());

    /** The bindings the registrar holds for an AOR, asked with a REGISTER that has no Contact. */
    async function bindings(user: string): Promise<readonly string[]> {
      const asker = await UdpPeer.start('127.0.0.1', { host: '127.0.0.1', port });
      try {
        asker.send(
          sip([
            `REGISTER sip:127.0.0.1:${port} SIP/2.0`,
            `Via: SIP/2.0/UDP ${asker.hostPort};branch=${unique('z9hG4bK-query')};rport`,
            `From: <sip:${user}@127.0.0.1>;tag=${unique('q')}`,
            `To: <sip:${user}@127.0.0.1>`,
            `Call-ID: ${unique('query-')}`,
            'CSeq: 1 REGISTER',
          ]),
        );
        return (await asker.next(response(200, 'REGISTER'), 'the registrar’s answer')).headers.getAll('contact');
      } finally {
        await asker.close();
      }
    }

    test('SIGTERM while the first REGISTER over TCP is in flight: the binding it makes is removed before the exit', { timeout: 60_000 }, async () => {
      const server = await serverSetup(path.join(dir, 'register'));
      const key = /^\s+(dpk_\S+)\s*$/m.exec(server.output())![1];
      const creds = await request(server.url, 'POST', '/api/v1/sip-credentials', {
        key,
        body: { server: `127.0.0.1:${port}`, transport: 'tcp', authUser: 'kamtest', allowedAddresses: ['127.0.0.1'] },
      });
      assert.equal(creds.status, 201, JSON.stringify(creds.body));
      const number = await request(server.url, 'POST', '/api/v1/sip-phone-numbers', {
        key,
        body: { phoneNumber: '+15550180001', credentialsId: creds.body.id, registration: true },
      });
      assert.equal(number.status, 201, JSON.stringify(number.body));
      // The registrar holds the REGISTER for 1.5 s: stop dialplane in the middle of it.
      for (let i = 0; i < 50 && !/REGISTER from .* over tcp .*Expires 3600/i.test(kamailio.output()); i++) await delay(20);
      assert.match(kamailio.output(), /REGISTER from .* over tcp .*Expires 3600/i, 'the first REGISTER reached the registrar');
      server.child.kill('SIGTERM');
      assert.equal(await server.exited, 0);
      assert.match(kamailio.output(), /REGISTER from .* over tcp .*Expires 0/i, 'an unREGISTER was sent');
      assert.deepEqual(await bindings('kamtest'), [], 'no binding left');
    });
  });
});
