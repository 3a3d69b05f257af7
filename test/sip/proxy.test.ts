import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { type SipRequest } from '../../src/sip/message.ts';
import { parseNameAddr } from '../../src/sip/parse-address.ts';
import { parseVia } from '../../src/sip/parse-via.ts';
import { SipProxy } from '../../src/sip/proxy.ts';
import { type InitialRequestRecord, type RouteDecision, type Router } from '../../src/sip/router.ts';
import { SipTransportLayer } from '../../src/sip/transport.ts';
import { formatHost } from '../../src/sip/uri.ts';
import {
  ackText,
  cancelText,
  inDialogText,
  inviteText,
  newCall,
  optionsText,
  replyText,
  request,
  response,
  sip,
  SDP,
  TcpClientPeer,
  TcpServerPeer,
  UdpPeer,
  unique,
  type Peer,
} from '../support/sip-peers.ts';

// ---------------------------------------------------------------------------
// Proxy under test

interface ProxyHarness {
  proxy: SipProxy;
  transport: SipTransportLayer;
  host: string;
  port: number;
  /** `host:port` as written in SIP. */
  address: string;
  records: InitialRequestRecord[];
  errors: Error[];
  routed: SipRequest[];
}

interface ProxyOptions {
  host?: string;
  t1?: number;
  timerC?: number;
  decide: (request: SipRequest) => RouteDecision | Promise<RouteDecision>;
}

async function startProxy(t: TestContext, options: ProxyOptions): Promise<ProxyHarness> {
  const host = options.host ?? '127.0.0.1';
  const t1 = options.t1 ?? 40;
  const errors: Error[] = [];
  const records: InitialRequestRecord[] = [];
  const routed: SipRequest[] = [];
  let proxy: SipProxy | null = null;
  const transport = new SipTransportLayer({
    host,
    port: 0,
    onMessage: (message, source) => proxy?.receive(message, source),
    onError: (error) => errors.push(error),
  });
  const { udpPort } = await transport.listen();
  const route: Router = (request) => {
    routed.push(request);
    return options.decide(request);
  };
  proxy = new SipProxy({
    transport,
    host,
    port: udpPort,
    timers: { t1, t2: 8 * t1, t4: 10 * t1, timerD: 10 * t1 },
    timerC: options.timerC,
    route,
    onInitialRequestDone: (record) => records.push(record),
    onError: (error) => errors.push(error),
  });
  const started = proxy;
  t.after(async () => {
    started.close();
    await transport.close();
  });
  return { proxy, transport, host, port: udpPort, address: `${formatHost(host)}:${udpPort}`, records, errors, routed };
}

async function udpPeer(t: TestContext, host: string, proxy: { host: string; port: number }): Promise<UdpPeer> {
  const peer = await UdpPeer.start(host, proxy);
  t.after(() => peer.close());
  return peer;
}

function forwardTo(uas: Peer, extra: Partial<Extract<RouteDecision, { action: 'forward' }>> = {}): RouteDecision {
  const transport = uas.transport === 'TCP' ? ';transport=tcp' : '';
  return { action: 'forward', target: `sip:agent@${uas.hostPort}${transport}`, ...extra };
}

function assertOurVia(value: string | undefined, proxy: ProxyHarness, transport: 'UDP' | 'TCP' | 'TLS'): void {
  const via = parseVia(value ?? '');
  assert.ok(via !== null, 'a Via');
  assert.equal(via.transport, transport);
  assert.equal(via.host, proxy.host);
  assert.equal(via.port, proxy.port);
  assert.match(via.params.get('branch') ?? '', /^z9hG4bK/);
  assert.ok(via.params.has('rport'));
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await delay(5);
  }
}

// ---------------------------------------------------------------------------
// Full calls

/**
 * INVITE / 100 / 180 / 200 / ACK / BYE / 200 from `uac` through the proxy to
 * `uas`, checking Via, Max-Forwards, Record-Route and Route handling on the way.
 */
