/**
 * A proxy's own addresses and what it does with Route headers: the Route processing of RFC 3261
 * §16.4 (which Routes name us, a strict router's Request-URI restored), the next hop of §16.6
 * steps 6 and 7, and the Record-Route entries it writes. `maddr` is never honoured: a sender
 * must not choose our next hop with it.
 */
import net from 'node:net';
import { parseNameAddr } from './parse-address.ts';
import { parseMaxForwards } from './parse-header.ts';
import type { SipRequest } from './message.ts';
import type { Destination, TransportProtocol } from './transport.ts';
import { formatHost, parseSipUri, type SipUri } from './uri.ts';

export const DEFAULT_SIP_PORT = 5060;
const DEFAULT_SIPS_PORT = 5061;
const DEFAULT_MAX_FORWARDS = 70;

/** Outcome of Route processing (§16.4) on the copy to forward. */
export interface RouteInfo {
  /** A Route naming us was removed, or the Request-URI restored from a strict router: the request is on a path we set up. */
  routedViaUs: boolean;
  /** The first of our URIs found (Route or strict-routed Request-URI): its parameters are the ones we record-routed. */
  ours: SipUri | null;
  /** The Request-URI addresses the proxy itself (host and port are ours, no user part). */
  addressedToUs: boolean;
}

/** Brackets stripped, lowercase, IPv6 in canonical form: a comparable host. */
function normalizeHost(host: string): string {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const lower = bare.toLowerCase();
  if (!net.isIPv6(lower)) return lower;
  return new net.SocketAddress({ address: lower, family: 'ipv6' }).address;
}

function hostPortKey(host: string, port: number): string {
  return `${normalizeHost(host)}|${port}`;
}

/** The port a URI without one means: 5061 for `sips:` and `;transport=tls`, else 5060 (RFC 3263 §4.2). */
function defaultPortOf(uri: SipUri): number {
  return uri.scheme === 'sips' || uri.params.get('transport')?.toLowerCase() === 'tls' ? DEFAULT_SIPS_PORT : DEFAULT_SIP_PORT;
}

/** `host`, `host:port`, `[v6]` or `[v6]:port` (a bare IPv6 address has no port). */
function parseHostPort(text: string, defaultPort: number): { host: string; port: number } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracketed) return { host: bracketed[1], port: bracketed[2] ? Number(bracketed[2]) : defaultPort };
  const colon = text.indexOf(':');
  if (colon === -1 || colon !== text.lastIndexOf(':')) return { host: text, port: defaultPort };
  return { host: text.slice(0, colon), port: Number(text.slice(colon + 1)) };
}

/** Which addresses mean this proxy, and the Via and Record-Route values it writes. */
export class OwnAddresses {
  /** `host:port` as written in our Via and Record-Route for UDP and TCP. */
  readonly viaHostPort: string;
  /** The same for TLS, which has a port of its own. */
  readonly #tlsHostPort: string;
  /** `host|port` keys of every address that means us. */
  readonly #keys: Set<string>;

  /**
   * `aliases`: `host` (with `port`, and `tlsPort`) or `host:port`, e.g. other instances behind
   * one name. `tlsPort`: where TLS is listened on (or would be), named in Via and Record-Route
   * of TLS legs.
   */
  constructor(host: string, port: number, aliases: readonly string[] = [], tlsPort: number = DEFAULT_SIPS_PORT) {
    this.viaHostPort = `${formatHost(host)}:${port}`;
    this.#tlsHostPort = `${formatHost(host)}:${tlsPort}`;
    this.#keys = new Set([hostPortKey(host, port), hostPortKey(host, tlsPort)]);
    for (const alias of aliases) {
      const parsed = parseHostPort(alias, port);
      this.#keys.add(hostPortKey(parsed.host, parsed.port));
      if (parseHostPort(alias, tlsPort).port === tlsPort) this.#keys.add(hostPortKey(parsed.host, tlsPort));
    }
  }

  /** `host:port` as written in our Via and Record-Route for a leg of `transport`. */
  hostPort(transport: TransportProtocol): string {
    return transport === 'tls' ? this.#tlsHostPort : this.viaHostPort;
  }

  isUs(host: string, port: number | null, defaultPort = DEFAULT_SIP_PORT): boolean {
    return this.#keys.has(hostPortKey(host, port ?? defaultPort));
  }

