import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import pino from 'pino';
import { CallEvents } from './calls/call-events.ts';
import { CallRecorder } from './calls/records.ts';
import { EventNotifier } from './events/event-log.ts';
import { EventStreamHub } from './events/event-stream.ts';
import { WebhookDispatcher } from './webhooks/dispatcher.ts';
import { CallRecordRetention } from './calls/retention.ts';
import { TargetPolicy } from './common/addresses.ts';
import { OperatorError } from './common/errors.ts';
import type { Config } from './config.ts';
import type { Context } from './context.ts';
import { checkSecretKey, resolveSecretKey, SecretBox } from './credentials/secret-box.ts';
import { LocalChangeFeed, type ChangeFeed } from './db/changes.ts';
import { openDatabase, type DatabaseHandle } from './db/connection.ts';
import { migrateToLatest } from './db/migrations.ts';
import { PostgresChangeFeed } from './db/postgres-changes.ts';
import { lockForServer } from './db/server-lock.ts';
import { SipEdge } from './edge/sip-edge.ts';
import { TlsCredentials } from './tls/tls-credentials.ts';
import { FailedTargets } from './dns/failed-targets.ts';
import { SipResolver } from './dns/sip-resolver.ts';
import { TrunkProber } from './health/prober.ts';
import { DownTargets } from './health/trunk-health.ts';
import type { TransportProtocol } from './sip/transport.ts';
import { buildApp } from './http/app.ts';
import { RequestRate } from './http/request-rate.ts';
import { Metrics } from './metrics.ts';
import { NgClient } from './media/ng-client.ts';
import { RtpengineRelay } from './media/rtpengine-relay.ts';
import { resolveRtpengines } from './media/rtpengine-names.ts';
import { NumberRowCache } from './numbers/number-cache.ts';
import { ensureDefaultOrg, type NewOrg } from './orgs/orgs.ts';
import { RegistrationManager } from './registration/manager.ts';
import { RoutingIndex, systemResolver } from './inbound/routing-index.ts';
import { deriveSigningKey } from './sip/dialog-signer.ts';

export interface RunningServer {
  app: FastifyInstance;
  /** The server's logger: lines go out in batches; `flush` sends what waits. */
  log: pino.Logger;
  ctx: Context;
  database: DatabaseHandle;
  /** Set when this start created the `default` organization (once the server was serving). */
  defaultOrg: NewOrg | null;
  httpPort: number;
  /** The SIP edge's port (UDP and TCP). */
  sipPort: number;
  /** The SIP edge's TLS port; null without a certificate (no listener). */
  sipTlsPort: number | null;
  /** Reads the TLS certificate, key and CA files again (SIGHUP); new connections use them. */
  reloadTls(): void;
  edge: SipEdge;
  /** Keeps numbers with `registration: true` registered (docs/registration.md). */
  registrations: RegistrationManager;
  /**
   * Graceful: new calls get 503, HTTP requests and INVITEs in flight get their answers (the
   * latter within DIALPLANE_SHUTDOWN_DRAIN_SECONDS), registrations are unREGISTERed, call records
   * written, then everything closes and a last log line says so.
   */
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

/** How long a log line may wait in the buffer when few are written. */
const LOG_FLUSH_MS = 500;
/** Lines are written in batches of about this many octets. */
const LOG_BATCH_BYTES = 4096;

/**
 * pino's ISO time without formatting a Date per line: a line costs a few microseconds, and at
 * one line per request `toISOString` was a good part of them. The second's text is kept and the
 * milliseconds appended.
 */
function isoTimestamps(): () => string {
  let second = -1;
  let prefix = '';
  return () => {
    const now = Date.now();
    const current = Math.floor(now / 1000);
    if (current !== second) {
      second = current;
      prefix = new Date(current * 1000).toISOString().slice(0, 20);
    }
    return `,"time":"${prefix}${String(now - current * 1000).padStart(3, '0')}Z"`;
  };
}

/**
 * JSON lines with ISO timestamps on stdout, written in batches (one system call for many lines,
 * not one per request) and flushed at least every LOG_FLUSH_MS, and at shutdown.
 */
function createLogger(config: Config, options: StartOptions): pino.Logger {
  if (options.logger === false) return pino({ enabled: false });
  const destination = options.logger?.destination ?? pino.destination({ dest: 1, sync: false, minLength: LOG_BATCH_BYTES });
  const logger = pino({ level: options.logger?.level ?? config.logLevel, timestamp: isoTimestamps() }, destination);
  setInterval(() => logger.flush(), LOG_FLUSH_MS).unref();
  return logger;
}

/** A port that cannot be bound, said the way the operator can fix it. */
function bindError(variable: string, address: string, error: unknown): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') return new OperatorError(`${variable}: ${address} is in use by another process`, 1);
  if (code === 'EACCES') return new OperatorError(`${variable}: ${address} needs privileges this process does not have`, 2);
  if (code === 'EADDRNOTAVAIL') return new OperatorError(`${variable}: ${address} is not an address of this machine`, 2);
  return error;
}

