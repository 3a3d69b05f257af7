import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequest, createResponse, SipHeaders } from '../../src/sip/message.ts';
import { ackSdpStep, dialogOf, requestSdpStep, responseSdpStep } from '../../src/sip/offer-answer.ts';

const SDP = Buffer.from('v=0\r\n');
const headers = (from: string, to: string, withSdp: boolean) =>
  new SipHeaders([
    ['From', `<sip:a@example.com>;tag=${from}`],
    ['To', `<sip:b@example.com>${to === '' ? '' : `;tag=${to}`}`],
    ['Call-ID', 'c1'],
    ...(withSdp ? ([['Content-Type', 'application/sdp']] as [string, string][]) : []),
  ]);
const requestOf = (method: string, from: string, to: string, withSdp: boolean) =>
  createRequest({ method, uri: 'sip:b@example.com', headers: headers(from, to, withSdp), body: withSdp ? SDP : undefined });

test('the SDP step of each request', () => {
  const cases: [string, string, string, boolean, boolean, object | null][] = [
    // method, From tag, To tag, SDP?, from the caller?, step
    ['INVITE', 'caller', '', true, true, { kind: 'offer', offererTag: 'caller', answererTag: '', fromCaller: true }],
    ['INVITE', 'callee', 'caller', true, false, { kind: 'offer', offererTag: 'callee', answererTag: 'caller', fromCaller: false }],
    ['UPDATE', 'caller', 'callee', true, true, { kind: 'offer', offererTag: 'caller', answererTag: 'callee', fromCaller: true }],
    ['PRACK', 'caller', 'callee', true, true, { kind: 'answer', offererTag: 'callee', answererTag: 'caller', fromCaller: true }],
    ['INVITE', 'caller', '', false, true, null],
    ['INFO', 'caller', 'callee', true, true, null],
    ['BYE', 'caller', 'callee', false, true, null],
  ];
  for (const [method, from, to, withSdp, fromCaller, step] of cases) {
    assert.deepEqual(requestSdpStep(requestOf(method, from, to, withSdp), fromCaller), step, `${method} ${withSdp ? 'with' : 'without'} SDP`);
  }
  assert.deepEqual(ackSdpStep(requestOf('ACK', 'caller', 'callee', true), true), {
    kind: 'answer',
    offererTag: 'callee',
    answererTag: 'caller',
    fromCaller: true,
  });
  assert.equal(ackSdpStep(requestOf('ACK', 'caller', 'callee', false), true), null);
  assert.deepEqual(dialogOf(requestOf('BYE', 'callee', 'caller', false), false), { callId: 'c1', callerTag: 'caller' });
});

test('the SDP step of each response: an answer to an offer, or the offer itself when the request had none', () => {
  const cases: [string, boolean, number, boolean, object | null][] = [
    // request method, request had SDP?, status, response has SDP?, step (the request came from the caller)
    ['INVITE', true, 183, true, { kind: 'answer', offererTag: 'caller', answererTag: 'callee', fromCaller: false }],
    ['INVITE', true, 200, true, { kind: 'answer', offererTag: 'caller', answererTag: 'callee', fromCaller: false }],
    ['INVITE', false, 200, true, { kind: 'offer', offererTag: 'callee', answererTag: 'caller', fromCaller: false }],
    ['INVITE', true, 180, false, null],
    ['INVITE', true, 486, true, null],
    ['BYE', false, 200, true, null],
  ];
  for (const [method, requestSdp, status, responseSdp, step] of cases) {
    const response = createResponse({ status, headers: headers('caller', 'callee', responseSdp), body: responseSdp ? SDP : undefined });
    assert.deepEqual(responseSdpStep(requestOf(method, 'caller', '', requestSdp), response, true), step, `${status} to ${method}`);
  }
});
