import client from 'prom-client';
import type { Config } from '../config.ts';
import type { CallRecorder } from '../calls/records.ts';
import type { Context } from '../context.ts';
import type { Metrics } from '../http/metrics.ts';
import { OutboundRouter, PRIVATE_HEADERS } from '../outbound/outbound-router.ts';
import { InboundRouter } from '../routing/inbound-router.ts';
import type { RoutingIndex } from '../routing/routing-index.ts';
import { SipProxy } from '../sip/proxy.ts';
import type { TransactionLayer } from '../sip/transaction.ts';
import { SipTransportLayer } from '../sip/transport.ts';

export interface SipEdgeOptions {
  sip: Config['sip'];
  agentRuntimeUri: string | null;
  index: RoutingIndex;
  recorder: CallRecorder;
  metrics: Metrics;
  /** Outbound calls from agent runtimes (CONTRACT 6); without it, every INVITE is routed as inbound. */
  outbound?: { ctx: Context; runtimeAddresses: readonly string[] };
  onError(error: unknown): void;
}

/**
 * The SIP edge: UDP and TCP on one port, the transaction layer and the proxy core, with the
 * inbound router deciding where each new INVITE goes. socket → parser → transaction → proxy →
 * routing decision → out.
 */
export class SipEdge {
  readonly router: InboundRouter;
  readonly outbound: OutboundRouter | null;
  private transport: SipTransportLayer | null = null;
  private proxy: SipProxy | null = null;
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
    this.router = new InboundRouter(options.index, options.agentRuntimeUri, options.recorder, {
      decided: (seconds) => decisions.observe(seconds),
      finished: (outcome) => invites.inc({ direction: 'inbound', outcome }),
    });
    this.outbound = options.outbound
      ? new OutboundRouter(options.outbound.ctx, options.outbound.runtimeAddresses, options.recorder, {
          finished: (outcome) => invites.inc({ direction: 'outbound', outcome }),
        })
      : null;
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
    const { sip } = this.options;
    const transport = new SipTransportLayer({
      host: sip.host,
      port: sip.port,
      onMessage: (message, source) => this.proxy?.receive(message, source),
      onError: (error) => this.options.onError(error),
    });
    const ports = await transport.listen();
    this.transport = transport;
    this.proxy = new SipProxy({
      transport,
      host: sip.publicHost,
      port: ports.udpPort,
      aliases: [sip.host],
      // RFC 3261's defaults are T1 500 ms, T2 4 s, T4 5 s, D 32 s: all scale with the configured T1.
      timers: { t1: sip.t1Ms, t2: 8 * sip.t1Ms, t4: 10 * sip.t1Ms, timerD: 64 * sip.t1Ms },
      // INVITEs carrying X-Dialplane-Agent-Id are agent runtimes' outbound calls; the rest is inbound.
      route: (request, source) =>
        this.outbound !== null && OutboundRouter.isOutbound(request) ? this.outbound.route(request, source) : this.router.route(request, source),
      onInitialRequestDone: (record) => {
        if (this.outbound?.done(record) !== true) this.router.done(record);
      },
      dialogRemoveHeaders: PRIVATE_HEADERS,
      onError: (error) => this.options.onError(error),
    });
    this.ports = ports;
    return ports;
  }

  async stop(): Promise<void> {
    this.ports = null;
    this.proxy?.close();
    this.proxy = null;
    await this.transport?.close();
    this.transport = null;
  }
}
