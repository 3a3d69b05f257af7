import { callAttempt, type CallAttempt } from '../calls/records.ts';
import type { StartedCall } from '../calls/call-events.ts';
import { normalizePhoneNumber } from '../numbers/normalize.ts';
import { type SipRequest } from '../sip/message.ts';
import { parseNameAddr } from '../sip/parse-address.ts';
import type { InitialRequestRecord, RouteDecision } from '../sip/router.ts';
import type { MessageSource } from '../sip/transport.ts';
import { dialledNumber } from '../sip/uri.ts';
import { AGENT_ID_HEADER, ORG_ID_HEADER, PHONE_NUMBER_ID_HEADER } from '../common/dialplane-headers.ts';
import { decideInbound, type InboundDecision } from './decide.ts';
import type { RoutingIndex } from './routing-index.ts';
import { mediaProfileFor } from '../media/media-policy.ts';

const ALLOWED_METHODS = 'INVITE, ACK, CANCEL, BYE, OPTIONS';

export interface InboundObserver {
  /** Seconds the routing decision took. */
  decided(seconds: number): void;
  /** One call attempt ended: the edge records, counts and logs it. */
  finished(attempt: CallAttempt): void;
  /** A call is being forwarded to its agent. */
  started?(call: StartedCall): void;
  /** A call was refused because another organization's trunk matches its source more closely than the linked one's. */
  captureRefused(dialled: string, linkedOrgId: string, closerOrgId: string): void;
}

/** What the router remembers about an INVITE until its final response, for the call record. */
interface InboundContext {
  dialled: string;
  decision: InboundDecision;
}

/**
 * Turns an out-of-dialog request at the SIP edge into a proxy decision through the one routing
 * decision (decide.ts), and each finished INVITE into a call record.
 */
export class InboundRouter {
  /** INVITEs being set up per credentials, for affected-agents' affectedCallsCount. */
  readonly #settingUp = new Map<string, number>();

  readonly #index: RoutingIndex;
  readonly #defaultRuntimeUri: string | null;
  readonly #observer: InboundObserver;
  readonly #relayAvailable: boolean;

  /** `relayAvailable`: the edge can anchor media (docs/media.md). */
  constructor(index: RoutingIndex, defaultRuntimeUri: string | null, observer: InboundObserver, relayAvailable = false) {
    this.#index = index;
    this.#defaultRuntimeUri = defaultRuntimeUri;
    this.#observer = observer;
    this.#relayAvailable = relayAvailable;
  }

  callsSettingUp(credentialsId: string): number {
    return this.#settingUp.get(credentialsId) ?? 0;
  }

  route(request: SipRequest, source: MessageSource): RouteDecision {
    if (request.method !== 'INVITE') {
      return { action: 'reject', status: 405, reason: 'Method Not Allowed', headers: [['Allow', ALLOWED_METHODS]] };
    }
    const started = performance.now();
    const { dialled, candidates } = this.#lookup(request);
    const decision = decideInbound(candidates, source.address, this.#defaultRuntimeUri, /^sips:/i.test(request.uri));
    this.#observer.decided((performance.now() - started) / 1000);
    const context: InboundContext = { dialled, decision };
    if (decision.outcome === 'forbidden' && decision.capture !== undefined) {
      this.#observer.captureRefused(dialled, decision.capture.linked.credentials.orgId, decision.capture.closer.credentials.orgId);
    }
    if (decision.outcome !== 'route') {
      return { action: 'reject', status: decision.status, reason: decision.reason, context };
    }
    const credentialsId = decision.number.credentials.id;
    this.#settingUp.set(credentialsId, (this.#settingUp.get(credentialsId) ?? 0) + 1);
    const from = request.headers.get('from');
    this.#observer.started?.({
      callId: request.headers.get('call-id') ?? '',
      orgId: decision.number.credentials.orgId,
      direction: 'inbound',
      phoneNumberId: decision.number.id,
      phoneNumber: dialled,
      remoteParty: (from && parseNameAddr(from)?.uri) ?? '',
      agentId: decision.agent.id,
    });
    return {
      action: 'forward',
      target: decision.target,
      addHeaders: [
        [AGENT_ID_HEADER, decision.agent.id],
        [ORG_ID_HEADER, decision.agent.orgId],
        [PHONE_NUMBER_ID_HEADER, decision.number.id],
      ],
      media: mediaProfileFor(this.#relayAvailable, 'carrier', decision.number.credentials.media),
      context,
    };
  }

  /**
   * The number called: the Request-URI's user part (docs/sip-edge.md). When that names no number, the
   * To URI's user part: a provider delivering to a registered Contact (`sip:<authUser>@edge`)
   * puts the number there.
   */
  #lookup(request: SipRequest): { dialled: string; candidates: ReturnType<RoutingIndex['candidates']> } {
    const fromRequestUri = dialledNumber(request.uri) ?? '';
    const normalized = normalizePhoneNumber(fromRequestUri);
    const candidates = normalized === null ? undefined : this.#index.candidates(normalized);
    if (candidates !== undefined) return { dialled: normalized!, candidates };
    const to = request.headers.get('to');
    const toUri = to === undefined ? null : parseNameAddr(to)?.uri;
    const toNumber = toUri ? normalizePhoneNumber(dialledNumber(toUri) ?? '') : null;
    const viaTo = toNumber === null ? undefined : this.#index.candidates(toNumber);
    if (viaTo !== undefined) return { dialled: toNumber!, candidates: viaTo };
    return { dialled: normalized ?? fromRequestUri, candidates: undefined };
  }

  done(record: InitialRequestRecord): void {
    const context = record.context as InboundContext | undefined;
    if (!context) return;
    const { decision } = context;
    if (decision.outcome === 'route') {
      const credentialsId = decision.number.credentials.id;
      const left = (this.#settingUp.get(credentialsId) ?? 1) - 1;
      if (left > 0) this.#settingUp.set(credentialsId, left);
      else this.#settingUp.delete(credentialsId);
    }
    const from = record.request.headers.get('from');
    this.#observer.finished(
      callAttempt(record, {
        direction: 'inbound',
        orgId: 'number' in decision ? decision.number.credentials.orgId : null,
        phoneNumberId: 'number' in decision ? decision.number.id : null,
        phoneNumber: context.dialled,
        remoteParty: (from && parseNameAddr(from)?.uri) ?? '',
        agentId: decision.outcome === 'route' ? decision.agent.id : 'number' in decision ? (decision.number.agent?.id ?? null) : null,
        refusal: decision.outcome === 'route' ? null : decision.outcome,
      }),
    );
  }
}
