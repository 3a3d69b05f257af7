import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseAddressOrCidr, type PrivateTargets } from './common/addresses.ts';
import { ConfigError } from './common/errors.ts';

/** Where the data lives: an embedded SQLite file, or a PostgreSQL server shared by several instances. */
export type DatabaseConfig = { kind: 'sqlite'; file: string } | { kind: 'postgres'; url: string };

/** How webhooks are delivered (src/webhooks/dispatcher.ts, docs/events.md). */
export interface WebhookDeliveryConfig {
  /** A request without a complete response by then is a failed attempt. */
  timeoutMs: number;
  /** The first retry's delay; each later one doubles (with jitter) up to retryCapMs. */
  retryBaseMs: number;
  retryCapMs: number;
  /** An event not delivered this long after it was written (or re-sent) is marked failed. */
  retryForMs: number;
  /** An endpoint whose every attempt has failed for this long is disabled. */
  disableAfterMs: number;
  /** How often due deliveries are looked for (besides at once after a local event). */
  pollMs: number;
  /** Requests in flight at once, per instance. */
  concurrency: number;
  /** Events (and finished deliveries) older than this are deleted; the event stream resumes within it. */
  retentionMs: number;
}

export interface RtpengineAddress {
  /** An IP address, or a DNS name the server resolves once at start (src/media/rtpengine-names.ts). */
  host: string;
  port: number;
  /** Its share of new calls, relative to the others'. */
  weight: number;
}

export interface MediaConfig {
  rtpengines: RtpengineAddress[];
  /** rtpengine's interface names for the carrier side and the agent side of a call; null: rtpengine's default interface. */
  carrierInterface: string | null;
  agentInterface: string | null;
  /** When no rtpengine takes a new call: refuse it (503) or let its media go directly between the parties. */
  fallback: 'reject' | 'direct';
  /** How long one ng command may take, retransmissions included. */
  timeoutMs: number;
}

export interface Config {
  http: {
    host: string;
    port: number;
    bodyLimitBytes: number;
    /** Failed authentications per source address: a burst, then this many a minute; past it 429. */
    authFailures: { burst: number; perMinute: number };
  };
  sip: {
    host: string;
    port: number;
    publicHost: string;
    t1Ms: number;
    /** Other `host` or `host:port` that also mean this edge (instances behind one name or address). */
    aliases: string[];
    /** How long a dialog's signed Record-Route is honoured: the longest call the edge relays. */
    dialogMaxSeconds: number;
    /** Answers to sources that are neither trunks nor runtimes: per source, a burst, then this many a second. */
    unknownSources: { burst: number; ratePerSecond: number };
    tcp: {
      maxConnections: number;
      maxConnectionsPerSource: number;
      maxOutbound: number;
      maxOutboundPerHost: number;
      messageTimeoutMs: number;
    };
    /** DNS servers (`ip` or `ip:port`) for locating trunks (RFC 3263); the system's when empty. */
    dnsServers: string[];
    /** How long a trunk address that failed is tried only after the others. */
    failedTargetSkipSeconds: number;
    /** SIP over TLS (docs/sip-edge.md, "TLS"): the listener runs only with a certificate. */
    tls: {
      port: number;
      certPath: string | null;
      keyPath: string | null;
      caPath: string | null;
      /** TLS handshakes from one source that is neither a trunk nor a runtime: a burst, then this many a second. */
      handshakes: { burst: number; ratePerSecond: number };
    };
  };
  /** Where tenants may aim the edge (agent sipUri, trunk server) and how broad a trunk's sources may be. */
  targets: {
    privateTargets: PrivateTargets;
    /** allowedAddresses blocks broader than these prefix lengths are refused. */
    minAllowedPrefix: { ipv4: number; ipv6: number };
  };
  /** Call records older than this are deleted. */
  callRecordRetentionDays: number;
  /** On SIGTERM, how long INVITEs already forwarded may take to get their final response. */
  shutdownDrainMs: number;
  database: DatabaseConfig;
  /** 32 bytes, or null when it should be generated into the SQLite data folder. */
  secretKey: Buffer | null;
  agentRuntimeUri: string | null;
  runtimeAddresses: string[];
  logLevel: string;
  /** Registration with SIP providers (docs/registration.md, src/registration/). */
  registration: {
    /** How long an instance's claim on a registration lasts without renewal. */
    leaseSeconds: number;
    /** First retry after a failure; doubles per failure (with jitter) up to retryCapMs. */
    retryBaseMs: number;
    retryCapMs: number;
    /** Expiry asked of registrars (they may grant less, or demand more with 423). */
    expiresSeconds: number;
    /** Keep-alive period of registrations' TCP and TLS connections. */
    keepAliveMs: number;
  };
  /** OPTIONS probes of credentials with healthCheck (docs/sip-edge.md, "Trunk health", src/health/). */
  trunkHealth: {
    intervalMs: number;
    /** A probe without a final response by then counts its target down. */
    timeoutMs: number;
  };
  /** Media anchoring through rtpengine (docs/media.md); off while `rtpengines` is empty. */
  media: MediaConfig;
  /** Webhook deliveries and the event log (docs/events.md). */
  webhooks: WebhookDeliveryConfig & {
    /** How long a rotated-out secret keeps signing, unless the rotation says otherwise. */
    secretGraceSeconds: number;
  };
}

