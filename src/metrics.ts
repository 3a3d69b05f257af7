import client from 'prom-client';
import type { CallDirection, CallOutcome } from './calls/schemas.ts';
import type { EdgeObserver, EdgeStats } from './edge/sip-edge.ts';
import type { TrunkHealthObserver } from './health/prober.ts';
import type { TrunkHealth } from './health/schemas.ts';
import type { RegistrationObserver, RegistrationStats } from './registration/manager.ts';
import type { EventType } from './events/event-types.ts';
import type { WebhookObserver } from './webhooks/dispatcher.ts';
import type { MediaObserver } from './media/rtpengine-relay.ts';
import type { MediaTotals } from './media/media-totals.ts';
import type { NgFailure } from './media/ng-client.ts';

/** Where the gauges read the running parts' state at scrape time. */
export interface StatsSources {
  edge: () => EdgeStats | null;
  registrations: () => RegistrationStats;
}

/**
 * Every metric dialplane exports, registered here and nowhere else. The SIP edge and the
 * registration manager report through their small observer interfaces, which this implements;
 * gauges read the parts' stats when Prometheus scrapes. One registry per process (tests build
 * several servers in one process, so not prom-client's global one).
 */
export class Metrics implements EdgeObserver, RegistrationObserver, TrunkHealthObserver, WebhookObserver, MediaObserver {
  readonly registry = new client.Registry();
  readonly #httpDuration: client.Histogram<'method' | 'route' | 'status'>;
  readonly #invites: client.Counter<'direction' | 'outcome'>;
  readonly #decisions: client.Histogram;
  readonly #rejected: client.Counter<'reason'>;
  readonly #registrationFailures: client.Counter<'code'>;
  readonly #trunkUp: client.Gauge<'credentials_id'>;
  readonly #trunkTargetsUp: client.Gauge<'credentials_id'>;
  readonly #eventsWritten: client.Counter<'type'>;
  readonly #webhookAttempts: client.Counter<'result'>;
  readonly #webhookLatency: client.Histogram;
  readonly #webhookQueue: client.Gauge;
  readonly #ngCommands: client.Counter<'command' | 'outcome'>;
  readonly #mediaPackets: client.Counter<'from'>;
  readonly #mediaBytes: client.Counter<'from'>;
  readonly #mediaLost: client.Counter<'from'>;
  readonly #mediaMissing: client.Counter;
  #sources: StatsSources | null = null;