async function fullCall(proxy: ProxyHarness, uac: Peer, uas: Peer): Promise<void> {
  const call = newCall(proxy.address);
  uac.send(inviteText(call, uac));
  const trying = await uac.next(response(100), '100 Trying');
  assert.equal(trying.headers.getAll('via').length, 1);

  const invite = await uas.next(request('INVITE'), 'INVITE at the UAS');
  assert.equal(invite.uri, `sip:agent@${uas.hostPort}${uas.transport === 'TCP' ? ';transport=tcp' : ''}`);
  const vias = invite.headers.getAll('via');
  assert.equal(vias.length, 2, 'our Via on top of the caller’s');
  assertOurVia(vias[0], proxy, uas.transport);
  assert.equal(parseVia(vias[1])?.params.get('branch'), call.inviteBranch);
  assert.equal(invite.headers.get('max-forwards'), '69');
  assert.equal(invite.headers.get('x-dialplane-agent-id'), 'agent-1');
  assert.equal(invite.headers.get('x-evil'), undefined, 'removed by the decision');
  assert.equal(invite.body.toString(), SDP);
  const recordRoutes = invite.headers.getAll('record-route');
  // Each entry signed for this dialog (dialog-signer.ts): its time and its signature.
  const rr = (transport: 'UDP' | 'TCP' | 'TLS'): RegExp =>
    new RegExp(`^<sip:${proxy.address.replace(/[[\].]/g, '\\$&')}${transport === 'TCP' ? ';transport=tcp' : ''};lr;dpt=[0-9a-z]+;dps=[\\w-]{16}>$`);
  const expected = uac.transport === uas.transport ? [rr(uas.transport)] : [rr(uas.transport), rr(uac.transport)];
  assert.equal(recordRoutes.length, expected.length, 'double record-route when the legs differ, downstream leg on top (RFC 5658)');
  expected.forEach((pattern, i) => assert.match(recordRoutes[i], pattern));

  const uasTag = unique('uas');
  const contact = `Contact: <sip:agent@${uas.hostPort}${uas.transport === 'TCP' ? ';transport=tcp' : ''}>`;
  uas.send(replyText(invite, 100, 'Trying', null));
  uas.send(replyText(invite, 180, 'Ringing', uasTag, [contact]));
  const ringing = await uac.next(response(180), '180 Ringing');
  assert.deepEqual(ringing.headers.getAll('via').length, 1, 'our Via popped');
  uas.send(replyText(invite, 200, 'OK', uasTag, [contact]));
  const ok = await uac.next(response(200), '200 OK');
  assert.equal(ok.headers.getAll('via').length, 1);
  assert.equal(parseVia(ok.headers.get('via')!)?.params.get('branch'), call.inviteBranch);
  assert.deepEqual(ok.headers.getAll('record-route'), recordRoutes);
  assert.equal(uac.received.filter(response(100)).length, 0, 'the UAS’s 100 is not forwarded');

  uac.send(inDialogText('ACK', 1, call, uac, ok));
  const ack = await uas.next(request('ACK'), 'ACK at the UAS');
  assert.equal(ack.uri, parseNameAddr(ok.headers.get('contact')!)!.uri);
  assert.equal(ack.headers.has('route'), false, 'our Route popped');
  assert.equal(ack.headers.getAll('via').length, 2);
  assertOurVia(ack.headers.get('via'), proxy, uas.transport);
  assert.equal(ack.headers.get('max-forwards'), '69');

  uac.send(inDialogText('BYE', 2, call, uac, ok));
  const bye = await uas.next(request('BYE'), 'BYE at the UAS');
  assert.equal(bye.headers.has('route'), false);
  assertOurVia(bye.headers.get('via'), proxy, uas.transport);
  assert.equal(bye.headers.has('record-route'), false, 'no Record-Route on in-dialog requests');
  uas.send(replyText(bye, 200, 'OK', null));
  const byeOk = await uac.next(response(200, 'BYE'), '200 for BYE');
  assert.equal(byeOk.headers.getAll('via').length, 1);
  assert.equal(proxy.routed.length, 1, 'only the initial INVITE consults the router');

  await waitFor(() => proxy.records.length === 1, 'the call record');
  const [record] = proxy.records;
  assert.equal(record.finalStatus, 200);
  assert.equal(record.decision.action, 'forward');
  assert.equal(record.context, 'ctx');
  assert.equal(record.request.uri, call.requestUri);
  assert.ok(record.endedAt >= record.startedAt);
  assert.deepEqual(proxy.errors, []);
}

