import client from 'prom-client';
import type { Config } from '../config.ts';
import type { CallAttempt, CallRecorder } from '../calls/records.ts';
import type { TargetPolicy } from '../common/addresses.ts';
import { TokenBuckets } from '../common/token-buckets.ts';
import type { Context } from '../context.ts';
import type { Metrics } from '../http/metrics.ts';
import { OutboundRouter, PRIVATE_HEADERS } from '../outbound/outbound-router.ts';
import { InboundRouter } from '../routing/inbound-router.ts';
import type { RoutingIndex } from '../routing/routing-index.ts';
import { DialogSigner } from '../sip/dialog-signer.ts';
import { SipProxy, type SourcePolicy } from '../sip/proxy.ts';
import type { TransactionLayer } from '../sip/transaction.ts';
import { SipTransportLayer } from '../sip/transport.ts';

export interface SipEdgeOptions {
  sip: Config['sip'];
  /** Keys the signatures on our Record-Route entries and branches; the same on every instance. */
  signingKey: Buffer;
  /** Where requests may be sent (tenant-chosen targets, names once resolved). */
  targets: TargetPolicy;
  agentRuntimeUri: string | null;
  index: RoutingIndex;
  recorder: CallRecorder;
  metrics: Metrics;
  /** Outbound calls from agent runtimes (CONTRACT 6); without it, every INVITE is routed as inbound. */
  outbound?: { ctx: Context; runtimeAddresses: readonly string[] };
  onError(error: unknown): void;
  /** One info line per call attempt; warnings an operator must see (a refused number capture). */
  log: EdgeLog;
}

export interface EdgeLog {
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
}

/** How long a caller should wait before trying a draining edge again (the 503's Retry-After). */
const DRAIN_RETRY_AFTER_SECONDS = 30;

/**
 * The SIP edge: UDP and TCP on one port, the transaction layer and the proxy core, with the
 * inbound router deciding where each new INVITE goes. socket → parser → admission → transaction
 * → proxy → routing decision → out. Admission (SECURITY.md) trusts trunk addresses (the
 * routing index knows them) and agent runtimes; everyone else gets stateless answers from a
 * per-source token bucket, and in-dialog requests need a Record-Route the edge signed.
 */
export class SipEdge {
  readonly router: InboundRouter;
  readonly outbound: OutboundRouter | null;
  private transport: SipTransportLayer | null = null;
  private proxy: SipProxy | null = null;
  private readonly rejected: client.Counter<'reason'>;
  private readonly sources: SourcePolicy;
  ports: { udpPort: number; tcpPort: number } | null = null;

  constructor(private readonly options: SipEdgeOptions) {
    const registers = [options.metrics.registry];
    const invites = new client.Counter({
      name: 'dialplane_sip_invites_total',
      help: 'INVITEs at the SIP edge by direction and outcome.',
      labelNames: ['direction', 'outcome'],
      registers,
    });
    const decisions = new client.Histogram({
      name: 'dialplane_sip_routing_decision_seconds',
      help: 'Time to take the inbound routing decision for one INVITE.',
      buckets: [0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.001, 0.01],
      registers,
    });
    this.rejected = new client.Counter({
      name: 'dialplane_sip_rejected_total',
      help: 'SIP messages refused at admission: unauthenticated (stateless 403), bad_signature, flood (dropped unanswered), forged_response, number_capture.',
      labelNames: ['reason'],
      registers,
    });
    const edge = this;
    new client.Gauge({
      name: 'dialplane_sip_active_transactions',
      help: 'SIP transactions in progress at the edge.',
      labelNames: ['side'],
      registers,
      collect() {
        const stats = edge.proxy?.stats;
        this.set({ side: 'server' }, stats?.activeServerTransactions ?? 0);
        this.set({ side: 'client' }, stats?.activeClientTransactions ?? 0);
      },
    });
    new client.Gauge({
      name: 'dialplane_sip_tcp_refusals',
      help: 'TCP connections and sends refused since start: per_source (connection cap), message_timeout, write_overflow, destination (refused target or outbound cap).',
      labelNames: ['reason'],
      registers,
      collect() {
        const stats = edge.transport?.stats;
        this.set({ reason: 'per_source' }, stats?.refusedConnections ?? 0);
        this.set({ reason: 'message_timeout' }, stats?.timedOutConnections ?? 0);
        this.set({ reason: 'write_overflow' }, stats?.overflowedConnections ?? 0);
        this.set({ reason: 'destination' }, stats?.refusedDestinations ?? 0);
      },
    });
    // Every call attempt the routers decided on: a record, a count and a log line.
    const finished = (attempt: CallAttempt) => {
      options.recorder.record(attempt);
      invites.inc({ direction: attempt.direction, outcome: attempt.outcome });
      options.log.info(
        {
          direction: attempt.direction,
          number: attempt.phoneNumber,
          agentId: attempt.agentId,
          outcome: attempt.outcome,
          status: attempt.statusCode,
          durationMs: Date.parse(attempt.endedTime) - Date.parse(attempt.startedTime),
          callId: attempt.callId,
        },
        'call',
      );
    };
    this.router = new InboundRouter(options.index, options.agentRuntimeUri, {
      decided: (seconds) => decisions.observe(seconds),
      finished,
      captureRefused: (number, linkedOrgId, closerOrgId) => {
        this.rejected.inc({ reason: 'number_capture' });
        options.log.warn({ number, linkedOrgId, closerOrgId }, 'inbound call refused: another organization’s trunk matches the caller more closely than the linked one');
      },
    });
    this.outbound = options.outbound ? new OutboundRouter(options.outbound.ctx, options.outbound.runtimeAddresses, { finished }) : null;
    const unknown = new TokenBuckets(options.sip.unknownSources);
    this.sources = {
      isTrusted: (address) => options.index.isTrunkAddress(address) || this.outbound?.isRuntime(address) === true,
      mayAnswer: (address) => unknown.take(address),
    };
  }

