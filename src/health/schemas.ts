import { Type, type Static } from '@sinclair/typebox';
import { Nullable, StringEnum, Timestamp } from '../http/schemas.ts';

const TargetState = StringEnum(['up', 'down']);

export const TargetHealth = Type.Object(
  {
    transport: StringEnum(['udp', 'tcp', 'tls'], { description: 'The transport the probe used.' }),
    host: Type.String({ description: 'The server’s name (or address) this address was found for.' }),
    address: Type.String(),
    port: Type.Integer(),
    state: TargetState,
    lastCheckedTime: Timestamp,
    lastResponse: Type.String({ description: 'The final status line of the last OPTIONS probe, or why there was none.' }),
  },
  { title: 'SipTargetHealth' },
);
export type TargetHealth = Static<typeof TargetHealth>;

export const TrunkHealth = Type.Object(
  {
    state: StringEnum(['up', 'down', 'unknown'], { description: 'Up while any target is up; unknown until the first probe has ended.' }),
    lastCheckedTime: Nullable(Timestamp),
    lastResponse: Nullable(Type.String()),
    targets: Type.Array(TargetHealth),
  },
  {
    title: 'SipTrunkHealth',
    description: 'Read-only: what OPTIONS probes found (credentials with healthCheck only; null otherwise).',
  },
);
export type TrunkHealth = Static<typeof TrunkHealth>;
