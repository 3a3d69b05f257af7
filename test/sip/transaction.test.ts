import { test, mock, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { buildResponse, type SipMessage, type SipRequest, type SipResponse } from '../../src/sip/message.ts';
import { parseNameAddr } from '../../src/sip/parse-address.ts';
import { parseVia } from '../../src/sip/parse-via.ts';
import { parseMessage } from '../../src/sip/parser.ts';
import { TransactionLayer, type TransactionLayerOptions } from '../../src/sip/transaction.ts';
import { type ClientTransaction, type ClientTransactionHandler } from '../../src/sip/client-transaction.ts';
import { type ServerTransaction } from '../../src/sip/server-transaction.ts';
import { createCancel, requestTransactionKey, responseTransactionKey, type SipSender } from '../../src/sip/transaction-base.ts';
import type { Destination, MessageSource } from '../../src/sip/transport.ts';

// RFC 3261 defaults, so the schedules below read like the RFC's tables.
const T1 = 500;
const T2 = 4000;
const T4 = 5000;
const TIMER_D = 32_000;

const UDP_PEER: Destination = { transport: 'udp', host: '192.0.2.10', port: 5060 };
const TCP_PEER: Destination = { transport: 'tcp', host: '192.0.2.10', port: 5060 };
const UDP_SOURCE: MessageSource = { transport: 'udp', address: '192.0.2.20', port: 5060, connection: null };
const TCP_SOURCE: MessageSource = { transport: 'tcp', address: '192.0.2.20', port: 40000, connection: null };

interface Sent {
  message: SipMessage;
  at: number;
}

/** Records what the layer sends, stamped with the mock clock. */
class FakeTransport implements SipSender {
  readonly sent: Sent[] = [];
  failSends = false;
  now = 0;

  send(message: SipMessage): Promise<void> {
    this.sent.push({ message, at: this.now });
    return this.failSends ? Promise.reject(new Error('unreachable')) : Promise.resolve();
  }

  sendResponse(response: SipResponse): Promise<void> {
    this.sent.push({ message: response, at: this.now });
    return Promise.resolve();
  }

  times(predicate: (message: SipMessage) => boolean): number[] {
    return this.sent.filter((sent) => predicate(sent.message)).map((sent) => sent.at);
  }
}

interface Harness {
  layer: TransactionLayer;
  transport: FakeTransport;
  requests: Array<{ request: SipRequest; transaction: ServerTransaction | null }>;
  stray: SipResponse[];
  serverTimeouts: ServerTransaction[];
  /** Advances the mock clock millisecond by millisecond so timers set by timers fire on time. */
  advance(ms: number): void;
}

function setup(t: TestContext, options: Partial<TransactionLayerOptions> = {}): Harness {
  mock.timers.enable({ apis: ['setTimeout'] });
  const transport = new FakeTransport();
  const requests: Harness['requests'] = [];
  const stray: SipResponse[] = [];
  const serverTimeouts: ServerTransaction[] = [];
  const layer = new TransactionLayer({
    transport,
    onRequest: (request, _source, transaction) => requests.push({ request, transaction }),
    onStrayResponse: (response) => stray.push(response),
    onServerTimeout: (transaction) => serverTimeouts.push(transaction),
    onError: (error) => {
      throw error;
    },
    ...options,
  });
  t.after(() => {
    layer.close();
    mock.timers.reset();
  });
  return {
    layer,
    transport,
    requests,
    stray,
    serverTimeouts,
    advance(ms) {
      for (let i = 0; i < ms; i++) {
        transport.now++;
        mock.timers.tick(1);
      }
    },
  };
}

/** Lets rejected send promises settle. */
async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

class RecordingHandler implements ClientTransactionHandler {
  readonly responses: number[] = [];
  timeouts = 0;
  errors: Error[] = [];

  onResponse(response: SipResponse): void {
    this.responses.push(response.status);
  }

  onTimeout(): void {
    this.timeouts++;
  }

  onTransportError(_transaction: ClientTransaction, error: Error): void {
    this.errors.push(error);
  }
}

interface RequestSpec {
  method?: string;
  branch?: string;
  sentBy?: string;
  transport?: 'UDP' | 'TCP';
  cseq?: number;
  toTag?: string;
}

function request(spec: RequestSpec = {}): SipRequest {
  const method = spec.method ?? 'INVITE';
  const text = [
    `${method} sip:bob@example.com SIP/2.0`,
    `Via: SIP/2.0/${spec.transport ?? 'UDP'} ${spec.sentBy ?? 'client.example.com:5060'};branch=${spec.branch ?? 'z9hG4bK-1'}`,
    'Max-Forwards: 70',
    `To: <sip:bob@example.com>${spec.toTag ? `;tag=${spec.toTag}` : ''}`,
    'From: <sip:alice@example.com>;tag=alice',
    'Call-ID: call-1@example.com',
    `CSeq: ${spec.cseq ?? 1} ${method === 'ACK' ? 'ACK' : method}`,
    'Route: <sip:edge.example.com;lr>',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
  const result = parseMessage(text);
  assert.ok(result.ok && result.value.kind === 'request', 'test request parses');
  return result.value;
}

function response(to: SipRequest, status: number, toTag = 'bob'): SipResponse {
  return buildResponse(to, status, { toTag });
}

function isRequest(method: string): (message: SipMessage) => boolean {
  return (message) => message.kind === 'request' && message.method === method;
}

function isStatus(status: number): (message: SipMessage) => boolean {
  return (message) => message.kind === 'response' && message.status === status;
}

// ---------------------------------------------------------------------------
// INVITE client transaction

test('INVITE client over UDP: Timer A doubles from T1 and Timer B times out after 64*T1', (t) => {
  const h = setup(t);
  const handler = new RecordingHandler();
  const invite = request();
  const transaction = h.layer.sendRequest(invite, UDP_PEER, handler);
  assert.equal(transaction.state, 'calling');
  h.advance(64 * T1 - 1);
  assert.deepEqual(h.transport.times(isRequest('INVITE')), [0, 500, 1500, 3500, 7500, 15500, 31500]);
  assert.equal(handler.timeouts, 0);
  h.advance(1);
  assert.equal(handler.timeouts, 1);
  assert.equal(transaction.state, 'terminated');
  assert.equal(h.layer.clientTransactionCount, 0);
});

test('INVITE client: a provisional stops retransmissions and Timer B; a non-2xx is ACKed with the same branch', (t) => {
  const h = setup(t);
  const handler = new RecordingHandler();
  const invite = request({ branch: 'z9hG4bK-fail' });
  const transaction = h.layer.sendRequest(invite, UDP_PEER, handler);
  h.advance(T1);
  h.layer.receive(response(invite, 180), UDP_SOURCE);
  assert.equal(transaction.state, 'proceeding');
  h.advance(64 * T1);
  assert.equal(h.transport.times(isRequest('INVITE')).length, 2, 'no retransmission after the 180');
  assert.equal(handler.timeouts, 0, 'Timer B does not run in Proceeding');

  const busy = response(invite, 486);
  h.layer.receive(busy, UDP_SOURCE);
  assert.equal(transaction.state, 'completed');
  assert.deepEqual(handler.responses, [180, 486]);
  const acks = h.transport.sent.filter((sent) => isRequest('ACK')(sent.message));
  assert.equal(acks.length, 1);
  const ack = acks[0].message as SipRequest;
  assert.equal(ack.uri, invite.uri);
  assert.equal(parseVia(ack.headers.get('via')!)?.params.get('branch'), 'z9hG4bK-fail');
  assert.equal(ack.headers.get('cseq'), '1 ACK');
  assert.equal(parseNameAddr(ack.headers.get('to')!)?.params.get('tag'), 'bob', 'To comes from the response');
  assert.deepEqual(ack.headers.getAll('route'), invite.headers.getAll('route'));

  // A retransmitted final response is answered with the ACK again and not passed up.
  h.layer.receive(response(invite, 486), UDP_SOURCE);
  assert.equal(h.transport.times(isRequest('ACK')).length, 2);
  assert.deepEqual(handler.responses, [180, 486]);

  h.advance(TIMER_D - 1);
  assert.equal(transaction.state, 'completed');
  h.advance(1);
  assert.equal(transaction.state, 'terminated', 'Timer D');
});

test('INVITE client: 2xx moves to Accepted, 2xx retransmissions reach the TU until Timer M', (t) => {
  const h = setup(t);
  const handler = new RecordingHandler();
  const invite = request({ branch: 'z9hG4bK-ok' });
  const transaction = h.layer.sendRequest(invite, UDP_PEER, handler);
  h.layer.receive(response(invite, 200), UDP_SOURCE);
  assert.equal(transaction.state, 'accepted');
  h.advance(T1 * 4);
  assert.equal(h.transport.times(isRequest('INVITE')).length, 1, 'no Timer A in Accepted');
  assert.equal(h.transport.times(isRequest('ACK')).length, 0, 'the TU ACKs a 2xx, not the transaction');
  h.layer.receive(response(invite, 200), UDP_SOURCE);
  h.layer.receive(response(invite, 200, 'fork'), UDP_SOURCE);
  assert.deepEqual(handler.responses, [200, 200, 200]);
  h.advance(64 * T1 - T1 * 4);
  assert.equal(transaction.state, 'terminated', 'Timer M');
  h.layer.receive(response(invite, 200), UDP_SOURCE);
  assert.equal(h.stray.length, 1, 'after Timer M a 2xx is stray');
});

test('INVITE client over TCP: no retransmissions, Timer D is zero', (t) => {
  const h = setup(t);
  const handler = new RecordingHandler();
  const invite = request({ transport: 'TCP' });
  const transaction = h.layer.sendRequest(invite, TCP_PEER, handler);
  h.advance(10 * T1);
  assert.equal(h.transport.times(isRequest('INVITE')).length, 1);
  h.layer.receive(response(invite, 404), TCP_SOURCE);
  assert.equal(h.transport.times(isRequest('ACK')).length, 1);
  assert.equal(transaction.state, 'terminated');
  assert.equal(h.layer.clientTransactionCount, 0);
});

test('client transaction: a transport failure terminates it and tells the handler', async (t) => {
  const h = setup(t);
  h.transport.failSends = true;
  const handler = new RecordingHandler();
  const transaction = h.layer.sendRequest(request(), UDP_PEER, handler);
  await flush();
  assert.equal(handler.errors.length, 1);
  assert.equal(transaction.state, 'terminated');
  assert.equal(h.layer.clientTransactionCount, 0);
});

// ---------------------------------------------------------------------------
// Non-INVITE client transaction

test('non-INVITE client over UDP: Timer E doubles up to T2, Timer F times out after 64*T1', (t) => {
  const h = setup(t);
  const handler = new RecordingHandler();
  const transaction = h.layer.sendRequest(request({ method: 'OPTIONS' }), UDP_PEER, handler);
  assert.equal(transaction.state, 'trying');
  h.advance(64 * T1);
  assert.deepEqual(h.transport.times(isRequest('OPTIONS')), [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
  assert.equal(handler.timeouts, 1);
  assert.equal(transaction.state, 'terminated');
});

test('non-INVITE client: Proceeding retransmits every T2; the final response is passed once, then Timer K', (t) => {
  const h = setup(t);
  const handler = new RecordingHandler();
  const bye = request({ method: 'BYE', toTag: 'bob' });
  const transaction = h.layer.sendRequest(bye, UDP_PEER, handler);
  h.advance(T1 / 2);
  h.layer.receive(response(bye, 100), UDP_SOURCE);
  assert.equal(transaction.state, 'proceeding');
  h.advance(T1 / 2 + T2 * 2);
  assert.deepEqual(h.transport.times(isRequest('BYE')), [0, 500, 4500, 8500]);
  h.layer.receive(response(bye, 200), UDP_SOURCE);
  h.layer.receive(response(bye, 200), UDP_SOURCE);
  assert.deepEqual(handler.responses, [100, 200]);
  assert.equal(transaction.state, 'completed');
  h.advance(T4);
  assert.equal(transaction.state, 'terminated');
  assert.equal(h.transport.times(isRequest('BYE')).length, 4, 'no retransmission after the final response');
});

test('non-INVITE client over TCP: no Timer E, Timer K is zero', (t) => {
  const h = setup(t);
  const handler = new RecordingHandler();
  const bye = request({ method: 'BYE', toTag: 'bob', transport: 'TCP' });
  const transaction = h.layer.sendRequest(bye, TCP_PEER, handler);
  h.advance(10 * T1);
  assert.equal(h.transport.times(isRequest('BYE')).length, 1);
  h.layer.receive(response(bye, 200), TCP_SOURCE);
  assert.equal(transaction.state, 'terminated');
});

// ---------------------------------------------------------------------------
// INVITE server transaction

test('INVITE server: a retransmitted INVITE gets the last provisional again', (t) => {
  const h = setup(t);
  const invite = request();
  h.layer.receive(invite, UDP_SOURCE);
  assert.equal(h.requests.length, 1);
  const transaction = h.requests[0].transaction!;
  assert.equal(transaction.state, 'proceeding');
  h.layer.receive(request(), UDP_SOURCE);
  assert.equal(h.transport.sent.length, 0, 'nothing to resend before the TU answered');
  transaction.respond(response(invite, 100));
  transaction.respond(response(invite, 180));
  h.layer.receive(request(), UDP_SOURCE);
  assert.deepEqual(
    h.transport.sent.map((sent) => (sent.message as SipResponse).status),
    [100, 180, 180],
  );
  assert.equal(h.requests.length, 1, 'retransmissions never reach the TU');
  assert.equal(h.layer.stats.retransmissionsAbsorbed, 2);
});

test('INVITE server over UDP: Timer G retransmits the final response up to T2 until the ACK, then Timer I', (t) => {
  const h = setup(t);
  const invite = request();
  h.layer.receive(invite, UDP_SOURCE);
  const transaction = h.requests[0].transaction!;
  transaction.respond(response(invite, 486));
  assert.equal(transaction.state, 'completed');
  assert.equal(transaction.respond(response(invite, 200)), false, 'one final response only');
  h.advance(16_000);
  assert.deepEqual(h.transport.times(isStatus(486)), [0, 500, 1500, 3500, 7500, 11500, 15500]);
  h.layer.receive(request({ method: 'ACK', toTag: 'bob' }), UDP_SOURCE);
  assert.equal(transaction.state, 'confirmed');
  assert.equal(h.requests.length, 1, 'the ACK is absorbed');
  h.advance(T2);
  assert.equal(h.transport.times(isStatus(486)).length, 7, 'Timer G stopped');
  h.layer.receive(request({ method: 'ACK', toTag: 'bob' }), UDP_SOURCE);
  assert.equal(h.requests.length, 1, 'ACK retransmissions are absorbed in Confirmed');
  h.advance(T4 - T2);
  assert.equal(transaction.state, 'terminated');
  assert.equal(h.layer.serverTransactionCount, 0);
});

test('INVITE server: Timer H ends the transaction when no ACK comes', (t) => {
  const h = setup(t);
  const invite = request();
  h.layer.receive(invite, UDP_SOURCE);
  const transaction = h.requests[0].transaction!;
  transaction.respond(response(invite, 603));
  h.advance(64 * T1 - 1);
  assert.equal(h.serverTimeouts.length, 0);
  h.advance(1);
  assert.deepEqual(h.serverTimeouts, [transaction]);
  assert.equal(transaction.state, 'terminated');
});

test('INVITE server: after a 2xx (Accepted) INVITE retransmissions are absorbed, the TU may resend the 2xx, ACK goes to the TU, Timer L ends it', (t) => {
  const h = setup(t);
  const invite = request();
  h.layer.receive(invite, UDP_SOURCE);
  const transaction = h.requests[0].transaction!;
  transaction.respond(response(invite, 200));
  assert.equal(transaction.state, 'accepted');
  h.layer.receive(request(), UDP_SOURCE);
  assert.equal(h.transport.sent.length, 1, 'no resend for a retransmitted INVITE');
  assert.equal(transaction.respond(response(invite, 200)), true);
  assert.equal(transaction.respond(response(invite, 486)), false);
  h.advance(T2 * 2);
  assert.equal(h.transport.sent.length, 2, 'no Timer G for a 2xx');
  // The ACK for a 2xx is its own transaction (new branch): passed to the TU without a transaction.
  h.layer.receive(request({ method: 'ACK', branch: 'z9hG4bK-ack', toTag: 'bob' }), UDP_SOURCE);
  assert.equal(h.requests.length, 2);
  assert.equal(h.requests[1].transaction, null);
  h.advance(64 * T1 - T2 * 2);
  assert.equal(transaction.state, 'terminated', 'Timer L');
});

test('INVITE server over TCP: no Timer G, Timer I is zero', (t) => {
  const h = setup(t);
  const invite = request({ transport: 'TCP' });
  h.layer.receive(invite, TCP_SOURCE);
  const transaction = h.requests[0].transaction!;
  transaction.respond(response(invite, 404));
  h.advance(T2);
  assert.equal(h.transport.sent.length, 1);
  h.layer.receive(request({ method: 'ACK', transport: 'TCP', toTag: 'bob' }), TCP_SOURCE);
  assert.equal(transaction.state, 'terminated');
  assert.equal(h.requests.length, 1);
});

// ---------------------------------------------------------------------------
// Non-INVITE server transaction

test('non-INVITE server over UDP: retransmissions absorbed in Trying, answered with the last response after, Timer J', (t) => {
  const h = setup(t);
  const bye = request({ method: 'BYE', toTag: 'bob' });
  h.layer.receive(bye, UDP_SOURCE);
  const transaction = h.requests[0].transaction!;
  assert.equal(transaction.state, 'trying');
  h.layer.receive(request({ method: 'BYE', toTag: 'bob' }), UDP_SOURCE);
  assert.equal(h.transport.sent.length, 0);
  transaction.respond(response(bye, 100));
  assert.equal(transaction.state, 'proceeding');
  h.layer.receive(request({ method: 'BYE', toTag: 'bob' }), UDP_SOURCE);
  transaction.respond(response(bye, 200));
  assert.equal(transaction.state, 'completed');
  h.layer.receive(request({ method: 'BYE', toTag: 'bob' }), UDP_SOURCE);
  assert.deepEqual(
    h.transport.sent.map((sent) => (sent.message as SipResponse).status),
    [100, 100, 200, 200],
  );
  assert.equal(h.requests.length, 1);
  h.advance(64 * T1 - 1);
  assert.equal(transaction.state, 'completed');
  h.advance(1);
  assert.equal(transaction.state, 'terminated', 'Timer J');
});

test('non-INVITE server over TCP: Timer J is zero', (t) => {
  const h = setup(t);
  const bye = request({ method: 'BYE', toTag: 'bob', transport: 'TCP' });
  h.layer.receive(bye, TCP_SOURCE);
  const transaction = h.requests[0].transaction!;
  transaction.respond(response(bye, 200));
  assert.equal(transaction.state, 'terminated');
  assert.equal(h.layer.serverTransactionCount, 0);
});

// ---------------------------------------------------------------------------
// Matching

test('matching: CANCEL is its own server transaction and finds the INVITE it cancels', (t) => {
  const h = setup(t);
  const invite = request({ branch: 'z9hG4bK-m1' });
  h.layer.receive(invite, UDP_SOURCE);
  const cancel = createCancel(invite);
  assert.equal(cancel.headers.get('cseq'), '1 CANCEL');
  assert.deepEqual(cancel.headers.getAll('via'), [invite.headers.get('via')]);
  h.layer.receive(cancel, UDP_SOURCE);
  assert.equal(h.requests.length, 2, 'CANCEL is not a retransmission of the INVITE');
  const inviteTransaction = h.requests[0].transaction;
  const cancelTransaction = h.requests[1].transaction;
  assert.notEqual(inviteTransaction, cancelTransaction);
  assert.equal(h.layer.findInviteServerTransaction(cancel), inviteTransaction);
  assert.equal(h.layer.findInviteServerTransaction(createCancel(request({ branch: 'z9hG4bK-other' }))), null);
  assert.equal(h.layer.serverTransactionCount, 2);
});

test('matching: same branch from another sent-by, or another method, is a different transaction', (t) => {
  const h = setup(t);
  h.layer.receive(request({ branch: 'z9hG4bK-s' }), UDP_SOURCE);
  h.layer.receive(request({ branch: 'z9hG4bK-s', sentBy: 'other.example.com' }), UDP_SOURCE);
  h.layer.receive(request({ branch: 'z9hG4bK-s', method: 'OPTIONS' }), UDP_SOURCE);
  assert.equal(h.requests.length, 3);
  assert.notEqual(
    requestTransactionKey(request({ branch: 'z9hG4bK-s' })),
    requestTransactionKey(request({ branch: 'z9hG4bK-s', sentBy: 'other.example.com' })),
  );
});

test('matching: the ACK for a non-2xx matches its INVITE server transaction', (t) => {
  const h = setup(t);
  const invite = request({ branch: 'z9hG4bK-a' });
  h.layer.receive(invite, UDP_SOURCE);
  const ack = request({ method: 'ACK', branch: 'z9hG4bK-a', toTag: 'bob' });
  assert.equal(requestTransactionKey(ack), requestTransactionKey(invite));
  h.requests[0].transaction!.respond(response(invite, 480));
  h.layer.receive(ack, UDP_SOURCE);
  assert.equal(h.requests[0].transaction!.state, 'confirmed');
  assert.equal(h.requests.length, 1);
});

test('matching: responses go by branch and CSeq method, so the CANCEL response does not reach the INVITE', (t) => {
  const h = setup(t);
  const inviteHandler = new RecordingHandler();
  const cancelHandler = new RecordingHandler();
  const invite = request({ branch: 'z9hG4bK-c' });
  h.layer.sendRequest(invite, UDP_PEER, inviteHandler);
  const cancel = createCancel(invite);
  h.layer.sendRequest(cancel, UDP_PEER, cancelHandler);
  assert.notEqual(responseTransactionKey(response(invite, 200)), responseTransactionKey(response(cancel, 200)));
  h.layer.receive(response(invite, 180), UDP_SOURCE);
  h.layer.receive(response(cancel, 200), UDP_SOURCE);
  h.layer.receive(response(invite, 487), UDP_SOURCE);
  assert.deepEqual(inviteHandler.responses, [180, 487]);
  assert.deepEqual(cancelHandler.responses, [200]);
  h.layer.receive(response(request({ branch: 'z9hG4bK-unknown' }), 200), UDP_SOURCE);
  assert.equal(h.stray.length, 1);
});

test('matching: requests without the magic cookie (RFC 2543) still absorb retransmissions and match their ACK', (t) => {
  const h = setup(t);
  const invite = request({ branch: 'old-1' });
  h.layer.receive(invite, UDP_SOURCE);
  h.layer.receive(request({ branch: 'old-1' }), UDP_SOURCE);
  assert.equal(h.requests.length, 1);
  h.requests[0].transaction!.respond(response(invite, 486));
  h.layer.receive(request({ method: 'ACK', branch: 'old-1', toTag: 'bob' }), UDP_SOURCE);
  assert.equal(h.requests[0].transaction!.state, 'confirmed');
});

test('sendRequest refuses requests without an RFC 3261 branch, duplicates and ACK', (t) => {
  const h = setup(t);
  const handler = new RecordingHandler();
  assert.throws(() => h.layer.sendRequest(request({ branch: 'nocookie' }), UDP_PEER, handler), /branch/);
  h.layer.sendRequest(request({ branch: 'z9hG4bK-dup' }), UDP_PEER, handler);
  assert.throws(() => h.layer.sendRequest(request({ branch: 'z9hG4bK-dup' }), UDP_PEER, handler), /already exists/);
  assert.throws(() => h.layer.sendRequest(request({ method: 'ACK' }), UDP_PEER, handler), /ACK/);
});

test('a TU exception on a new request answers 500 rather than leaving the transaction open', (t) => {
  const h = setup(t, {
    onRequest: () => {
      throw new Error('TU bug');
    },
  });
  assert.throws(() => h.layer.receive(request({ method: 'OPTIONS' }), UDP_SOURCE), /TU bug/);
  assert.deepEqual(
    h.transport.sent.map((sent) => (sent.message as SipResponse).status),
    [500],
  );
});

test('close() ends every transaction and stops all timers', (t) => {
  const h = setup(t);
  const handler = new RecordingHandler();
  h.layer.sendRequest(request({ branch: 'z9hG4bK-x1' }), UDP_PEER, handler);
  h.layer.sendRequest(request({ branch: 'z9hG4bK-x2', method: 'OPTIONS' }), UDP_PEER, handler);
  const invite = request({ branch: 'z9hG4bK-x3' });
  h.layer.receive(invite, UDP_SOURCE);
  h.requests[0].transaction!.respond(response(invite, 500));
  const sentBefore = h.transport.sent.length;
  h.layer.close();
  assert.deepEqual(h.layer.stats, { activeServerTransactions: 0, activeClientTransactions: 0, retransmissionsSent: 0, retransmissionsAbsorbed: 0 });
  h.advance(64 * T1);
  assert.equal(h.transport.sent.length, sentBefore);
  assert.equal(handler.timeouts, 0);
  h.layer.receive(request({ branch: 'z9hG4bK-x4' }), UDP_SOURCE);
  assert.equal(h.requests.length, 1, 'messages after close are ignored');
});