  get ready(): boolean {
    return this.ports !== null;
  }

  /** The proxy's transaction layer, shared by other transaction users (registration); null unless started. */
  get transactions(): TransactionLayer | null {
    return this.proxy?.transactions ?? null;
  }

  /** The address written into Via and Contact (DIALPLANE_SIP_PUBLIC_HOST). */
  get publicHost(): string {
    return this.options.sip.publicHost;
  }

  async start(): Promise<{ udpPort: number; tcpPort: number }> {
    const { sip, targets } = this.options;
    const transport = new SipTransportLayer({
      host: sip.host,
      port: sip.port,
      maxTcpConnections: sip.tcp.maxConnections,
      maxTcpConnectionsPerSource: sip.tcp.maxConnectionsPerSource,
      maxOutboundTcpConnections: sip.tcp.maxOutbound,
      maxOutboundTcpConnectionsPerHost: sip.tcp.maxOutboundPerHost,
      tcpMessageTimeoutMs: sip.tcp.messageTimeoutMs,
      // A malformed request is answered like any other unauthenticated one: within the source's bucket.
      mayAnswer: (source) => this.sources.isTrusted(source.address) || this.sources.mayAnswer(source.address),
      destinationRefusal: (address) => targets.refusal(address),
      onMessage: (message, source) => this.proxy?.receive(message, source),
      onError: (error) => this.options.onError(error),
    });
    const ports = await transport.listen();
    this.transport = transport;
    this.proxy = new SipProxy({
      transport,
      host: sip.publicHost,
      port: ports.udpPort,
      aliases: [sip.host, ...sip.aliases],
      signer: new DialogSigner(this.options.signingKey, { maxDialogSeconds: sip.dialogMaxSeconds }),
      sources: this.sources,
      privateHeaders: PRIVATE_HEADERS,
      onRejected: (reason) => this.rejected.inc({ reason }),
      // RFC 3261's defaults are T1 500 ms, T2 4 s, T4 5 s, D 32 s: all scale with the configured T1.
      timers: { t1: sip.t1Ms, t2: 8 * sip.t1Ms, t4: 10 * sip.t1Ms, timerD: 64 * sip.t1Ms },
      // INVITEs from an agent runtime carrying X-Dialplane-Agent-Id are outbound calls; the rest
      // is inbound (a trunk's forged X-Dialplane-Agent-Id is removed like any other).
      route: (request, source) =>
        this.outbound?.isRuntime(source.address) === true && OutboundRouter.isOutbound(request)
          ? this.outbound.route(request, source)
          : this.router.route(request, source),
      onInitialRequestDone: (record) => {
        if (this.outbound?.done(record) !== true) this.router.done(record);
      },
      onError: (error) => this.options.onError(error),
    });
    this.ports = ports;
    return ports;
  }

  /**
   * Graceful shutdown, first step: new calls get 503 with Retry-After (another instance takes
   * them), while INVITEs already forwarded get their final responses and dialogs go on.
   * Resolves once no INVITE awaits its final response, or after `timeoutMs`.
   */
  async drain(timeoutMs: number): Promise<void> {
    await this.proxy?.drain(timeoutMs, DRAIN_RETRY_AFTER_SECONDS);
  }

  async stop(): Promise<void> {
    this.ports = null;
    this.proxy?.close();
    this.proxy = null;
    await this.transport?.close();
    this.transport = null;
  }
}