  constructor() {
    const registers = [this.registry];
    client.collectDefaultMetrics({ register: this.registry });
    this.#httpDuration = new client.Histogram({
      name: 'dialplane_http_request_duration_seconds',
      help: 'HTTP API request duration by method, route pattern and status code.',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.#ngCommands = new client.Counter({
      name: 'dialplane_rtpengine_commands_total',
      help: 'ng commands sent to rtpengine, by command and outcome (ok, timeout, error, malformed, overloaded, closed).',
      labelNames: ['command', 'outcome'],
      registers,
    });
    this.#mediaPackets = new client.Counter({
      name: 'dialplane_media_packets_total',
      help: 'RTP packets relayed for anchored calls that ended, by the party they came from (caller, callee).',
      labelNames: ['from'],
      registers,
    });
    this.#mediaBytes = new client.Counter({
      name: 'dialplane_media_bytes_total',
      help: 'RTP bytes relayed for anchored calls that ended, by the party they came from (caller, callee).',
      labelNames: ['from'],
      registers,
    });
    this.#mediaLost = new client.Counter({
      name: 'dialplane_media_lost_packets_total',
      help: 'RTP packets of anchored calls that ended which the receiving party reported lost in RTCP, by the party they came from (caller, callee).',
      labelNames: ['from'],
      registers,
    });
    this.#mediaMissing = new client.Counter({
      name: 'dialplane_media_statistics_missing_total',
      help: 'Anchored calls that ended without media statistics (their rtpengine could not be asked).',
      registers,
    });
    this.#eventsWritten = new client.Counter({
      name: 'dialplane_events_written_total',
      help: 'Events committed by this instance, by type.',
      labelNames: ['type'],
      registers,
    });
    this.#webhookAttempts = new client.Counter({
      name: 'dialplane_webhook_attempts_total',
      help: 'Webhook delivery attempts by result: delivered, retry (failed, will be retried), failed (given up).',
      labelNames: ['result'],
      registers,
    });
    this.#webhookLatency = new client.Histogram({
      name: 'dialplane_webhook_delivery_latency_seconds',
      help: 'From an event’s commit to its endpoint’s 2xx.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300, 3600],
      registers,
    });
    this.#webhookQueue = new client.Gauge({
      name: 'dialplane_webhook_queue_depth',
      help: 'Webhook deliveries pending (all instances), as last counted.',
      registers,
    });
    this.#invites = new client.Counter({
      name: 'dialplane_sip_invites_total',
      help: 'INVITEs at the SIP edge by direction and outcome.',
      labelNames: ['direction', 'outcome'],
      registers,
    });
    this.#decisions = new client.Histogram({
      name: 'dialplane_sip_routing_decision_seconds',
      help: 'Time to take the inbound routing decision for one INVITE.',
      buckets: [0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.001, 0.01],
      registers,
    });
    this.#rejected = new client.Counter({
      name: 'dialplane_sip_rejected_total',
      help: 'SIP messages refused at admission: unauthenticated (stateless 403), bad_signature, flood (dropped unanswered), forged_response, number_capture.',
      labelNames: ['reason'],
      registers,
    });
    this.#registrationFailures = new client.Counter({
      name: 'dialplane_registration_failures_total',
      help: 'Failed REGISTER attempts by SIP response code (timeout, transport, auth when there is none).',
      labelNames: ['code'],
      registers,
    });
    this.#trunkUp = new client.Gauge({
      name: 'dialplane_trunk_up',
      help: 'Trunk health by credentials id: 1 while any address answers OPTIONS, 0 when none does (healthCheck credentials only).',
      labelNames: ['credentials_id'],
      registers,
    });
    this.#trunkTargetsUp = new client.Gauge({
      name: 'dialplane_trunk_targets_up',
      help: 'Addresses of a trunk that answered the last OPTIONS probe, by credentials id.',
      labelNames: ['credentials_id'],
      registers,
    });
    const transactions: client.Gauge<'side'> = new client.Gauge({
      name: 'dialplane_sip_active_transactions',
      help: 'SIP transactions in progress at the edge.',
      labelNames: ['side'],
      registers,
      collect: () => {
        const stats = this.#sources?.edge();
        transactions.set({ side: 'server' }, stats?.activeServerTransactions ?? 0);
        transactions.set({ side: 'client' }, stats?.activeClientTransactions ?? 0);
      },
    });
    const tcp: client.Gauge<'reason'> = new client.Gauge({
      name: 'dialplane_sip_tcp_refusals',
      help: 'TCP and TLS connections and sends refused since start: per_source (connection cap), message_timeout, write_overflow, destination (refused target or outbound cap), tls_handshake_rate (a source over its handshake rate), tls_handshake_failed.',
      labelNames: ['reason'],
      registers,
      collect: () => {
        const stats = this.#sources?.edge()?.transport;
        tcp.set({ reason: 'per_source' }, stats?.refusedConnections ?? 0);
        tcp.set({ reason: 'message_timeout' }, stats?.timedOutConnections ?? 0);
        tcp.set({ reason: 'write_overflow' }, stats?.overflowedConnections ?? 0);
        tcp.set({ reason: 'destination' }, stats?.refusedDestinations ?? 0);
        tcp.set({ reason: 'tls_handshake_rate' }, stats?.refusedHandshakes ?? 0);
        tcp.set({ reason: 'tls_handshake_failed' }, stats?.failedTlsHandshakes ?? 0);
      },
    });
    const registrations: client.Gauge<'state'> = new client.Gauge({
      name: 'dialplane_registrations',
      help: 'Registrations this instance keeps, by state.',
      labelNames: ['state'],
      registers,
      collect: () => {
        const byState = this.#sources?.registrations().byState;
        if (byState === undefined) return;
        for (const [state, count] of Object.entries(byState)) registrations.set({ state }, count);
      },
    });
    const lateRefreshes: client.Gauge = new client.Gauge({
      name: 'dialplane_registration_late_refreshes',
      help: 'Refreshes that completed after the previous binding had expired, since start.',
      registers,
      collect: () => lateRefreshes.set(this.#sources?.registrations().lateRefreshes ?? 0),
    });
  }

  /** The running parts the gauges read from. */
  readFrom(sources: StatsSources): void {
    this.#sources = sources;
  }

  httpRequest(method: string, route: string, status: number, seconds: number): void {
    this.#httpDuration.observe({ method, route, status }, seconds);
  }

  eventsWritten(types: readonly EventType[]): void {
    for (const type of types) this.#eventsWritten.inc({ type });
  }

  webhookAttempt(result: 'delivered' | 'retry' | 'failed', latencySeconds: number | null): void {
    this.#webhookAttempts.inc({ result });
    if (latencySeconds !== null) this.#webhookLatency.observe(latencySeconds);
  }

  webhookQueueDepth(pending: number): void {
    this.#webhookQueue.set(pending);
  }

  ngCommand(command: string, outcome: 'ok' | NgFailure): void {
    this.#ngCommands.inc({ command, outcome });
  }

  callMediaEnded(_callId: string, totals: MediaTotals | null): void {
    if (totals === null) {
      this.#mediaMissing.inc();
      return;
    }
    for (const [from, flow] of [
      ['caller', totals.fromCaller],
      ['callee', totals.fromCallee],
    ] as const) {
      if (flow === null) continue;
      this.#mediaPackets.inc({ from }, flow.packets);
      this.#mediaBytes.inc({ from }, flow.bytes);
      if (flow.lost !== null) this.#mediaLost.inc({ from }, flow.lost);
    }
  }

  callFinished(direction: CallDirection, outcome: CallOutcome): void {
    this.#invites.inc({ direction, outcome });
  }

  routingDecided(seconds: number): void {
    this.#decisions.observe(seconds);
  }

  rejected(reason: string): void {
    this.#rejected.inc({ reason });
  }

  registrationFailed(code: string): void {
    this.#registrationFailures.inc({ code });
  }

  trunkHealth(credentialsId: string, health: TrunkHealth | null): void {
    const labels = { credentials_id: credentialsId };
    if (health === null || health.state === 'unknown') {
      this.#trunkUp.remove(labels);
      this.#trunkTargetsUp.remove(labels);
      return;
    }
    this.#trunkUp.set(labels, health.state === 'up' ? 1 : 0);
    this.#trunkTargetsUp.set(labels, health.targets.filter((t) => t.state === 'up').length);
  }
}
