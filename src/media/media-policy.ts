import { encodeProfile, type CarrierEncryption, type PartyKind } from './media-profile.ts';

/** A trunk's own media settings (its SIP credentials' mediaAnchoring and mediaEncryption fields). */
export interface TrunkMediaSettings {
  /** `auto`: anchored whenever the server has rtpengines; `off`: never. */
  mediaAnchoring: 'auto' | 'off';
  /** The carrier leg's media encryption when anchored. */
  mediaEncryption: CarrierEncryption;
}

/**
 * The one rule for a call's media: anchored when the server has rtpengines unless the trunk
 * opted out; the profile says who called and how the carrier's leg is encrypted. Undefined: the
 * media goes directly between the parties.
 */
export function mediaProfileFor(relayAvailable: boolean, caller: PartyKind, trunk: TrunkMediaSettings): string | undefined {
  if (!relayAvailable || trunk.mediaAnchoring === 'off') return undefined;
  return encodeProfile({ caller, carrierEncryption: trunk.mediaEncryption });
}