const DEFAULT_DB_FILE = './data/dialplane.db';

function port(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > 65535) {
    throw new ConfigError(`${name} must be a port number (0..65535), got "${raw}"`);
  }
  return value;
}

function positiveInteger(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new ConfigError(`${name} must be a positive integer, got "${raw}"`);
  return value;
}

function positiveNumber(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new ConfigError(`${name} must be a positive number, got "${raw}"`);
  return value;
}

function prefixLength(env: NodeJS.ProcessEnv, name: string, fallback: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > max) throw new ConfigError(`${name} must be a prefix length (0..${max}), got "${raw}"`);
  return value;
}

function privateTargets(raw: string | undefined): PrivateTargets {
  const value = (raw ?? '').trim();
  if (value === '' || value === 'allow') return 'allow';
  if (value === 'deny') return 'deny';
  const blocks = list(value);
  const bad = blocks.filter((block) => parseAddressOrCidr(block) === null);
  if (bad.length > 0)
    throw new ConfigError(`DIALPLANE_PRIVATE_TARGETS must be allow, deny or a list of IPs/CIDRs; not an IP or CIDR: ${bad.join(', ')}`);
  return blocks;
}

/**
 * The address peers can reach us at, for Via and Record-Route: the SIP host itself, or when
 * that is a wildcard, this machine's first external IPv4 address (loopback when it has none).
 */
function defaultPublicHost(sipHost: string): string {
  if (sipHost !== '0.0.0.0' && sipHost !== '::') return sipHost;
  for (const addresses of Object.values(os.networkInterfaces())) {
    for (const address of addresses ?? []) {
      if (address.family === 'IPv4' && !address.internal) return address.address;
    }
  }
  return '127.0.0.1';
}

