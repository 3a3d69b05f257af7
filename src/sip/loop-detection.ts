/**
 * Loop detection (RFC 3261 §16.3 item 4, §16.6 step 8). The hash covers what identifies a
 * request at this hop except the top Via, which differs at every hop and would defeat the check.
 * Our branches start with it (plus a counter, so forwarded requests still get unique branches):
 * a request that carries a Via of ours with its own hash has come back unchanged.
 */
import { createHash } from 'node:crypto';
import type { SipRequest } from './message.ts';
import { parseVia } from './parse-via.ts';
import type { OwnAddresses } from './route-set.ts';
import { BRANCH_MAGIC_COOKIE } from './transaction-base.ts';

/** Length of the hash part of our branch (base64url characters, 96 bits). */
const BRANCH_HASH_LENGTH = 16;

/** The hash of a request, plus `extra` where a branch must differ per incoming transaction (a stateless ACK). */
export function requestHash(request: SipRequest, extra = ''): string {
  const { headers } = request;
  const key = `${request.method} ${request.uri}\n${headers.get('from')}\n${headers.get('to')}\n${headers.get('call-id')}\n${headers.get('cseq')}\n${headers.getAll('route').join(',')}\n${headers.getAll('proxy-require').join(',')}\n${headers.getAll('proxy-authorization').join(',')}\n${extra}`;
  return createHash('sha1').update(key).digest('base64url').slice(0, BRANCH_HASH_LENGTH);
}

/** Whether a Via of ours carries this request's hash in its branch: the request came back unchanged. */
export function isLoop(request: SipRequest, hash: string, addresses: OwnAddresses): boolean {
  const marker = `${BRANCH_MAGIC_COOKIE}${hash}.`;
  for (const value of request.headers.getAll('via')) {
    if (!value.includes(marker)) continue;
    const via = parseVia(value);
    if (via !== null && via.params.get('branch')?.startsWith(marker) === true && addresses.isUs(via.host, via.port)) return true;
  }
  return false;
}
