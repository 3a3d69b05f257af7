import { callAttempt, type CallAttempt } from '../calls/records.ts';
import { mediaProfileFor, type TrunkMediaSettings } from '../media/media-policy.ts';
import type { StartedCall } from '../calls/call-events.ts';
import { AddressSet } from '../common/addresses.ts';
import type { Context } from '../context.ts';
import { preparedQuery } from '../db/prepared.ts';
import { revealPassword } from '../credentials/credentials.ts';
import { AGENT_ID_HEADER } from '../common/dialplane-headers.ts';
import { type SipRequest } from '../sip/message.ts';
import { formatNameAddr } from '../sip/parse-address.ts';
import type { InitialRequestRecord, RouteDecision } from '../sip/router.ts';
import type { Destination, MessageSource, TransportProtocol } from '../sip/transport.ts';
import type { FailedTargets } from '../dns/failed-targets.ts';
import { ResolutionError } from '../dns/sip-resolver.ts';
import { dialledNumber } from '../sip/uri.ts';
import { CpsLimiter } from './cps-limiter.ts';
import { decideOutbound, NOT_A_RUNTIME, UNKNOWN_AGENT, type OutboundDecision, type OutboundRow } from './decide.ts';

/** A runtime's own identity assertions are replaced by the number's. */
const IDENTITY_HEADERS = ['P-Asserted-Identity', 'P-Preferred-Identity', 'Remote-Party-ID'];

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface OutboundObserver {
  /** One outbound call attempt ended: the edge records, counts and logs it. */
  finished(attempt: CallAttempt): void;
  /** An outbound call is being forwarded to its trunk. */
  started?(call: StartedCall): void;
}

/** Where a trunk is: its addresses best first (RFC 3263), and where to report one that failed. */
export interface OutboundLocator {
  destinations(host: string, port: number | null, transport: TransportProtocol): Promise<Destination[]>;
  failed: FailedTargets;
}

/** Remembered from the decision to the final response, for the call record. */
class OutboundContext {
  constructor(
    readonly decision: OutboundDecision,
    readonly rateLimited: boolean,
  ) {}
}

/**
 * Decides for each new INVITE from an agent runtime (it carries X-Dialplane-Agent-Id): the source
 * must be a runtime address; then one database query joins agent → outbound number → credentials
 * (no cache: outbound call rates are low, and a relink or unlink applies to the very next call);
 * then the cps budget, when the credentials have one.
 */
/** Every outbound call reads its agent, outbound number and trunk: one prepared query. */
const outboundOfAgent = preparedQuery((db, v: { agentId: string }) =>
  db
    .selectFrom('agents as a')
    .leftJoin('phone_numbers as n', 'n.id', 'a.outbound_phone_number_id')
    .leftJoin('sip_credentials as c', 'c.id', 'n.credentials_id')
    .select([
      'a.id as agentId',
      'a.org_id as orgId',
      'a.is_enabled as isEnabled',
      'n.id as numberId',
      'n.phone_number as phoneNumber',
      'n.display_name as displayName',
      'c.id as credentialsId',
      'c.server as server',
      'c.transport as transport',
      'c.domain as domain',
      'c.auth_user as authUser',
      'c.auth_password_enc as authPasswordEnc',
      'c.cps_limit as cpsLimit',
      'c.cps_key as cpsKey',
      'c.media_anchoring as mediaAnchoring',
      'c.media_encryption as mediaEncryption',
    ])
    .where('a.id', '=', v.agentId),
);

export class OutboundRouter {
  readonly #runtimes: AddressSet;
  readonly #limiter: CpsLimiter;

  readonly #ctx: Context;
  readonly #observer: OutboundObserver;
  readonly #locate: OutboundLocator;
  readonly #relayAvailable: boolean;

  /** `relayAvailable`: the edge can anchor media (docs/media.md). */
  constructor(
    ctx: Context,
    runtimeAddresses: readonly string[],
    observer: OutboundObserver,
    locate: OutboundLocator,
    options: { limiter?: CpsLimiter; relayAvailable?: boolean } = {},
  ) {
    this.#ctx = ctx;
    this.#relayAvailable = options.relayAvailable ?? false;
    this.#locate = locate;
    this.#observer = observer;
    this.#runtimes = AddressSet.of(runtimeAddresses);
    this.#limiter = options.limiter ?? new CpsLimiter(ctx.db);
  }

  /** Whether an out-of-dialog request is an agent runtime's outbound call. */
  static isOutbound(request: SipRequest): boolean {
    return request.method === 'INVITE' && request.headers.has(AGENT_ID_HEADER);
  }