const agentDecision = (uas: Peer): RouteDecision =>
  forwardTo(uas, { addHeaders: [['X-Dialplane-Agent-Id', 'agent-1']], removeHeaders: ['X-Evil'], context: 'ctx' });

test('full call over UDP: INVITE/100/180/200/ACK/BYE/200 with Record-Route and Via handling', async (t) => {
  const target = { host: '127.0.0.1', port: 0 };
  const uas = await udpPeer(t, '127.0.0.1', target);
  const proxy = await startProxy(t, { decide: () => agentDecision(uas) });
  target.port = proxy.port;
  const uac = await udpPeer(t, '127.0.0.1', target);
  await fullCall(proxy, uac, uas);
  const stats = proxy.proxy.stats;
  assert.equal(stats.requestsForwarded, 3, 'INVITE, ACK, BYE');
  assert.equal(stats.responsesForwarded, 3, '180, 200, 200');
});

test('full call over TCP on both legs', async (t) => {
  const uas = await TcpServerPeer.start('127.0.0.1');
  t.after(() => uas.close());
  const proxy = await startProxy(t, { decide: () => agentDecision(uas) });
  const uac = await TcpClientPeer.connect('127.0.0.1', proxy.port);
  t.after(() => uac.close());
  await fullCall(proxy, uac, uas);
});

test('full call from UDP to TCP: double record-route', async (t) => {
  const uas = await TcpServerPeer.start('127.0.0.1');
  t.after(() => uas.close());
  const proxy = await startProxy(t, { decide: () => agentDecision(uas) });
  const uac = await udpPeer(t, '127.0.0.1', { host: '127.0.0.1', port: proxy.port });
  await fullCall(proxy, uac, uas);
});

test('full call over IPv6 (::1) with an asynchronous router', async (t) => {
  const target = { host: '::1', port: 0 };
  const uas = await udpPeer(t, '::1', target);
  const proxy = await startProxy(t, {
    host: '::1',
    decide: async () => {
      await delay(5);
      return agentDecision(uas);
    },
  });
  target.port = proxy.port;
  const uac = await udpPeer(t, '::1', target);
  await fullCall(proxy, uac, uas);
});

// ---------------------------------------------------------------------------
// Failures and cancellation

test('reject decision: 404 reaches the caller, the ACK is absorbed and the record kept', async (t) => {
  const target = { host: '127.0.0.1', port: 0 };
  const proxy = await startProxy(t, {
    t1: 100,
    decide: () => ({ action: 'reject', status: 404, reason: 'No Such Number', headers: [['X-Reason', 'unknown']], context: 7 }),
  });
  target.port = proxy.port;
  const uac = await udpPeer(t, '127.0.0.1', target);
  const call = newCall(proxy.address);
  uac.send(inviteText(call, uac));
  await uac.next(response(100), '100 Trying');
  const notFound = await uac.next(response(404), '404');
  assert.equal(notFound.reason, 'No Such Number');
  assert.equal(notFound.headers.get('x-reason'), 'unknown');
  assert.ok(parseNameAddr(notFound.headers.get('to')!)!.params.has('tag'), 'a final response carries a To tag');
  uac.send(ackText(call, uac, notFound));
  await waitFor(() => proxy.proxy.transactions.stats.retransmissionsAbsorbed === 1, 'the ACK absorbed');
  // Confirmed: Timer G (T1 = 100 ms) would have resent the 404 twice by now.
  await uac.none(response(404), '404 retransmission', 350);
  assert.equal(proxy.proxy.stats.requestsForwarded, 0, 'the ACK went nowhere');
  assert.equal(proxy.records.length, 1);
  assert.equal(proxy.records[0].finalStatus, 404);
  assert.equal(proxy.records[0].context, 7);
});

