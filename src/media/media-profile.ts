/**
 * What the router decides about a call's media and the Record-Route carries (as two letters):
 * which kind of party placed the call, and how the carrier's leg is encrypted. The agent's leg
 * is plain RTP.
 */
export type PartyKind = 'carrier' | 'agent';
export type CarrierEncryption = 'none' | 'sdes-srtp' | 'dtls-srtp';

export interface MediaProfile {
  caller: PartyKind;
  carrierEncryption: CarrierEncryption;
}

const ENCRYPTION_LETTERS: Record<CarrierEncryption, string> = { none: 'p', 'sdes-srtp': 's', 'dtls-srtp': 'd' };
const ENCRYPTION_BY_LETTER = new Map(Object.entries(ENCRYPTION_LETTERS).map(([encryption, letter]) => [letter, encryption as CarrierEncryption]));

export function encodeProfile(profile: MediaProfile): string {
  return `${profile.caller === 'carrier' ? 'c' : 'a'}${ENCRYPTION_LETTERS[profile.carrierEncryption]}`;
}

export function decodeProfile(text: string): MediaProfile | null {
  const carrierEncryption = ENCRYPTION_BY_LETTER.get(text.slice(1));
  if (text.length !== 2 || (text[0] !== 'c' && text[0] !== 'a') || carrierEncryption === undefined) return null;
  return { caller: text[0] === 'c' ? 'carrier' : 'agent', carrierEncryption };
}

export const otherParty = (kind: PartyKind): PartyKind => (kind === 'carrier' ? 'agent' : 'carrier');