  isUriUs(uri: SipUri): boolean {
    return this.isUs(uri.host, uri.port, defaultPortOf(uri));
  }

  /** A URI with no user part at one of our addresses: the proxy itself, or a Route entry of ours. */
  isOwnUri(uri: SipUri | null): uri is SipUri {
    return uri !== null && uri.user === null && this.isUriUs(uri);
  }

  /**
   * Our Record-Route value for a leg of `transport`, with `params` (`;dpr=…;dps=…`) after `lr`.
   * A TLS leg is `sip:…;transport=tls` (RFC 5630 §3.1.3: `sips:` would promise TLS end to end).
   */
  recordRoute(transport: TransportProtocol, params = ''): string {
    if (transport === 'udp') return `<sip:${this.viaHostPort};lr${params}>`;
    return `<sip:${this.hostPort(transport)};transport=${transport};lr${params}>`;
  }

  /** Our URI that routed `request` here, without changing it: a strict-routed Request-URI, else the top Route if it names us. */
  routeThatBroughtIt(request: SipRequest): SipUri | null {
    const requestUri = parseSipUri(request.uri);
    if (this.isOwnUri(requestUri) && request.headers.has('route')) return requestUri;
    const top = request.headers.get('route');
    const uri = top === undefined ? null : parseSipUri(parseNameAddr(top)?.uri ?? '');
    return uri !== null && this.isUriUs(uri) ? uri : null;
  }

  /**
   * §16.4 on the copy to forward: restore the Request-URI after a strict router, then pop every
   * Route naming us (two after double record-routing). Null when a Route value is malformed.
   */
  processRoute(request: SipRequest): RouteInfo | null {
    let routedViaUs = false;
    let ours: SipUri | null = null;
    let requestUri = parseSipUri(request.uri);
    if (this.isOwnUri(requestUri)) {
      const routes = request.headers.getAll('route');
      if (routes.length > 0) {
        const last = parseNameAddr(routes[routes.length - 1]);
        if (last === null) return null;
        ours = requestUri;
        request.uri = last.uri;
        request.headers.set('route', routes.slice(0, -1));
        requestUri = parseSipUri(request.uri);
        routedViaUs = true;
      }
    }
    for (let top = request.headers.get('route'); top !== undefined; top = request.headers.get('route')) {
      const address = parseNameAddr(top);
      if (address === null) return null;
      const uri = parseSipUri(address.uri);
      if (uri === null || !this.isUriUs(uri)) break;
      request.headers.removeFirst('route');
      routedViaUs = true;
      ours ??= uri;
    }
    return { routedViaUs, ours, addressedToUs: this.isOwnUri(requestUri) };
  }
}

/**
 * Decrements Max-Forwards and resolves the next hop (§16.6 steps 3, 6, 7): the top Route if it
 * is a loose router, else (after a strict-router rewrite, or with no Route) the Request-URI.
 * Returns the status to answer instead when the next hop cannot be reached.
 */
export function prepareNextHop(request: SipRequest): Destination | 400 | 416 | 503 {
  const maxForwards = request.headers.get('max-forwards');
  request.headers.set('max-forwards', String(maxForwards === undefined ? DEFAULT_MAX_FORWARDS : (parseMaxForwards(maxForwards) ?? 1) - 1));
  let nextHop: SipUri | null;
  const topRoute = request.headers.get('route');
  if (topRoute !== undefined) {
    const routeUri = parseNameAddr(topRoute)?.uri;
    nextHop = routeUri === undefined ? null : parseSipUri(routeUri);
    if (nextHop === null || routeUri === undefined) return 400;
    if (!nextHop.params.has('lr')) {
      // Strict router: it receives the route in the Request-URI, the remote target goes last.
      request.headers.append('route', `<${request.uri}>`);
      request.headers.removeFirst('route');
      request.uri = routeUri;
    }
  } else {
    nextHop = parseSipUri(request.uri);
    if (nextHop === null) return 416;
  }
  const transport = nextHop.scheme === 'sips' ? 'tls' : (nextHop.params.get('transport')?.toLowerCase() ?? 'udp');
  if (transport !== 'udp' && transport !== 'tcp' && transport !== 'tls') return 503;
  return { transport, host: nextHop.host, port: nextHop.port ?? defaultPortOf(nextHop) };
}
