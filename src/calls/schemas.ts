import { Type, type Static } from '@sinclair/typebox';
import { Nullable, StringEnum, Page, PageQuery, Timestamp, Uuid } from '../http/schemas.ts';

export const CallOutcome = StringEnum(
  ['answered', 'not_found', 'forbidden', 'unavailable', 'rejected', 'cancelled', 'timeout', 'failed', 'rate_limited'],
  {
    description:
      'answered: 2xx; not_found/forbidden/unavailable: the edge answered 404/403/480; rejected: the agent or carrier ' +
      'answered another final response; cancelled: the caller cancelled; timeout: no answer from the next hop (408); ' +
      'failed: the next hop could not be reached; rate_limited: over cpsLimit (503).',
  },
);
export type CallOutcome = Static<typeof CallOutcome>;

export const CallDirection = StringEnum(['inbound', 'outbound']);
export type CallDirection = Static<typeof CallDirection>;

const MediaFlow = Type.Object(
  {
    packets: Type.Integer({ minimum: 0 }),
    bytes: Type.Integer({ minimum: 0 }),
    /** rtpengine's count of packets it could not relay (malformed, or failing SRTP authentication). */
    errors: Type.Integer({ minimum: 0 }),
    lost: Nullable(
      Type.Integer({
        minimum: 0,
        description:
          'Packets of this flow the receiving party reported lost in its RTCP receiver reports (cumulative, losses on both legs); ' +
          'null when it sent no report rtpengine kept (docs/media.md).',
      }),
    ),
  },
  { title: 'CallMediaFlow' },
);

export const CallMedia = Type.Object(
  {
    statistics: StringEnum(['collected', 'missing'], {
      description: 'missing: the rtpengine holding the call could not be asked when it ended (docs/media.md).',
    }),
    /** RTP the relay received from the caller (and sent on to the callee); null when the statistics are missing. */
    fromCaller: Nullable(MediaFlow),
    /** RTP the relay received from the callee. */
    fromCallee: Nullable(MediaFlow),
  },
  {
    title: 'CallMedia',
    description: 'A dialplane extension: what flowed through the media relay, for an answered call whose media was anchored; null otherwise.',
  },
);
export type CallMedia = Static<typeof CallMedia>;

export const CallRecord = Type.Object(
  {
    id: Uuid,
    orgId: Type.String(),
    direction: CallDirection,
    startedTime: Timestamp,
    endedTime: Timestamp,
    phoneNumberId: Nullable(Uuid),
    phoneNumber: Type.String({ description: 'The dialled number (inbound) or the caller ID used (outbound).' }),
    remoteParty: Type.String({ description: 'The caller (inbound) or the called party (outbound), as a SIP URI.' }),
    agentId: Nullable(Type.String()),
    outcome: CallOutcome,
    statusCode: Type.Integer({ description: 'The final SIP status code sent back to the caller.' }),
    callId: Type.String(),
    sourceAddress: Type.String(),
    media: Nullable(CallMedia),
  },
  { title: 'CallRecord' },
);
export type CallRecord = Static<typeof CallRecord>;

export const CallRecordPage = Page(CallRecord, 'CallRecordPage');

export const CallRecordListQuery = Type.Object({
  ...PageQuery,
  phoneNumberId: Type.Optional(Uuid),
  agentId: Type.Optional(Uuid),
  outcome: Type.Optional(CallOutcome),
  direction: Type.Optional(CallDirection),
});
export type CallRecordListQuery = Static<typeof CallRecordListQuery>;
