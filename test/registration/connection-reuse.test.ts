import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { SipStreamFramer } from '../../src/sip/framing.ts';
import { parseMessage } from '../../src/sip/parser.ts';
import type { SipRequest } from '../../src/sip/message.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { replyText, request, sip, UdpPeer, unique } from '../support/sip-peers.ts';
import { waitFor } from '../support/sipp.ts';

/**
 * A registration over TCP keeps its connection (RFC 5923, docs/registration.md): keep-alives
 * hold it open, the registrar's INVITE for the number comes back over it and reaches the agent,
 * and when the registrar drops it the edge registers again at once over a new one. The registrar
 * is a raw TCP socket server, so the test sees every octet, keep-alives included.
 */
const KEEPALIVE_SECONDS = 0.2;
const NUMBER = '+15550180001';

class StreamRegistrar {
  readonly server: net.Server;
  readonly registers: SipRequest[] = [];
  readonly connections: net.Socket[] = [];
  /** Double-CRLF keep-alives received. */
  pings = 0;
  /** Status codes of the responses received (to the carrier's own requests). */
  readonly statuses: number[] = [];

  constructor() {
    this.server = net.createServer((socket) => {
      this.connections.push(socket);
      const framer = new SipStreamFramer();
      socket.on('error', () => undefined);
      socket.on('data', (chunk: Buffer) => {
        for (const event of framer.push(chunk)) {
          if (event.type === 'ping') this.pings++;
          if (event.type !== 'message') continue;
          const parsed = parseMessage(event.data);
          if (!parsed.ok) continue;
          const message = parsed.value;
          if (message.kind === 'response') this.statuses.push(message.status);
          else if (message.method === 'REGISTER') {
            this.registers.push(message);
            socket.write(replyText(message, 200, 'OK', unique('reg'), [`Contact: ${message.headers.get('contact')};expires=3600`]));
          }
        }
      });
    });
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** The connection the edge registered over. */
  get last(): net.Socket {
    return this.connections.at(-1)!;
  }
}

describe('registration over TCP keeps its connection', () => {
  let server: TestServer;
  let registrar: StreamRegistrar;
  let agent: UdpPeer;
  const api = (method: string, path: string, body?: unknown, query?: Record<string, string>) =>
    server.request(method, path, { key: server.defaultKey, body, query });

  before(async () => {
    registrar = new StreamRegistrar();
    await new Promise<void>((resolve) => registrar.server.listen(0, '127.0.0.8', resolve));
    server = await startTestServer('sqlite', {
      env: {
        DIALPLANE_SIP_HOST: '127.0.0.1',
        DIALPLANE_SIP_T1_MS: '50',
        DIALPLANE_REGISTRATION_KEEPALIVE_SECONDS: String(KEEPALIVE_SECONDS),
      },
    });
    agent = await UdpPeer.start('127.0.0.5', { host: '127.0.0.1', port: server.server.sipPort });
  });
  after(async () => {
    await agent?.close();
    await server?.close();
    for (const socket of registrar?.connections ?? []) socket.destroy();
    await new Promise((resolve) => registrar?.server.close(resolve));
  });

  test('keep-alives, the registrar’s INVITE over the same connection, and a new REGISTER when it drops', async () => {
    const creds = await api('POST', '/api/v1/sip-credentials', { server: `127.0.0.8:${registrar.port}`, transport: 'tcp' });
    const agentRow = await api('POST', '/api/v1/agents', { name: 'reached over the registration', sipUri: `sip:agent@${agent.hostPort}` });
    const number = await api('POST', '/api/v1/sip-phone-numbers', { phoneNumber: NUMBER, credentialsId: creds.body.id, registration: true });
    assert.equal(number.status, 201, JSON.stringify(number.body));
    await api('PUT', `/api/v1/sip-phone-numbers/${number.body.id}/agent-link`, undefined, { agentId: agentRow.body.agentId });
    await waitFor(async () => registrar.registers.length >= 1 || undefined, 'REGISTER at the registrar');
    const register = registrar.registers[0];
    assert.match(register.headers.get('via')!, /;alias\b/, 'the Via asks for the connection to be reused (RFC 5923)');

    await waitFor(async () => registrar.pings >= 2 || undefined, 'keep-alives on the connection');
    assert.equal(registrar.connections.length, 1, 'one connection, kept');

    // The carrier's INVITE for the number comes back over the connection the edge opened.
    const contact = /<([^>]+)>/.exec(register.headers.get('contact')!)![1];
    const callId = `${unique('reuse')}@carrier.test`;
    registrar.last.write(
      sip(
        [
          `INVITE ${contact} SIP/2.0`,
          `Via: SIP/2.0/TCP 127.0.0.8:${registrar.port};branch=${unique('z9hG4bK-reuse')}`,
          'Max-Forwards: 70',
          `From: <sip:+15559990000@127.0.0.8>;tag=${unique('c')}`,
          `To: <sip:${NUMBER}@127.0.0.8>`,
          `Call-ID: ${callId}`,
          'CSeq: 1 INVITE',
          `Contact: <sip:caller@127.0.0.8:${registrar.port};transport=tcp>`,
        ],
        '',
      ),
    );
    const invite = await agent.next(request('INVITE'), 'the INVITE at the agent');
    assert.equal(invite.headers.get('call-id'), callId);
    agent.respond(invite, replyText(invite, 486, 'Busy Here', unique('agent')));
    await waitFor(async () => registrar.statuses.includes(486) || undefined, 'the 486 back over the same connection');
    assert.equal(registrar.connections.length, 1, 'no other connection was opened for the call');

    // The registrar drops the connection: the edge registers again over a new one, long before the refresh.
    registrar.last.destroy();
    await waitFor(async () => registrar.registers.length >= 2 || undefined, 'a new REGISTER after the connection dropped');
    assert.equal(registrar.connections.length, 2);
  });
});
