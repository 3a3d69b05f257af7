import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { TargetPolicy } from '../common/addresses.ts';

export interface SendResult {
  /** The HTTP status, or null when no response came. */
  status: number | null;
  durationMs: number;
  /** Why the attempt failed; null on a 2xx. */
  error: string | null;
}

/** Response bodies are read and dropped, up to this much: a receiver cannot make us hold more. */
const MAX_RESPONSE_BYTES = 64 * 1024;

/**
 * Connections to receivers are kept open between deliveries (a busy endpoint gets many):
 * resolving and checking the target happen when a connection is made.
 */
const agents = {
  'http:': new http.Agent({ keepAlive: true, maxSockets: 16, maxFreeSockets: 4, timeout: 30_000 }),
  'https:': new https.Agent({ keepAlive: true, maxSockets: 16, maxFreeSockets: 4, timeout: 30_000 }),
};

/**
 * POSTs one webhook. The target's addresses are checked against the operator's target rules
 * when they are resolved (a name cannot point at a refused address), redirects are never
 * followed, and the whole exchange ends after `timeoutMs`.
 */
export function postWebhook(url: URL, headers: Record<string, string>, body: string, timeoutMs: number, policy: TargetPolicy): Promise<SendResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const literalRefusal = net.isIP(host) === 0 ? null : policy.refusal(host);
  if (literalRefusal !== null) return Promise.resolve({ status: null, durationMs: 0, error: `the URL points at ${literalRefusal}` });
  const lookup: net.LookupFunction = (hostname, options, callback) =>
    dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, '', 0);
      const list = addresses;
      const refused = list.map((address) => policy.refusal(address.address)).find((why) => why !== null);
      if (refused) return callback(Object.assign(new Error(`${hostname} resolves to ${refused}`), { code: 'ETARGETREFUSED' }), '', 0);
      if (options.all) return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, list);
      return callback(null, list[0].address, list[0].family);
    });
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve) => {
    let settled = false;
    /** `keep`: the exchange completed, so its connection may serve the next delivery. */
    const finish = (result: Omit<SendResult, 'durationMs'>, keep = false) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!keep) request.destroy();
      resolve({ ...result, durationMs: elapsed() });
    };
    const request = client.request(
      url,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'dialplane-webhooks', 'content-length': Buffer.byteLength(body), ...headers },
        lookup,
        agent: url.protocol === 'https:' ? agents['https:'] : agents['http:'],
      },
      (response) => {
        const status = response.statusCode ?? 0;
        let received = 0;
        response.on('data', (chunk: Buffer) => {
          received += chunk.length;
          if (received > MAX_RESPONSE_BYTES) response.destroy();
        });
        const done = () => {
          const complete = response.complete;
          if (status >= 200 && status < 300) finish({ status, error: null }, complete);
          else if (status >= 300 && status < 400)
            finish({ status, error: `redirect to ${response.headers.location ?? '(no location)'} not followed` });
          else finish({ status, error: `HTTP ${status}` }, complete);
        };
        response.on('end', done);
        response.on('close', done);
        response.on('error', done);
      },
    );
    const timer = setTimeout(() => finish({ status: null, error: `no response within ${timeoutMs} ms` }), timeoutMs);
    request.on('error', (error: NodeJS.ErrnoException) => finish({ status: null, error: error.message || error.code || 'request failed' }));
    request.end(body);
  });
}