export async function startServer(config: Config, options: StartOptions = {}): Promise<RunningServer> {
  const logger = createLogger(config, options);
  // What has started, stopped in reverse order if a later step fails.
  const started: Array<() => unknown> = [];
  const unwind = async () => {
    for (const stop of started.reverse()) await stop();
  };
  try {
    const database = openDatabase(config.database);
    started.push(() => database.close());
    if (config.database.kind === 'sqlite') started.push(lockForServer(config.database.file));
    await migrateToLatest(database);
    const secretKey = resolveSecretKey(config);
    await checkSecretKey(database.db, secretKey);
    const changes = await openChangeFeed(database, (error) => logger.warn({ err: error }, 'change feed connection'));
    started.push(() => changes.close());
    const targets = new TargetPolicy(config.targets.privateTargets);
    const events = new EventNotifier();
    const ctx: Context = {
      db: database.db,
      dialect: database.dialect,
      changes,
      secrets: new SecretBox(secretKey.key),
      events,
    };
    // On SQLite this process sees every write, so reads of a number may come from memory.
    const numberRows = database.dialect === 'sqlite' ? new NumberRowCache() : undefined;
    numberRows?.follow(changes);
    const metrics = new Metrics();
    const requestRate = new RequestRate();
    events.subscribe((types) => metrics.eventsWritten(types));
    const dispatcher = new WebhookDispatcher({
      db: ctx.db,
      secrets: ctx.secrets,
      policy: targets,
      config: config.webhooks,
      concurrentWriters: database.dialect === 'postgres',
      apiBusy: () => requestRate.busy(),
      observer: metrics,
      onError: (error) => logger.warn({ err: error }, 'webhook delivery'),
    });
    events.subscribe(() => dispatcher.wake());
    dispatcher.start();
    started.push(() => dispatcher.stop());
    const eventStream = new EventStreamHub(ctx.db, (error) => logger.warn({ err: error }, 'event stream'));
    events.subscribe(() => eventStream.wake());
    await eventStream.start();
    started.push(async () => eventStream.stop());
    const index = new RoutingIndex(ctx.db, systemResolver, (error) => logger.error({ err: error }, 'routing index update failed'));
    await index.start(changes);
    started.push(() => index.stop());
    const recorder = new CallRecorder(ctx.db, (error) => logger.error({ err: error }, 'call records not written'));
    started.push(() => recorder.flush());
    const callEvents = new CallEvents(ctx.db, events, (error) => logger.error({ err: error }, 'call events not written'));
    started.push(() => callEvents.flush());
    const retention = new CallRecordRetention(ctx.db, config.callRecordRetentionDays, (error) =>
      logger.error({ err: error }, 'old call records not deleted'),
    );
    retention.start();
    started.push(() => retention.stop());
    const tls = new TlsCredentials(config.sip.tls);
    const sipResolver = new SipResolver({ servers: config.sip.dnsServers });
    const failedTargets = new FailedTargets(config.sip.failedTargetSkipSeconds);
    const downTargets = new DownTargets();
    const resolve = async (host: string, port: number | null, transport: TransportProtocol) =>
      (await sipResolver.resolve(host, port, transport)).map((target) => ({
        transport: target.transport,
        host: target.address,
        port: target.port,
        serverName: target.host,
      }));
    // A trunk's name located (RFC 3263): addresses its health probes found down left out while
    // another is not, those that failed a call lately tried last.
    const locate = async (host: string, port: number | null, transport: TransportProtocol) =>
      failedTargets.order(downTargets.skipDown(await resolve(host, port, transport)));
    const media = anchoredMedia({ ...config.media, rtpengines: await resolveRtpengines(config.media.rtpengines) }, metrics, recorder);
    if (media) started.push(() => media.client.close());
    const sipEdge = new SipEdge({
      sip: config.sip,
      media: media?.relay,
      tls,
      // Derived from the secret every instance shares: any instance verifies what another signed.
      signingKey: deriveSigningKey(secretKey.key),
      targets,
      agentRuntimeUri: config.agentRuntimeUri,
      index,
      recorder,
      callEvents,
      observer: metrics,
      outbound: {
        ctx,
        runtimeAddresses: config.runtimeAddresses,
        locate: { destinations: locate, failed: failedTargets },
      },
      onError: (error) => logger.warn({ err: error }, 'SIP edge'),
      log: logger,
    });
    const sipPorts = await sipEdge.start().catch((error: unknown) => {
      const tlsPortTaken = tls.canServe && (error as { port?: number }).port === config.sip.tls.port && config.sip.tls.port !== config.sip.port;
      if (tlsPortTaken) throw bindError('DIALPLANE_SIP_TLS_PORT', `${config.sip.host}:${config.sip.tls.port}`, error);
      throw bindError('DIALPLANE_SIP_PORT', `${config.sip.host}:${config.sip.port}`, error);
    });
    started.push(() => sipEdge.stop());
    const edgeAddress = (transport: TransportProtocol) =>
      sipEdge.ports ? { host: sipEdge.publicHost, port: transport === 'tls' ? sipEdge.tlsPort : sipEdge.ports.udpPort } : null;
    const registrationManager = new RegistrationManager({
      ctx,
      edge: {
        transactions: () => sipEdge.transactions,
        locate: (host, transport) => locate(host, null, transport),
        address: edgeAddress,
        keepAlive: (destination) => sipEdge.keepAlive(destination),
        targetFailed: (destination) => failedTargets.failed(destination),
      },
      keepAliveMs: config.registration.keepAliveMs,
      observer: metrics,
      leaseMs: config.registration.leaseSeconds * 1000,
      retry: { baseMs: config.registration.retryBaseMs, capMs: config.registration.retryCapMs, jitter: 0.2 },
      expiresSeconds: config.registration.expiresSeconds,
      onError: (error) => logger.warn({ err: error }, 'registration'),
      onStatusWritten: (ids) => numberRows?.evict(ids),
    });
    started.push(() => registrationManager.stop());
    await registrationManager.start();
    const prober = new TrunkProber({
      db: ctx.db,
      changes,
      access: { transactions: () => sipEdge.transactions, address: edgeAddress, resolve },
      down: downTargets,
      intervalMs: config.trunkHealth.intervalMs,
      timeoutMs: config.trunkHealth.timeoutMs,
      observer: metrics,
      onError: (error) => logger.warn({ err: error }, 'trunk health'),
    });
    started.push(() => prober.stop());
    await prober.start();
    metrics.readFrom({ edge: () => sipEdge.stats, registrations: () => registrationManager.stats() });
    const app = await buildApp({
      ctx,
      metrics,
      targets: { policy: targets, minAllowedPrefix: config.targets.minAllowedPrefix },
      numberRows,
      activeCalls: { byCredentials: (id) => sipEdge.router.callsSettingUp(id) },
      requestRate,
      events: { hub: eventStream, secretGraceSeconds: config.webhooks.secretGraceSeconds, wake: () => dispatcher.wake() },
      authFailures: config.http.authFailures,
      bodyLimitBytes: config.http.bodyLimitBytes,
      logger,
      isReady: async () => {
        await sql`select 1`.execute(database.db);
        return sipEdge.ready;
      },
    });
    started.push(() => app.close());
    await app.listen({ host: config.http.host, port: config.http.port }).catch((error: unknown) => {
      throw bindError('DIALPLANE_HTTP_PORT', `${config.http.host}:${config.http.port}`, error);
    });
    const address = app.server.address();
    const httpPort = typeof address === 'object' && address ? address.port : config.http.port;
    // Only now, with everything serving: a start that failed earlier created no key nobody saw.
    const defaultOrg = await ensureDefaultOrg(database.db);
    let closing: Promise<void> | null = null;
    return {
      app,
      log: logger,
      ctx,
      database,
      defaultOrg,
      httpPort,
      sipPort: sipPorts.udpPort,
      sipTlsPort: sipPorts.tlsPort,
      reloadTls: () => {
        try {
          tls.reload();
          logger.info({ certificateExpires: tls.certificateExpires?.toISOString() ?? null }, 'TLS files reloaded');
        } catch (error) {
          logger.error({ err: error }, 'TLS files not reloaded; the previous ones stay in use');
        }
      },
      edge: sipEdge,
      registrations: registrationManager,
      close: () =>
        (closing ??= (async () => {
          // HTTP (the last thing started) and SIP drain together; then the rest stops in reverse
          // order of starting: unREGISTERs go out through the edge before it stops, call records
          // are written before the database closes.
          const closeHttp = started.pop()!;
          await Promise.all([closeHttp(), sipEdge.drain(config.shutdownDrainMs)]);
          await unwind();
          logger.info('dialplane stopped');
          await new Promise<void>((resolve) => logger.flush(() => resolve()));
        })()),
    };
  } catch (error) {
    await unwind();
    throw error;
  }
}

/**
 * The media relay when rtpengines are configured (docs/media.md): its commands and each call's
 * figures are counted, and an answered call's figures go onto its record.
 */
function anchoredMedia(config: Config['media'], metrics: Metrics, recorder: CallRecorder) {
  if (config.rtpengines.length === 0) return null;
  const client = new NgClient({ timeoutMs: config.timeoutMs });
  const relay = new RtpengineRelay(config, client, {
    ngCommand: (command, outcome) => metrics.ngCommand(command, outcome),
    callMediaEnded: (callId, totals, answered) => {
      metrics.callMediaEnded(callId, totals);
      // Only an answered call's record has media figures; a failed one's would match no record.
      if (answered)
        recorder.recordMedia(
          callId,
          totals === null ? { statistics: 'missing', fromCaller: null, fromCallee: null } : { statistics: 'collected', ...totals },
        );
    },
  });
  return { client, relay };
}
