/**
 * The headers between the SIP edge and agent runtimes (docs/sip-edge.md, docs/outbound.md). The
 * edge writes the first three on every INVITE it sends an agent; a runtime names its agent in
 * the first on the INVITEs it places. None of them crosses the edge otherwise, in either
 * direction: every header the prefix matches is removed from what the edge relays.
 */
export const AGENT_ID_HEADER = 'X-Dialplane-Agent-Id';
export const ORG_ID_HEADER = 'X-Dialplane-Org-Id';
export const PHONE_NUMBER_ID_HEADER = 'X-Dialplane-Phone-Number-Id';

/** Every X-Dialplane-* header (a trailing `*` matches a prefix). */
export const DIALPLANE_HEADERS = 'X-Dialplane-*';
