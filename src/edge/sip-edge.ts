import type { Config } from '../config.ts';
import type { CallEvents, StartedCall } from '../calls/call-events.ts';
import type { CallAttempt, CallRecorder } from '../calls/records.ts';
import type { CallDirection, CallOutcome } from '../calls/schemas.ts';
import { sourceOwner, type TargetPolicy } from '../common/addresses.ts';
import { TokenBuckets } from '../common/token-buckets.ts';
import type { Context } from '../context.ts';
import { DIALPLANE_HEADERS } from '../common/dialplane-headers.ts';
import { OutboundRouter, type OutboundLocator } from '../outbound/outbound-router.ts';
import { InboundRouter } from '../inbound/inbound-router.ts';
import type { RoutingIndex } from '../inbound/routing-index.ts';
import { DialogSigner } from '../sip/dialog-signer.ts';
import type { SourcePolicy } from '../sip/admission.ts';
import type { MediaRelay } from '../sip/media-relay.ts';
import { SipProxy } from '../sip/proxy.ts';
import type { TransactionLayer } from '../sip/transaction.ts';
import { SipTransportLayer, type Destination, type ListeningPorts, type TlsSockets, type TransportStats } from '../sip/transport.ts';

export interface SipEdgeOptions {
  sip: Config['sip'];
  /** Keys the signatures on our Record-Route entries and branches; the same on every instance. */
  signingKey: Buffer;
  /** Where requests may be sent (tenant-chosen targets, names once resolved). */
  targets: TargetPolicy;
  /** The TLS side of connections (src/tls/): with a certificate the edge listens on the TLS port too. */
  tls: TlsSockets;
  agentRuntimeUri: string | null;
  index: RoutingIndex;
  recorder: CallRecorder;
  /** call.started, call.answered and call.ended (docs/events.md). */
  callEvents: CallEvents;
  observer: EdgeObserver;
  /** Anchors calls' media (docs/media.md); without it, media goes directly between the parties. */
  media?: MediaRelay;
  /** Outbound calls from agent runtimes (docs/outbound.md); without it, every INVITE is routed as inbound. */
  outbound?: { ctx: Context; runtimeAddresses: readonly string[]; locate: OutboundLocator };
  onError(error: unknown): void;
  /** One info line per call attempt; warnings an operator must see (a refused number capture). */
  log: EdgeLog;
}

/** What the edge reports for the metrics (metrics.ts implements it). */
export interface EdgeObserver {
  callFinished(direction: CallDirection, outcome: CallOutcome): void;
  /** Seconds the inbound routing decision took. */
  routingDecided(seconds: number): void;
  /** A message refused at admission, or a number capture refused (SECURITY.md). */
  rejected(reason: string): void;
}

/** The edge's state, read when metrics are scraped. */
export interface EdgeStats {
  activeServerTransactions: number;
  activeClientTransactions: number;
  transport: TransportStats;
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
  #transport: SipTransportLayer | null = null;
  #proxy: SipProxy | null = null;
  readonly #sources: SourcePolicy;
  ports: ListeningPorts | null = null;

  readonly #options: SipEdgeOptions;

  constructor(options: SipEdgeOptions) {
    this.#options = options;
    const { observer } = options;
    // Every call attempt the routers decided on: a record, a count and a log line.
    const finished = (attempt: CallAttempt) => {
      options.recorder.record(attempt);
      options.callEvents.finished(attempt);
      observer.callFinished(attempt.direction, attempt.outcome);
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
    const started = (call: StartedCall) => options.callEvents.started(call, new Date());
    this.router = new InboundRouter(
      options.index,
      options.agentRuntimeUri,
      {
        decided: (seconds) => observer.routingDecided(seconds),
        finished,
        started,
        captureRefused: (number, linkedOrgId, closerOrgId) => {
          observer.rejected('number_capture');
          options.log.warn(
            { number, linkedOrgId, closerOrgId },
            'inbound call refused: another organization’s trunk matches the caller more closely than the linked one',
          );
        },
      },
      options.media !== undefined,
    );
    this.outbound = options.outbound
      ? new OutboundRouter(options.outbound.ctx, options.outbound.runtimeAddresses, { finished, started }, options.outbound.locate, {
          relayAvailable: options.media !== undefined,
        })
      : null;
    const unknown = new TokenBuckets(options.sip.unknownSources);
    this.#sources = {
      isTrusted: (address) => options.index.isTrunkAddress(address) || this.outbound?.isRuntime(address) === true,
      mayAnswer: (address) => unknown.take(sourceOwner(address)),
    };
  }

