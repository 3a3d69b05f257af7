import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import type { Config } from './config.ts';
import type { Context } from './context.ts';
import { NumberRowCache } from './numbers/number-cache.ts';
import { LocalChangeFeed, type ChangeFeed } from './db/changes.ts';
import { PostgresChangeFeed } from './db/postgres-changes.ts';
import { openDatabase, type DatabaseHandle } from './db/connection.ts';
import { migrateToLatest } from './db/migrations.ts';
import { SecretBox, resolveSecretKey } from './credentials/secret-box.ts';
import pino from 'pino';
import { CallRecorder } from './calls/records.ts';
import { CallRecordRetention } from './calls/retention.ts';
import { TargetPolicy } from './common/addresses.ts';
import { SipEdge } from './edge/sip-edge.ts';
import { deriveSigningKey } from './sip/dialog-signer.ts';
import { RoutingIndex, systemResolver } from './routing/routing-index.ts';
import { buildApp } from './http/app.ts';
import { Metrics } from './http/metrics.ts';
import { ensureDefaultOrg, type NewOrg } from './orgs/orgs.ts';
import { RegistrationManager } from './registration/manager.ts';

export interface RunningServer {
  app: FastifyInstance;
  ctx: Context;
  database: DatabaseHandle;
  /** Set when this start created the `default` organization. */
  defaultOrg: NewOrg | null;
  httpPort: number;
  /** The SIP edge's port (UDP and TCP). */
  sipPort: number;
  edge: SipEdge;
  /** Keeps numbers with `registration: true` registered (CONTRACT 4). */
  registrations: RegistrationManager;
  /** Graceful: stop accepting, let in-flight requests finish, then close the database. */
  close(): Promise<void>;
}

export interface StartOptions {
  /** Logger settings; false silences it (tests). */
  logger?: false | { level: string; destination?: pino.DestinationStream };
}

async function openChangeFeed(database: DatabaseHandle, onError: (error: unknown) => void): Promise<ChangeFeed> {
  if (database.config.kind === 'sqlite') return new LocalChangeFeed();
  const feed = new PostgresChangeFeed(database.config.url, onError, (pid) => database.isOwnBackend(pid));
  await feed.start();
  return feed;
}

export async function startServer(config: Config, options: StartOptions = {}): Promise<RunningServer> {
  const database = openDatabase(config.database);
  let changes: ChangeFeed | null = null;
  let edge: SipEdge | null = null;
  let registrations: RegistrationManager | null = null;
  const logger =
    options.logger === false
      ? pino({ enabled: false })
      : pino({ level: options.logger?.level ?? config.logLevel }, options.logger?.destination ?? pino.destination(1));
  try {
    await migrateToLatest(database);
    const defaultOrg = await ensureDefaultOrg(database.db);
    changes = await openChangeFeed(database, (error) => logger.warn({ err: error }, 'change feed connection'));
    const secretKey = resolveSecretKey(config);
    const targets = new TargetPolicy(config.targets.privateTargets);
    const ctx: Context = {
      db: database.db,
      dialect: database.dialect,
      changes,
      secrets: new SecretBox(secretKey),
      // On SQLite this process sees every write, so reads of a number may come from memory.
      numberRows: database.dialect === 'sqlite' ? new NumberRowCache() : undefined,
    };
    ctx.numberRows?.follow(changes);
    const metrics = new Metrics();
    const index = new RoutingIndex(ctx.db, systemResolver, (error) => logger.error({ err: error }, 'routing index update failed'));
    await index.start(changes);
    const recorder = new CallRecorder(ctx.db, (error) => logger.error({ err: error }, 'call records not written'));
    const retention = new CallRecordRetention(ctx.db, config.callRecordRetentionDays, (error) => logger.error({ err: error }, 'old call records not deleted'));
    retention.start();
    const sipEdge = new SipEdge({
      sip: config.sip,
      // Derived from the secret every instance shares: any instance verifies what another signed.
      signingKey: deriveSigningKey(secretKey),
      targets,
      agentRuntimeUri: config.agentRuntimeUri,
      index,
      recorder,
      metrics,
      outbound: { ctx, runtimeAddresses: config.runtimeAddresses },
      onError: (error) => logger.warn({ err: error }, 'SIP edge'),
      warn: (details, message) => logger.warn(details, message),
    });
    edge = sipEdge;
    const sipPorts = await sipEdge.start();
    ctx.activeCalls = { byCredentials: (id) => sipEdge.router.callsSettingUp(id) };
    const registrationManager = new RegistrationManager({
      ctx,
      edge: {
        transactions: () => sipEdge.transactions,
        address: () => (sipEdge.ports ? { host: sipEdge.publicHost, port: sipEdge.ports.udpPort } : null),
      },
      registry: metrics.registry,
      leaseMs: config.registration.leaseSeconds * 1000,
      retry: { baseMs: config.registration.retryBaseMs, capMs: config.registration.retryCapMs, jitter: 0.2 },
      expiresSeconds: config.registration.expiresSeconds,
      onError: (error) => logger.warn({ err: error }, 'registration'),
    });
    registrations = registrationManager;
    await registrationManager.start();
    const app = await buildApp({
      ctx,
      metrics,
      targets: { policy: targets, minAllowedPrefix: config.targets.minAllowedPrefix },
      authFailures: config.http.authFailures,
      bodyLimitBytes: config.http.bodyLimitBytes,
      logger,
      isReady: async () => {
        await sql`select 1`.execute(database.db);
        return sipEdge.ready;
      },
    });
    await app.listen({ host: config.http.host, port: config.http.port });
    const address = app.server.address();
    const httpPort = typeof address === 'object' && address ? address.port : config.http.port;
    let closing: Promise<void> | null = null;
    return {
      app,
      ctx,
      database,
      defaultOrg,
      httpPort,
      sipPort: sipPorts.udpPort,
      edge: sipEdge,
      registrations: registrationManager,
      close: () =>
        (closing ??= (async () => {
          await app.close();
          // unREGISTERs go out through the edge, so before it stops.
          await registrationManager.stop();
          await sipEdge.stop();
          index.stop();
          retention.stop();
          await recorder.flush();
          await ctx.changes.close();
          await database.close();
        })()),
    };
  } catch (error) {
    await registrations?.stop();
    await edge?.stop();
    await changes?.close();
    await database.close();
    throw error;
  }
}