function parseDatabase(raw: string | undefined): DatabaseConfig {
  const value = raw && raw.trim() !== '' ? raw.trim() : DEFAULT_DB_FILE;
  if (/^postgres(ql)?:\/\//i.test(value)) return { kind: 'postgres', url: value };
  return { kind: 'sqlite', file: path.resolve(value) };
}

function parseSecretKey(raw: string | undefined): Buffer | null {
  if (raw === undefined || raw === '') return null;
  if (!/^[0-9a-fA-F]{64}$/.test(raw)) {
    throw new ConfigError('DIALPLANE_SECRET_KEY must be 32 bytes written as 64 hex characters');
  }
  return Buffer.from(raw, 'hex');
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function logLevel(raw: string | undefined): string {
  const value = raw === undefined || raw === '' ? 'info' : raw;
  if (!(LOG_LEVELS as readonly string[]).includes(value)) {
    throw new ConfigError(`DIALPLANE_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}; got "${value}"`);
  }
  return value;
}

/** DIALPLANE_DNS_SERVERS: `ip` or `ip:port` (IPv6 as `[ip]:port`), comma-separated. */
function dnsServers(raw: string | undefined): string[] {
  const servers = list(raw);
  for (const server of servers) {
    const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(server);
    const [address, portText] = bracketed ? [bracketed[1], bracketed[2]] : server.includes('.') ? server.split(':') : [server, undefined];
    const portOk = portText === undefined || (Number(portText) >= 1 && Number(portText) <= 65535);
    if (net.isIP(address ?? '') === 0 || !portOk) {
      throw new ConfigError(`DIALPLANE_DNS_SERVERS must list IP addresses, each with an optional port (ip, ip:port, [ipv6]:port), got "${server}"`);
    }
  }
  return servers;
}

/** A DNS name: dot-separated labels of letters, digits and inner hyphens (RFC 1123 §2.1). */
const DNS_NAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** `host:port[=weight]` entries (Kamailio's rtpengine_sock spelling), comma-separated; a host is an IP address or a DNS name. */
function rtpengines(raw: string | undefined): RtpengineAddress[] {
  return list(raw).map((entry) => {
    const match = /^(?:\[([^\]]+)\]|([^:=[\]]+)):(\d{1,5})(?:=(\d{1,3}))?$/.exec(entry);
    const host = match?.[1] ?? match?.[2] ?? '';
    const portNumber = Number(match?.[3]);
    const weight = match?.[4] === undefined ? 1 : Number(match[4]);
    const hostOk = match?.[1] !== undefined ? net.isIPv6(host) : net.isIP(host) !== 0 || (DNS_NAME.test(host) && !/^[\d.]+$/.test(host));
    if (match === null || !hostOk || portNumber < 1 || portNumber > 65535 || weight < 1) {
      throw new ConfigError(
        `DIALPLANE_RTPENGINE must list rtpengine ng addresses as host:port (an IP address or a DNS name) or [ipv6]:port, each with an optional =weight (1..999), got "${entry}"`,
      );
    }
    return { host, port: portNumber, weight };
  });
}

function interfaceName(env: NodeJS.ProcessEnv, name: string): string | null {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return null;
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(raw))
    throw new ConfigError(`${name} must be an rtpengine interface name (letters, digits, _ . -), got "${raw}"`);
  return raw;
}

function mediaFallback(raw: string | undefined): 'reject' | 'direct' {
  if (raw === undefined || raw === '' || raw === 'reject') return 'reject';
  if (raw === 'direct') return 'direct';
  throw new ConfigError(`DIALPLANE_MEDIA_FALLBACK must be reject or direct, got "${raw}"`);
}

function list(raw: string | undefined): string[] {
  return (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** Reads the environment once, at start; everything else receives the typed result. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const database = parseDatabase(env.DIALPLANE_DB);
  const secretKey = parseSecretKey(env.DIALPLANE_SECRET_KEY);
  const sipHost = env.DIALPLANE_SIP_HOST || '0.0.0.0';
  if (
    ((env.DIALPLANE_RTPENGINE_CARRIER_INTERFACE?.trim() || null) === null) !==
    ((env.DIALPLANE_RTPENGINE_AGENT_INTERFACE?.trim() || null) === null)
  ) {
    throw new ConfigError('DIALPLANE_RTPENGINE_CARRIER_INTERFACE and DIALPLANE_RTPENGINE_AGENT_INTERFACE go together: set both or neither');
  }
  if (database.kind === 'postgres' && secretKey === null) {
    throw new ConfigError('DIALPLANE_SECRET_KEY is required with a PostgreSQL database');
  }
  return {
    http: {
      host: env.DIALPLANE_HTTP_HOST || '127.0.0.1',
      port: port(env, 'DIALPLANE_HTTP_PORT', 8080),
      bodyLimitBytes: 256 * 1024,
      authFailures: {
        burst: positiveInteger(env, 'DIALPLANE_HTTP_AUTH_FAILURE_BURST', 20),
        perMinute: positiveNumber(env, 'DIALPLANE_HTTP_AUTH_FAILURES_PER_MINUTE', 10),
      },
    },
    sip: {
      host: sipHost,
      port: port(env, 'DIALPLANE_SIP_PORT', 5060),
      publicHost: env.DIALPLANE_SIP_PUBLIC_HOST || defaultPublicHost(sipHost),
      t1Ms: positiveInteger(env, 'DIALPLANE_SIP_T1_MS', 500),
      aliases: list(env.DIALPLANE_SIP_ALIASES),
      dialogMaxSeconds: positiveInteger(env, 'DIALPLANE_SIP_DIALOG_MAX_SECONDS', 86_400),
      unknownSources: {
        burst: positiveInteger(env, 'DIALPLANE_SIP_UNKNOWN_SOURCE_BURST', 20),
        ratePerSecond: positiveNumber(env, 'DIALPLANE_SIP_UNKNOWN_SOURCE_RATE', 5),
      },
      tcp: {
        maxConnections: positiveInteger(env, 'DIALPLANE_SIP_TCP_MAX_CONNECTIONS', 10_000),
        maxConnectionsPerSource: positiveInteger(env, 'DIALPLANE_SIP_TCP_MAX_PER_SOURCE', 64),
        maxOutbound: positiveInteger(env, 'DIALPLANE_SIP_TCP_MAX_OUTBOUND', 1_000),
        maxOutboundPerHost: positiveInteger(env, 'DIALPLANE_SIP_TCP_MAX_OUTBOUND_PER_HOST', 16),
        messageTimeoutMs: positiveInteger(env, 'DIALPLANE_SIP_TCP_MESSAGE_TIMEOUT_MS', 10_000),
      },
      dnsServers: dnsServers(env.DIALPLANE_DNS_SERVERS),
      failedTargetSkipSeconds: positiveInteger(env, 'DIALPLANE_SIP_FAILED_TARGET_SKIP_SECONDS', 30),
      tls: {
        port: port(env, 'DIALPLANE_SIP_TLS_PORT', 5061),
        certPath: env.DIALPLANE_SIP_TLS_CERT || null,
        keyPath: env.DIALPLANE_SIP_TLS_KEY || null,
        caPath: env.DIALPLANE_SIP_TLS_CA || null,
        handshakes: {
          burst: positiveInteger(env, 'DIALPLANE_SIP_TLS_HANDSHAKE_BURST', 20),
          ratePerSecond: positiveNumber(env, 'DIALPLANE_SIP_TLS_HANDSHAKE_RATE', 2),
        },
      },
    },
    targets: {
      privateTargets: privateTargets(env.DIALPLANE_PRIVATE_TARGETS),
      minAllowedPrefix: {
        ipv4: prefixLength(env, 'DIALPLANE_ALLOWED_ADDRESSES_MIN_PREFIX_V4', 16, 32),
        ipv6: prefixLength(env, 'DIALPLANE_ALLOWED_ADDRESSES_MIN_PREFIX_V6', 32, 128),
      },
    },
    callRecordRetentionDays: positiveInteger(env, 'DIALPLANE_CALL_RECORD_RETENTION_DAYS', 30),
    shutdownDrainMs: positiveInteger(env, 'DIALPLANE_SHUTDOWN_DRAIN_SECONDS', 10) * 1000,
    database,
    secretKey,
    agentRuntimeUri: env.DIALPLANE_AGENT_RUNTIME_URI || null,
    runtimeAddresses: list(env.DIALPLANE_RUNTIME_ADDRESSES),
    logLevel: logLevel(env.DIALPLANE_LOG_LEVEL),
    registration: {
      leaseSeconds: positiveInteger(env, 'DIALPLANE_REGISTRATION_LEASE_SECONDS', 30),
      retryBaseMs: positiveInteger(env, 'DIALPLANE_REGISTRATION_RETRY_BASE_MS', 30_000),
      retryCapMs: positiveInteger(env, 'DIALPLANE_REGISTRATION_RETRY_CAP_MS', 30 * 60_000),
      expiresSeconds: positiveInteger(env, 'DIALPLANE_REGISTRATION_EXPIRES', 3600),
      keepAliveMs: positiveNumber(env, 'DIALPLANE_REGISTRATION_KEEPALIVE_SECONDS', 60) * 1000,
    },
    trunkHealth: {
      intervalMs: positiveNumber(env, 'DIALPLANE_TRUNK_HEALTH_INTERVAL_SECONDS', 30) * 1000,
      timeoutMs: positiveNumber(env, 'DIALPLANE_TRUNK_HEALTH_TIMEOUT_SECONDS', 5) * 1000,
    },
    media: {
      rtpengines: rtpengines(env.DIALPLANE_RTPENGINE),
      carrierInterface: interfaceName(env, 'DIALPLANE_RTPENGINE_CARRIER_INTERFACE'),
      agentInterface: interfaceName(env, 'DIALPLANE_RTPENGINE_AGENT_INTERFACE'),
      fallback: mediaFallback(env.DIALPLANE_MEDIA_FALLBACK),
      timeoutMs: positiveNumber(env, 'DIALPLANE_RTPENGINE_TIMEOUT_MS', 1000),
    },
    webhooks: {
      timeoutMs: positiveNumber(env, 'DIALPLANE_WEBHOOK_TIMEOUT_SECONDS', 10) * 1000,
      retryBaseMs: positiveNumber(env, 'DIALPLANE_WEBHOOK_RETRY_BASE_SECONDS', 5) * 1000,
      retryCapMs: positiveNumber(env, 'DIALPLANE_WEBHOOK_RETRY_CAP_SECONDS', 3600) * 1000,
      retryForMs: positiveNumber(env, 'DIALPLANE_WEBHOOK_RETRY_HOURS', 24) * 3600_000,
      disableAfterMs: positiveNumber(env, 'DIALPLANE_WEBHOOK_DISABLE_AFTER_HOURS', 120) * 3600_000,
      pollMs: positiveNumber(env, 'DIALPLANE_WEBHOOK_POLL_SECONDS', 1) * 1000,
      concurrency: positiveInteger(env, 'DIALPLANE_WEBHOOK_CONCURRENCY', 32),
      retentionMs: positiveNumber(env, 'DIALPLANE_EVENT_RETENTION_HOURS', 72) * 3600_000,
      secretGraceSeconds: Math.round(positiveNumber(env, 'DIALPLANE_WEBHOOK_SECRET_GRACE_HOURS', 24) * 3600),
    },
  };
}