  /** Transactions and transport counts; null unless started. */
  get stats(): EdgeStats | null {
    if (this.#proxy === null || this.#transport === null) return null;
    const { activeServerTransactions, activeClientTransactions } = this.#proxy.stats;
    return { activeServerTransactions, activeClientTransactions, transport: this.#transport.stats };
  }

  get ready(): boolean {
    return this.ports !== null;
  }

  /** The proxy's transaction layer, shared by other transaction users (registration); null unless started. */
  get transactions(): TransactionLayer | null {
    return this.#proxy?.transactions ?? null;
  }

  /** Keeps the TCP or TLS connection to `destination` open (a keep-alive); false when none is open. */
  keepAlive(destination: Destination): Promise<boolean> {
    return this.#transport?.keepAlive(destination) ?? Promise.resolve(false);
  }

  /** The address written into Via and Contact (DIALPLANE_SIP_PUBLIC_HOST). */
  get publicHost(): string {
    return this.#options.sip.publicHost;
  }

  /** Where the edge takes TLS: its listener's port, or (without a certificate) the configured one. */
  get tlsPort(): number {
    return this.ports?.tlsPort ?? this.#options.sip.tls.port;
  }

  async start(): Promise<ListeningPorts> {
    const { sip, targets } = this.#options;
    const handshakes = new TokenBuckets(sip.tls.handshakes);
    const transport = new SipTransportLayer({
      host: sip.host,
      port: sip.port,
      tls: { sockets: this.#options.tls, listenPort: this.#options.tls.canServe ? sip.tls.port : null },
      maxTcpConnections: sip.tcp.maxConnections,
      maxTcpConnectionsPerSource: sip.tcp.maxConnectionsPerSource,
      maxOutboundTcpConnections: sip.tcp.maxOutbound,
      maxOutboundTcpConnectionsPerHost: sip.tcp.maxOutboundPerHost,
      tcpMessageTimeoutMs: sip.tcp.messageTimeoutMs,
      // A malformed request is answered like any other unauthenticated one: within the source's bucket.
      mayAnswer: (source) => this.#sources.isTrusted(source.address) || this.#sources.mayAnswer(source.address),
      mayHandshake: (address) => this.#sources.isTrusted(address) || handshakes.take(sourceOwner(address)),
      destinationRefusal: (address) => targets.refusal(address),
      onMessage: (message, source) => this.#proxy?.receive(message, source),
      onError: (error) => this.#options.onError(error),
    });
    const ports = await transport.listen();
    this.#transport = transport;
    this.#proxy = new SipProxy({
      transport,
      host: sip.publicHost,
      port: ports.udpPort,
      tlsPort: ports.tlsPort ?? sip.tls.port,
      aliases: [sip.host, ...sip.aliases],
      signer: new DialogSigner(this.#options.signingKey, { maxDialogSeconds: sip.dialogMaxSeconds }),
      sources: this.#sources,
      privateHeaders: [DIALPLANE_HEADERS],
      onRejected: (reason) => this.#options.observer.rejected(reason),
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
      media: this.#options.media,
      onInDialogRequest: (request) => {
        const callId = request.headers.get('call-id');
        if (request.method === 'BYE' && callId !== undefined)
          this.#options.callEvents.hungUp(callId).catch((error: unknown) => this.#options.onError(error as Error));
      },
      onError: (error) => this.#options.onError(error),
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
    await this.#proxy?.drain(timeoutMs, DRAIN_RETRY_AFTER_SECONDS);
  }

  async stop(): Promise<void> {
    this.ports = null;
    this.#proxy?.close();
    this.#proxy = null;
    await this.#transport?.close();
    this.#transport = null;
  }
}
