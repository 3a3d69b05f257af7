import { Type, type Static } from '@sinclair/typebox';
import { AffectedAgent } from '../numbers/schemas.ts';
import { Nullable, StringEnum, Page, PageQuery, Timestamp, Uuid } from '../http/schemas.ts';
import { TrunkHealth } from '../health/schemas.ts';

export const Transport = StringEnum(['udp', 'tcp', 'tls'], { description: 'SIP transport towards the server.' });
const Source = StringEnum(['manual', 'provider']);
const MediaAnchoring = StringEnum(['auto', 'off'], {
  description:
    "A dialplane extension: `auto` (default) relays this trunk's calls' media through the server's rtpengines when it has some; `off` lets media go directly between carrier and agent.",
});
const MediaEncryption = StringEnum(['none', 'sdes-srtp', 'dtls-srtp'], {
  description:
    "A dialplane extension: the carrier leg's media encryption when media is anchored (default `none`): SRTP keyed in the SDP (`sdes-srtp`, RFC 4568) or by a DTLS handshake (`dtls-srtp`, RFC 5763); the agent's leg stays plain RTP and rtpengine translates.",
});

/** Body of POST and PUT: PUT replaces every field, except that an absent authPassword keeps the stored one. */
export const CredentialsInput = Type.Object(
  {
    server: Type.String({ minLength: 1, maxLength: 261, description: '`host` or `host:port` of the SIP server.' }),
    transport: Type.Optional(Transport),
    domain: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 255 }))),
    authUser: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 255 }))),
    authPassword: Type.Optional(Nullable(Type.String({ maxLength: 255, description: 'Write-only: stored encrypted, never returned.' }))),
    description: Type.Optional(Nullable(Type.String({ maxLength: 1024 }))),
    cpsLimit: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 100000 }))),
    cpsKey: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 255 }))),
    allowedAddresses: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
        maxItems: 256,
        description: 'IPs or CIDRs inbound calls may come from; empty: the addresses of the server host.',
      }),
    ),
    source: Type.Optional(Source),
    providerId: Type.Optional(Nullable(Uuid)),
    healthCheck: Type.Optional(
      Type.Boolean({
        description:
          'A dialplane extension: probe every resolved address of the server with OPTIONS and skip those down for outbound calls (default false).',
      }),
    ),
    mediaAnchoring: Type.Optional(MediaAnchoring),
    mediaEncryption: Type.Optional(MediaEncryption),
  },
  {
    additionalProperties: false,
    title: 'SipCredentialsInput',
    examples: [{ server: 'sip.carrier.example', transport: 'tls', authUser: 'acme', authPassword: 'secret', healthCheck: true }],
  },
);
export type CredentialsInput = Static<typeof CredentialsInput>;

export const Credentials = Type.Object(
  {
    id: Uuid,
    orgId: Type.String(),
    server: Type.String(),
    transport: Transport,
    domain: Nullable(Type.String()),
    authUser: Nullable(Type.String()),
    authPasswordSet: Type.Boolean(),
    description: Nullable(Type.String()),
    cpsLimit: Nullable(Type.Integer()),
    cpsKey: Nullable(Type.String()),
    allowedAddresses: Type.Array(Type.String()),
    source: Source,
    providerId: Nullable(Type.String()),
    healthCheck: Type.Boolean(),
    health: Nullable(TrunkHealth),
    mediaAnchoring: MediaAnchoring,
    mediaEncryption: MediaEncryption,
    createdTime: Timestamp,
    lastUpdateTime: Timestamp,
  },
  { title: 'SipCredentials' },
);
export type Credentials = Static<typeof Credentials>;

export const CredentialsPage = Page(Credentials, 'SipCredentialsPage');

export const CredentialsListQuery = Type.Object({ ...PageQuery });

export const CredentialsAffectedAgents = Type.Object(
  {
    phoneNumbers: Type.Array(
      Type.Object({
        id: Uuid,
        phoneNumber: Type.String(),
        affectedAgents: Type.Array(AffectedAgent),
      }),
    ),
    affectedCallsCount: Type.Integer({ minimum: 0 }),
  },
  { title: 'SipCredentialsAffectedAgents' },
);
