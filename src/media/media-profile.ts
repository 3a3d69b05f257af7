/**
 * What the router decides about a call's media and the Record-Route carries (as two letters):
 * which kind of party placed the call, and how the carrier's leg is encrypted. The agent's leg
 * is plain RTP.
 */
export type PartyKind = 'carrier' | 'agent';
export type CarrierEncryption = 'none' | 'sdes-srtp';

export interface MediaProfile {
  caller: PartyKind;
  carrierEncryption: CarrierEncryption;
}

export function encodeProfile(profile: MediaProfile): string {
  return `${profile.caller === 'carrier' ? 'c' : 'a'}${profile.carrierEncryption === 'sdes-srtp' ? 's' : 'p'}`;
}

export function decodeProfile(text: string): MediaProfile | null {
  if (!/^[ca][sp]$/.test(text)) return null;
  return { caller: text[0] === 'c' ? 'carrier' : 'agent', carrierEncryption: text[1] === 's' ? 'sdes-srtp' : 'none' };
}

export const otherParty = (kind: PartyKind): PartyKind => (kind === 'carrier' ? 'agent' : 'carrier');