test('CANCEL after a provisional: 200 for the CANCEL, the CANCEL reaches the UAS, 487 reaches the caller', async (t) => {
  const target = { host: '127.0.0.1', port: 0 };
  const uas = await udpPeer(t, '127.0.0.1', target);
  const proxy = await startProxy(t, { decide: () => forwardTo(uas) });
  target.port = proxy.port;
  const uac = await udpPeer(t, '127.0.0.1', target);
  const call = newCall(proxy.address);
  uac.send(inviteText(call, uac));
  const invite = await uas.next(request('INVITE'), 'INVITE');
  uas.send(replyText(invite, 180, 'Ringing', 'uas1'));
  await uac.next(response(180), '180');

  uac.send(cancelText(call, uac));
  await uac.next(response(200, 'CANCEL'), '200 for CANCEL');
  const cancel = await uas.next(request('CANCEL'), 'CANCEL at the UAS');
  assert.equal(cancel.headers.get('via'), invite.headers.get('via'), 'the CANCEL carries the INVITE’s branch (§9.1)');
  assert.equal(cancel.uri, invite.uri);
  uas.send(replyText(cancel, 200, 'OK', 'uas1'));
  uas.send(replyText(invite, 487, 'Request Terminated', 'uas1'));
  const terminated = await uac.next(response(487), '487');
  const ackAtUas = await uas.next(request('ACK'), 'ACK for the 487, from the proxy');
  assert.equal(parseVia(ackAtUas.headers.get('via')!)?.params.get('branch'), parseVia(invite.headers.get('via')!)?.params.get('branch'));
  uac.send(ackText(call, uac, terminated));
  await waitFor(() => proxy.records.length === 1, 'the call record');
  assert.equal(proxy.records[0].finalStatus, 487);
});

test('CANCEL before any provisional: the CANCEL waits for the first provisional (§9.1)', async (t) => {
  const target = { host: '127.0.0.1', port: 0 };
  const uas = await udpPeer(t, '127.0.0.1', target);
  const proxy = await startProxy(t, { decide: () => forwardTo(uas) });
  target.port = proxy.port;
  const uac = await udpPeer(t, '127.0.0.1', target);
  const call = newCall(proxy.address);
  uac.send(inviteText(call, uac));
  const invite = await uas.next(request('INVITE'), 'INVITE');
  uac.send(cancelText(call, uac));
  await uac.next(response(200, 'CANCEL'), '200 for CANCEL');
  await uas.none(request('CANCEL'), 'CANCEL before a provisional', 100);
  uas.send(replyText(invite, 180, 'Ringing', 'uas2'));
  const cancel = await uas.next(request('CANCEL'), 'CANCEL after the 180');
  uas.send(replyText(cancel, 200, 'OK', 'uas2'));
  uas.send(replyText(invite, 487, 'Request Terminated', 'uas2'));
  await uac.next(response(487), '487');
});

test('CANCEL while the router is still deciding: 487 at once, no INVITE goes out', async (t) => {
  const target = { host: '127.0.0.1', port: 0 };
  const uas = await udpPeer(t, '127.0.0.1', target);
  let release: () => void = () => undefined;
  const proxy = await startProxy(t, {
    decide: () =>
      new Promise<RouteDecision>((resolve) => {
        release = () => resolve(forwardTo(uas));
      }),
  });
  target.port = proxy.port;
  const uac = await udpPeer(t, '127.0.0.1', target);
  const call = newCall(proxy.address);
  uac.send(inviteText(call, uac));
  await uac.next(response(100), '100');
  uac.send(cancelText(call, uac));
  await uac.next(response(200, 'CANCEL'), '200 for CANCEL');
  await uac.next(response(487), '487');
  release();
  await uas.none(request('INVITE'), 'INVITE after the CANCEL', 100);
  assert.equal(proxy.records.length, 1);
  assert.equal(proxy.records[0].finalStatus, 487);
});

