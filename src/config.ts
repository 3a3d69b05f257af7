import os from 'node:os';
import path from 'node:path';

/** Where the data lives: an embedded SQLite file, or a PostgreSQL server shared by several instances. */
export type DatabaseConfig =
  | { kind: 'sqlite'; file: string }
  | { kind: 'postgres'; url: string };

export interface Config {
  http: { host: string; port: number; bodyLimitBytes: number };
  sip: { host: string; port: number; publicHost: string; t1Ms: number };
  database: DatabaseConfig;
  /** 32 bytes, or null when it should be generated into the SQLite data folder. */
  secretKey: Buffer | null;
  agentRuntimeUri: string | null;
  runtimeAddresses: string[];
  logLevel: string;
  /** Registration with SIP providers (CONTRACT 4, src/registration/). */
  registration: {
    /** How long an instance's claim on a registration lasts without renewal. */
    leaseSeconds: number;
    /** First retry after a failure; doubles per failure (with jitter) up to retryCapMs. */
    retryBaseMs: number;
    retryCapMs: number;
    /** Expiry asked of registrars (they may grant less, or demand more with 423). */
    expiresSeconds: number;
  };
}

export class ConfigError extends Error {}

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

function list(raw: string | undefined): string[] {
  return (raw ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
}

/** Reads the environment once, at start; everything else receives the typed result. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const database = parseDatabase(env.DIALPLANE_DB);
  const secretKey = parseSecretKey(env.DIALPLANE_SECRET_KEY);
  const sipHost = env.DIALPLANE_SIP_HOST || '0.0.0.0';
  if (database.kind === 'postgres' && secretKey === null) {
    throw new ConfigError('DIALPLANE_SECRET_KEY is required with a PostgreSQL database');
  }
  return {
    http: {
      host: env.DIALPLANE_HTTP_HOST || '127.0.0.1',
      port: port(env, 'DIALPLANE_HTTP_PORT', 8080),
      bodyLimitBytes: 256 * 1024,
    },
    sip: {
      host: sipHost,
      port: port(env, 'DIALPLANE_SIP_PORT', 5060),
      publicHost: env.DIALPLANE_SIP_PUBLIC_HOST || defaultPublicHost(sipHost),
      t1Ms: positiveInteger(env, 'DIALPLANE_SIP_T1_MS', 500),
    },
    database,
    secretKey,
    agentRuntimeUri: env.DIALPLANE_AGENT_RUNTIME_URI || null,
    runtimeAddresses: list(env.DIALPLANE_RUNTIME_ADDRESSES),
    logLevel: env.DIALPLANE_LOG_LEVEL || 'info',
    registration: {
      leaseSeconds: positiveInteger(env, 'DIALPLANE_REGISTRATION_LEASE_SECONDS', 30),
      retryBaseMs: positiveInteger(env, 'DIALPLANE_REGISTRATION_RETRY_BASE_MS', 30_000),
      retryCapMs: positiveInteger(env, 'DIALPLANE_REGISTRATION_RETRY_CAP_MS', 30 * 60_000),
      expiresSeconds: positiveInteger(env, 'DIALPLANE_REGISTRATION_EXPIRES', 3600),
    },
  };
}
