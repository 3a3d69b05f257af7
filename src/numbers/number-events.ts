import { resourceOf, type NewEvent } from '../events/event-types.ts';
import type { PhoneNumber } from './schemas.ts';

/** The events of a number (docs/events.md): its data is the number as the API shows it. */
export const numberEvent = (type: 'phone_number.created' | 'phone_number.updated' | 'phone_number.deleted', phoneNumber: PhoneNumber): NewEvent => ({
  type,
  orgId: phoneNumber.orgId,
  resource: resourceOf.number(phoneNumber.id),
  data: { phoneNumber },
});

/** A link or unlink: `inbound` is the number's inbound agent, `outbound` an agent calling out with it. */
export const linkEvent = (
  type: 'phone_number.linked' | 'phone_number.unlinked',
  phoneNumber: PhoneNumber,
  mode: 'inbound' | 'outbound',
  agentIdBefore: string | null,
  agentIdAfter: string | null,
): NewEvent => ({
  type,
  orgId: phoneNumber.orgId,
  resource: resourceOf.number(phoneNumber.id),
  data: { phoneNumber, mode, agentIdBefore, agentIdAfter },
});

/** A number's registration state moved; `reason` is the registrar's answer or the failure's description. */
export const registrationEvent = (phoneNumber: PhoneNumber, stateBefore: string): NewEvent => ({
  type: 'registration.state_changed',
  orgId: phoneNumber.orgId,
  resource: resourceOf.number(phoneNumber.id),
  data: {
    phoneNumber,
    stateBefore,
    stateAfter: phoneNumber.registrationStatus.state,
    reason: phoneNumber.registrationStatus.sipResponseMessage ?? phoneNumber.registrationStatus.errorDescription,
  },
});