test('a CANCEL matching no transaction gets 481', async (t) => {
  const target = { host: '127.0.0.1', port: 0 };
  const proxy = await startProxy(t, { decide: () => ({ action: 'reject', status: 500 }) });
  target.port = proxy.port;
  const uac = await udpPeer(t, '127.0.0.1', target);
  uac.send(cancelText(newCall(proxy.address), uac));
  await uac.next(response(481, 'CANCEL'), '481');
});

test('a silent next hop: 408 upstream after Timer B', async (t) => {
  const target = { host: '127.0.0.1', port: 0 };
  const silent = await udpPeer(t, '127.0.0.1', target);
  const proxy = await startProxy(t, { t1: 10, decide: () => forwardTo(silent) });
  target.port = proxy.port;
  const uac = await udpPeer(t, '127.0.0.1', target);
  const started = Date.now();
  uac.send(inviteText(newCall(proxy.address), uac));
  await uac.next(response(408), '408');
  assert.ok(Date.now() - started >= 64 * 10 - 20, 'not before Timer B');
  assert.ok(silent.received.filter(request('INVITE')).length >= 5, 'Timer A retransmitted the INVITE');
  assert.equal(proxy.records[0].finalStatus, 408);
});

test('an unreachable TCP next hop: 503 upstream', async (t) => {
  const closed = net.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const deadPort = (closed.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const target = { host: '127.0.0.1', port: 0 };
  const proxy = await startProxy(t, { decide: () => ({ action: 'forward', target: `sip:agent@127.0.0.1:${deadPort};transport=tcp` }) });
  target.port = proxy.port;
  const uac = await udpPeer(t, '127.0.0.1', target);
  uac.send(inviteText(newCall(proxy.address), uac));
  await uac.next(response(503), '503');
});

test('Timer C: a call ringing too long is cancelled downstream', async (t) => {
  const target = { host: '127.0.0.1', port: 0 };
  const uas = await udpPeer(t, '127.0.0.1', target);
  const proxy = await startProxy(t, { timerC: 150, decide: () => forwardTo(uas) });
  target.port = proxy.port;
  const uac = await udpPeer(t, '127.0.0.1', target);
  uac.send(inviteText(newCall(proxy.address), uac));
  const invite = await uas.next(request('INVITE'), 'INVITE');
  const ringingAt = Date.now();
  uas.send(replyText(invite, 180, 'Ringing', 'uas3'));
  const cancel = await uas.next(request('CANCEL'), 'CANCEL from Timer C');
  assert.ok(Date.now() - ringingAt >= 140, 'not before Timer C');
  uas.send(replyText(cancel, 200, 'OK', 'uas3'));
  uas.send(replyText(invite, 487, 'Request Terminated', 'uas3'));
  await uac.next(response(487), '487');
});

test('2xx retransmissions reach the caller, through the transactions and statelessly after they end', async (t) => {
  const target = { host: '127.0.0.1', port: 0 };
  const uas = await udpPeer(t, '127.0.0.1', target);
  const proxy = await startProxy(t, { t1: 10, decide: () => forwardTo(uas) });
  target.port = proxy.port;
  const uac = await udpPeer(t, '127.0.0.1', target);
  uac.send(inviteText(newCall(proxy.address), uac));
  const invite = await uas.next(request('INVITE'), 'INVITE');
  const ok = replyText(invite, 200, 'OK', 'uas4', [`Contact: <sip:agent@${uas.hostPort}>`]);
  uas.send(ok);
  await uac.next(response(200), 'the 200');
  uas.send(ok);
  await uac.next(response(200), 'a retransmitted 200 (Accepted)');
  await waitFor(() => proxy.proxy.stats.activeClientTransactions === 0 && proxy.proxy.stats.activeServerTransactions === 0, 'Timers L and M');
  uas.send(ok);
  await uac.next(response(200), 'a retransmitted 200 after the transactions ended');
  assert.equal(proxy.proxy.stats.responsesForwarded, 3);
});

// ---------------------------------------------------------------------------
// Validation

test('Max-Forwards 0: 483 for an INVITE, 200 for OPTIONS', async (t) => {
  const target = { host: '127.0.0.1', port: 0 };
  const proxy = await startProxy(t, { decide: () => assert.fail('the router is not consulted') });
  target.port = proxy.port;
  const uac = await udpPeer(t, '127.0.0.1', target);
  uac.send(inviteText(newCall(proxy.address), uac).replace('Max-Forwards: 70', 'Max-Forwards: 0'));
  await uac.next(response(483), '483');
  uac.send(optionsText('sip:someone@example.com', uac, ['Max-Forwards: 0']));
  const ok = await uac.next(response(200, 'OPTIONS'), '200 for OPTIONS');
  assert.match(ok.headers.get('allow') ?? '', /INVITE/);
});

test('OPTIONS addressed to the proxy is answered with 200 and Allow', async (t) => {
  const target = { host: '127.0.0.1', port: 0 };
  const proxy = await startProxy(t, { decide: () => assert.fail('the router is not consulted') });
  target.port = proxy.port;
  const uac = await udpPeer(t, '127.0.0.1', target);
  uac.send(optionsText(`sip:${proxy.address}`, uac, ['Max-Forwards: 70']));
  const ok = await uac.next(response(200, 'OPTIONS'), '200');
  assert.ok(ok.headers.has('allow'));
  assert.ok(parseNameAddr(ok.headers.get('to')!)!.params.has('tag'));
});

test('a request routed back to the proxy unchanged is a loop: 482', async (t) => {
  const target = { host: '127.0.0.1', port: 0 };
  // The target is the proxy itself: the second pass is a spiral (new Request-URI), the third a loop.
  const proxy = await startProxy(t, { decide: () => ({ action: 'forward', target: `sip:loop@${target.host}:${target.port}` }) });
  target.port = proxy.port;
  const uac = await udpPeer(t, '127.0.0.1', target);
  uac.send(inviteText(newCall(proxy.address), uac));
  await uac.next(response(482), '482');
  assert.equal(proxy.routed.length, 2, 'the spiral was routed, the loop was not');
  await waitFor(() => proxy.records.length === 2, 'both routed passes recorded');
  assert.deepEqual(
    proxy.records.map((record) => record.finalStatus),
    [482, 482],
  );
});

test('Proxy-Require: 420 Bad Extension listing the unsupported option', async (t) => {
  const target = { host: '127.0.0.1', port: 0 };
  const proxy = await startProxy(t, { decide: () => assert.fail('the router is not consulted') });
  target.port = proxy.port;
  const uac = await udpPeer(t, '127.0.0.1', target);
  uac.send(inviteText(newCall(proxy.address), uac, ['Proxy-Require: foo']));
  const bad = await uac.next(response(420), '420');
  assert.equal(bad.headers.get('unsupported'), 'foo');
});

test('garbage is ignored and malformed requests get 400, and the proxy keeps working', async (t) => {
  const target = { host: '127.0.0.1', port: 0 };
  const uas = await udpPeer(t, '127.0.0.1', target);
  const proxy = await startProxy(t, { decide: () => forwardTo(uas) });
  target.port = proxy.port;
  const uac = await udpPeer(t, '127.0.0.1', target);

  uac.send('hello, this is not SIP\r\n\r\n');
  await waitFor(() => proxy.transport.stats.droppedDatagrams === 1, 'the datagram dropped');

  // Rejected by the parser (invalid Max-Forwards) in the transport.
  uac.send(inviteText(newCall(proxy.address), uac).replace('Max-Forwards: 70', 'Max-Forwards: many'));
  await uac.next(response(400), '400 from the parser');

  // Parsed fine but not ours: an in-dialog request with a malformed Route.
  uac.send(
    sip([
      `BYE sip:agent@${uas.hostPort} SIP/2.0`,
      `Via: SIP/2.0/UDP ${uac.hostPort};branch=${unique('z9hG4bK-bad')};rport`,
      'Max-Forwards: 70',
      'Route: <sip:nonsense',
      `From: <sip:alice@${uac.hostPort}>;tag=a`,
      `To: <sip:agent@${uas.hostPort}>;tag=b`,
      `Call-ID: ${unique('bad-')}`,
      'CSeq: 2 BYE',
    ]),
  );
  await uac.next(response(403, 'BYE'), '403 for an in-dialog request without our signed Route');

  // An in-dialog request that never went through us is not relayed.
  uac.send(
    sip([
      `BYE sip:agent@${uas.hostPort} SIP/2.0`,
      `Via: SIP/2.0/UDP ${uac.hostPort};branch=${unique('z9hG4bK-bad')};rport`,
      'Max-Forwards: 70',
      `From: <sip:alice@${uac.hostPort}>;tag=a`,
      `To: <sip:agent@${uas.hostPort}>;tag=b`,
      `Call-ID: ${unique('bad-')}`,
      'CSeq: 2 BYE',
    ]),
  );
  await uac.next(response(403, 'BYE'), '403 for a dialog we are not on');

  // Still alive: a call attempt goes through.
  uac.send(inviteText(newCall(proxy.address), uac));
  await uas.next(request('INVITE'), 'INVITE after the garbage');
  assert.equal(uas.received.filter(request('BYE')).length, 0);
});

test('a throwing router gives 500 and the error is reported', async (t) => {
  const target = { host: '127.0.0.1', port: 0 };
  const proxy = await startProxy(t, {
    decide: () => {
      throw new Error('database down');
    },
  });
  target.port = proxy.port;
  const uac = await udpPeer(t, '127.0.0.1', target);
  uac.send(inviteText(newCall(proxy.address), uac));
  await uac.next(response(500), '500');
  assert.match(proxy.errors[0]?.message ?? '', /database down/);
  assert.equal(proxy.records[0].finalStatus, 500);
});

test('non-INVITE out-of-dialog requests go to the router (MESSAGE forwarded, REGISTER rejected 405)', async (t) => {
  const target = { host: '127.0.0.1', port: 0 };
  const uas = await udpPeer(t, '127.0.0.1', target);
  const proxy = await startProxy(t, {
    decide: (request) => (request.method === 'MESSAGE' ? forwardTo(uas) : { action: 'reject', status: 405, headers: [['Allow', 'INVITE, MESSAGE']] }),
  });
  target.port = proxy.port;
  const uac = await udpPeer(t, '127.0.0.1', target);
  const message = optionsText(`sip:+15550001@${proxy.address}`, uac, ['Max-Forwards: 70']).replace(/OPTIONS/g, 'MESSAGE');
  uac.send(message);
  const atUas = await uas.next(request('MESSAGE'), 'MESSAGE at the UAS');
  assert.equal(atUas.headers.has('record-route'), false, 'MESSAGE creates no dialog');
  uas.send(replyText(atUas, 202, 'Accepted', 'u'));
  await uac.next(response(202, 'MESSAGE'), '202');
  uac.send(optionsText(`sip:${proxy.address}`, uac, ['Max-Forwards: 70']).replace(/OPTIONS/g, 'REGISTER'));
  const rejected = await uac.next(response(405, 'REGISTER'), '405');
  assert.equal(rejected.headers.get('allow'), 'INVITE, MESSAGE');
  assert.equal(proxy.records.length, 0, 'records are for INVITEs only');
});
