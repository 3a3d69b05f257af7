/**
 * One registration's REGISTER exchanges (RFC 3261 §10.2) over the edge's transaction layer:
 * one Call-ID and From tag for its whole life and a CSeq that only grows (§10.2.4), digest
 * answers to 401/407 through the shared DigestClient (RFC 8760 algorithms, qop auth, nonce
 * reuse with counting, stale=true), 423 Interval Too Brief answered once more with the
 * registrar's Min-Expires, and a 3xx followed once (its target kept for later refreshes).
 */
import { randomBytes } from 'node:crypto';
import { createRequest, SipHeaders, type SipRequest, type SipResponse } from '../sip/message.ts';
import { parseNameAddr } from '../sip/parse-address.ts';
import { parseExpires } from '../sip/parse-header.ts';
import { DigestClient, type DigestHeader } from '../sip/digest-client.ts';
import { transact } from '../sip/transact.ts';
import type { TransactionLayer } from '../sip/transaction.ts';
import { BRANCH_MAGIC_COOKIE, createTag } from '../sip/transaction-base.ts';
import type { Destination, TransportProtocol } from '../sip/transport.ts';
import { formatHost, formatUri, parseSipUri } from '../sip/uri.ts';
import { grantedExpiresSeconds } from './schedule.ts';
import type { RegistrationTarget } from './target.ts';

export type RegisterOutcome =
  | { kind: 'registered'; grantedSeconds: number; requestedSeconds: number }
  | { kind: 'unregistered' }
  | {
      kind: 'failed';
      /** A status line such as `403 Forbidden`; timeouts count as `408 Request Timeout` and unreachable registrars as `503 Service Unavailable` (RFC 3261 §8.1.3.1). */
      sipResponseMessage: string;
      errorDescription: string;
      /** For metrics: the status code, or `timeout` / `transport` / `auth`. */
      code: string;
      retryAfterSeconds: number | null;
    };

/** What the session needs from the edge. */
export interface EdgeAccess {
  transactions(): TransactionLayer | null;
  /** Public host and port written into Via and Contact for a request over `transport` (TLS has a port of its own). */
  address(transport: TransportProtocol): { host: string; port: number } | null;
  /** Where a registrar's name is (RFC 3263: NAPTR, SRV, addresses), best first; rejects when it does not resolve. Without it, the name goes to the transport as is. */
  locate?(host: string, transport: TransportProtocol): Promise<Destination[]>;
  /** Told of a registrar address that failed (transport error, timeout, 503): calls and later REGISTERs try it last. */
  targetFailed?(destination: Destination): void;
  /** Keeps the TCP or TLS connection to `destination` open; false when none is open any more. */
  keepAlive?(destination: Destination): Promise<boolean>;
}

/** Most 401/407 challenges answered within one attempt (a stale nonce or two, plus a proxy's). */
const MAX_CHALLENGES = 4;