  isRuntime(address: string): boolean {
    return this.#runtimes.has(address);
  }

  /** The joined row for an agent, or undefined when there is no such agent. */
  async lookup(agentId: string): Promise<OutboundRow | undefined> {
    if (!UUID.test(agentId)) return undefined;
    const row = await outboundOfAgent.first(this.#ctx.db, { agentId });
    if (row === undefined) return undefined;
    const { mediaAnchoring, mediaEncryption, ...rest } = row;
    return {
      ...rest,
      isEnabled: Number(rest.isEnabled) === 1,
      cpsLimit: rest.cpsLimit === null ? null : Number(rest.cpsLimit),
      // Without credentials (no outbound number) there is no call to anchor; the defaults stand in.
      media: { mediaAnchoring: mediaAnchoring ?? 'auto', mediaEncryption: mediaEncryption ?? 'none' } as TrunkMediaSettings,
    };
  }

  /** The decision for a request and source, database lookup included, cps budget not taken. */
  async decide(request: SipRequest, source: MessageSource): Promise<OutboundDecision> {
    if (!this.isRuntime(source.address)) return NOT_A_RUNTIME;
    const agentId = request.headers.get(AGENT_ID_HEADER)?.trim() ?? '';
    const row = agentId === '' ? undefined : await this.lookup(agentId);
    if (row === undefined) return UNKNOWN_AGENT;
    return decideOutbound(row, dialledNumber(request.uri));
  }

  async route(request: SipRequest, source: MessageSource): Promise<RouteDecision> {
    const decision = await this.decide(request, source);
    if (decision.outcome !== 'route') {
      return { action: 'reject', status: decision.status, reason: decision.reason, context: new OutboundContext(decision, false) };
    }
    const { row } = decision;
    if (row.cpsLimit !== null) {
      const verdict = await this.#limiter.take({ credentialsId: row.credentialsId, orgId: row.orgId, cpsKey: row.cpsKey, limit: row.cpsLimit });
      if (!verdict.allowed) {
        return {
          action: 'reject',
          status: 503,
          reason: 'Service Unavailable: cps limit',
          headers: [['Retry-After', String(verdict.retryAfterSeconds)]],
          context: new OutboundContext(decision, true),
        };
      }
    }
    const { server } = decision;
    let destinations: Destination[];
    try {
      destinations = await this.#locate.destinations(server.host, server.port, server.transport);
    } catch (error) {
      if (!(error instanceof ResolutionError)) throw error;
      return { action: 'reject', status: 503, reason: 'Service Unavailable: trunk not found in DNS', context: new OutboundContext(decision, false) };
    }
    const password = revealPassword(this.#ctx, { id: row.credentialsId, auth_password_enc: row.authPasswordEnc });
    const identity = formatNameAddr({ displayName: decision.displayName, uri: decision.callerUri, params: new Map() });
    this.#observer.started?.({
      callId: request.headers.get('call-id') ?? '',
      orgId: row.orgId,
      direction: 'outbound',
      phoneNumberId: row.numberId,
      phoneNumber: row.phoneNumber,
      remoteParty: decision.target,
      agentId: row.agentId,
    });
    return {
      action: 'forward',
      target: decision.target,
      destinations,
      destinationFailed: (destination) => this.#locate.failed.failed(destination),
      from: { uri: decision.callerUri, displayName: decision.displayName },
      removeHeaders: IDENTITY_HEADERS,
      addHeaders: [['P-Asserted-Identity', identity]],
      credentials: { username: decision.authUser, password },
      media: mediaProfileFor(this.#relayAvailable, 'agent', row.media),
      context: new OutboundContext(decision, false),
    };
  }

  /** Records a finished outbound attempt; false when the record is not an outbound one. */
  done(record: InitialRequestRecord): boolean {
    const context = record.context;
    if (!(context instanceof OutboundContext)) return false;
    const { decision } = context;
    const row = decision.row;
    this.#observer.finished(
      callAttempt(record, {
        direction: 'outbound',
        orgId: row?.orgId ?? null,
        phoneNumberId: row?.numberId ?? null,
        phoneNumber: row?.phoneNumber ?? '',
        remoteParty: decision.outcome === 'route' ? decision.target : record.request.uri,
        agentId: row?.agentId ?? null,
        refusal: context.rateLimited ? 'rate_limited' : decision.outcome === 'route' ? null : decision.outcome,
      }),
    );
    return true;
  }
}