function randomToken(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

function statusLine(response: SipResponse): string {
  return `${response.status} ${response.reason}`;
}

export class RegisterSession {
  readonly callId: string;
  readonly fromTag = createTag();
  #cseq = 1 + Math.floor(Math.random() * 1000);
  #digest: DigestClient | null;
  /** Where a 3xx sent us: kept for refreshes until a failure sends us back to the server. */
  #redirect: { destination: Destination; requestUri: string } | null = null;
  /** Expiry asked for: the configured one, raised by a 423's Min-Expires. */
  requestedSeconds: number;
  /** The Contact URI of our last REGISTER (the one to remove on unREGISTER). */
  contactUri: string | null = null;
  /** Where the last successful REGISTER went: over TCP or TLS, the connection the registrar sends its requests back on. */
  boundDestination: Destination | null = null;

  readonly #edge: EdgeAccess;

  constructor(
    readonly target: RegistrationTarget,
    password: string | null,
    edge: EdgeAccess,
    expiresSeconds: number,
  ) {
    this.#edge = edge;
    this.#digest = password === null ? null : new DigestClient({ username: target.username, password });
    this.requestedSeconds = expiresSeconds;
    const host = edge.address('udp')?.host ?? 'dialplane.invalid';
    this.callId = `${randomToken(12)}@${host}`;
  }

  /** Forgets a redirect target (after a failure: the next attempt starts at the server again). */
  resetRoute(): void {
    this.#redirect = null;
  }

  /** REGISTER with our Contact; `expires` 0 removes the binding (unREGISTER). */
  async register(unregister = false): Promise<RegisterOutcome> {
    const { target } = this;
    if (target.destination === null) {
      return {
        kind: 'failed',
        sipResponseMessage: '503 Service Unavailable',
        errorDescription: target.problem ?? 'no destination',
        code: 'transport',
        retryAfterSeconds: null,
      };
    }
    let destination = this.#redirect?.destination ?? target.destination;
    let requestUri = this.#redirect?.requestUri ?? target.requestUri;
    // The registrar's other addresses, tried in turn on a transport error, a timeout or a 503 (RFC 3263 §4.3).
    let untried: Destination[] = [];
    if (this.#redirect === null && target.located && this.#edge.locate !== undefined) {
      try {
        [destination, ...untried] = await this.#edge.locate(destination.host, destination.transport);
      } catch (error) {
        return {
          kind: 'failed',
          sipResponseMessage: '503 Service Unavailable',
          errorDescription: `The registrar's name ${destination.host} could not be resolved: ${(error as Error).message}`,
          code: 'dns',
          retryAfterSeconds: null,
        };
      }
    }
    let pendingAuth: DigestHeader[] | null = null;
    let challenges = 0;
    let intervalRetries = 0;
    let redirects = 0;
    for (;;) {
      const layer = this.#edge.transactions();
      const address = this.#edge.address(destination.transport);
      if (layer === null || address === null) {
        return {
          kind: 'failed',
          sipResponseMessage: '503 Service Unavailable',
          errorDescription: 'the SIP edge is not running',
          code: 'transport',
          retryAfterSeconds: null,
        };
      }
      const expires = unregister ? 0 : this.requestedSeconds;
      const request = this.#build(requestUri, destination, address, expires);
      const auth = pendingAuth ?? this.#digest?.authorize({ method: 'REGISTER', uri: requestUri }) ?? [];
      pendingAuth = null;
      for (const header of auth) request.headers.append(header.name, header.value);
      const result = await transact(layer, request, destination);
      this.boundDestination = null;
      const targetFailed = 'timeout' in result || 'error' in result || result.response.status === 503;
      if (targetFailed) this.#edge.targetFailed?.(destination);
      if (targetFailed && untried.length > 0) {
        destination = untried.shift()!;
        continue;
      }
      if ('timeout' in result) {
        return {
          kind: 'failed',
          sipResponseMessage: '408 Request Timeout',
          errorDescription: `No response from the registrar at ${formatHost(destination.host)}:${destination.port} over ${destination.transport} (timed out after ${Math.round((64 * layer.timers.t1) / 100) / 10} s)`,
          code: 'timeout',
          retryAfterSeconds: null,
        };
      }
      if ('error' in result) {
        return {
          kind: 'failed',
          sipResponseMessage: '503 Service Unavailable',
          errorDescription: transportFailure(destination, result.error),
          code: 'transport',
          retryAfterSeconds: null,
        };
      }
      const { response } = result;
      const status = response.status;
      if (status >= 200 && status < 300) {
        if (unregister) return { kind: 'unregistered' };
        this.boundDestination = destination;
        const granted = grantedExpiresSeconds(response.headers.getAll('contact'), response.headers.get('expires'), this.contactUri!, expires);
        if (granted === 0) {
          return {
            kind: 'failed',
            sipResponseMessage: statusLine(response),
            errorDescription: 'The registrar accepted the REGISTER but granted no time (expires 0)',
            code: String(status),
            retryAfterSeconds: null,
          };
        }
        return { kind: 'registered', grantedSeconds: granted, requestedSeconds: expires };
      }
      if (status === 401 || status === 407) {
        const header = status === 401 ? 'www-authenticate' : 'proxy-authenticate';
        if (this.#digest === null) {
          return {
            kind: 'failed',
            sipResponseMessage: statusLine(response),
            errorDescription: 'The registrar asks for authentication, but the credentials have no authPassword',
            code: 'auth',
            retryAfterSeconds: null,
          };
        }
        if (++challenges > MAX_CHALLENGES) {
          return {
            kind: 'failed',
            sipResponseMessage: statusLine(response),
            errorDescription: `The registrar kept challenging (${challenges - 1} answers sent)`,
            code: String(status),
            retryAfterSeconds: null,
          };
        }
        const outcome = this.#digest.handleChallenge(status, response.headers.getAll(header), { method: 'REGISTER', uri: requestUri });
        if (outcome.kind === 'authorize') {
          pendingAuth = outcome.headers;
          continue;
        }
        const why =
          outcome.kind === 'rejected'
            ? `The registrar rejected the credentials: ${outcome.message}`
            : `Cannot answer the registrar's challenge: ${outcome.error.message}`;
        return { kind: 'failed', sipResponseMessage: statusLine(response), errorDescription: why, code: String(status), retryAfterSeconds: null };
      }
      if (status === 423 && !unregister) {
        const minimum = parseExpires(response.headers.get('min-expires') ?? '');
        if (minimum !== null && minimum > expires && ++intervalRetries <= 2) {
          this.requestedSeconds = minimum;
          continue;
        }
        return {
          kind: 'failed',
          sipResponseMessage: statusLine(response),
          errorDescription: 'The registrar found the expiry too brief and gave no usable Min-Expires',
          code: '423',
          retryAfterSeconds: null,
        };
      }
      if (status >= 300 && status < 400) {
        const next = redirects === 0 ? redirectTarget(response, target.transport) : null;
        if (next !== null) {
          redirects++;
          this.#redirect = next;
          destination = next.destination;
          requestUri = next.requestUri;
          continue;
        }
        return {
          kind: 'failed',
          sipResponseMessage: statusLine(response),
          errorDescription:
            redirects === 0 ? 'The registrar redirected to no usable SIP address' : 'The registrar redirected again after one redirect was followed',
          code: String(status),
          retryAfterSeconds: null,
        };
      }
      const retryAfter = response.headers.get('retry-after');
      return {
        kind: 'failed',
        sipResponseMessage: statusLine(response),
        errorDescription: `The registrar refused the registration of ${target.aor}`,
        code: String(status),
        retryAfterSeconds: retryAfter === undefined ? null : parseExpires(retryAfter.split(/[;(\s]/)[0] ?? ''),
      };
    }
  }

  #build(requestUri: string, destination: Destination, address: { host: string; port: number }, expires: number): SipRequest {
    const transport = destination.transport.toUpperCase();
    this.contactUri ??= formatUri({
      scheme: 'sip',
      user: this.target.user,
      password: null,
      host: address.host,
      port: address.port,
      params: new Map(destination.transport === 'udp' ? [] : [['transport', destination.transport]]),
      headers: [],
    });
    const headers = new SipHeaders();
    // On a stream, `alias` (RFC 5923) asks the registrar to send its requests for us back over this connection.
    const alias = destination.transport === 'udp' ? '' : ';alias';
    headers.set(
      'Via',
      `SIP/2.0/${transport} ${formatHost(address.host)}:${address.port};branch=${BRANCH_MAGIC_COOKIE}${randomToken(10)};rport${alias}`,
    );
    headers.set('Max-Forwards', '70');
    headers.set('From', `<${this.target.aor}>;tag=${this.fromTag}`);
    headers.set('To', `<${this.target.aor}>`);
    headers.set('Call-ID', this.callId);
    headers.set('CSeq', `${this.#cseq++} REGISTER`);
    headers.set('Contact', expires === 0 ? `<${this.contactUri}>;expires=0` : `<${this.contactUri}>`);
    headers.set('Expires', String(expires));
    headers.set('User-Agent', 'dialplane');
    return createRequest({ method: 'REGISTER', uri: requestUri, headers });
  }
}

/** Why a REGISTER could not be sent; a TLS handshake that failed (a certificate not trusted, a name not matching) says so. */
function transportFailure(destination: Destination, error: Error): string {
  const where = `${formatHost(destination.host)}:${destination.port}`;
  const code = (error as NodeJS.ErrnoException).code ?? '';
  if (destination.transport === 'tls' && /CERT|TLS|SSL|ALTNAME|HANDSHAKE/i.test(`${code} ${error.message}`)) {
    return `TLS handshake with the registrar at ${where} failed (certificate or handshake): ${error.message}`;
  }
  return `Could not send REGISTER to ${where} over ${destination.transport}: ${error.message}`;
}

/** The first SIP Contact of a 3xx, as the next place to REGISTER. */
function redirectTarget(response: SipResponse, transport: 'udp' | 'tcp' | 'tls'): { destination: Destination; requestUri: string } | null {
  for (const value of response.headers.getAll('contact')) {
    const address = parseNameAddr(value);
    const uri = address === null ? null : parseSipUri(address.uri);
    if (uri === null || uri.scheme !== 'sip') continue;
    const param = uri.params.get('transport')?.toLowerCase();
    const next = param === 'tcp' || param === 'udp' || param === 'tls' ? param : transport;
    const requestUri = formatUri({ ...uri, user: null, password: null, params: new Map(), headers: [] });
    return { destination: { transport: next, host: uri.host, port: uri.port ?? (next === 'tls' ? 5061 : 5060) }, requestUri };
  }
  return null;
}
