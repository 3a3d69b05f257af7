/**
 * SIP message model (RFC 3261 §7): header names, the header multi-map, requests and
 * responses, and the responses a request gets.
 *
 * Header values are stored as raw strings and parsed on demand (parse-header.ts,
 * parse-via.ts, parse-address.ts), so a proxy only pays for the headers it inspects. The
 * exceptions are Via, Route, Record-Route and Contact, which RFC 3261 §7.3.1
 * allows to carry comma-separated lists: the parser splits those into one
 * value per element so that "top Via" and friends are a plain array access.
 *
 * Bodies are Buffers: Content-Length counts octets and bodies may be binary
 * (S/MIME, multipart), so a string would either be wrong or lossy. Bodies are
 * treated as immutable and may share memory with the buffer they were parsed
 * from; `cloneMessage` shares them too.
 */
import { isToken } from './lexical.ts';
import { parseNameAddr } from './parse-address.ts';

export const SIP_VERSION = 'SIP/2.0';

// ---------------------------------------------------------------------------
// Header names

/** Compact header forms (RFC 3261 §7.3.3 and the IANA SIP header registry). */
const COMPACT_FORMS: Readonly<Record<string, string>> = {
  a: 'accept-contact',
  b: 'referred-by',
  c: 'content-type',
  d: 'request-disposition',
  e: 'content-encoding',
  f: 'from',
  i: 'call-id',
  j: 'reject-contact',
  k: 'supported',
  l: 'content-length',
  m: 'contact',
  n: 'identity-info',
  o: 'event',
  r: 'refer-to',
  s: 'subject',
  t: 'to',
  u: 'allow-events',
  v: 'via',
  x: 'session-expires',
  y: 'identity',
};

/** Conventional spelling used when serializing well-known headers. */
const DISPLAY_NAMES: ReadonlyMap<string, string> = new Map(
  [
    'Accept',
    'Accept-Contact',
    'Accept-Encoding',
    'Accept-Language',
    'Alert-Info',
    'Allow',
    'Allow-Events',
    'Authentication-Info',
    'Authorization',
    'Call-ID',
    'Call-Info',
    'Contact',
    'Content-Disposition',
    'Content-Encoding',
    'Content-Language',
    'Content-Length',
    'Content-Type',
    'CSeq',
    'Date',
    'Error-Info',
    'Event',
    'Expires',
    'From',
    'History-Info',
    'Identity',
    'Identity-Info',
    'In-Reply-To',
    'Max-Forwards',
    'Min-Expires',
    'Min-SE',
    'MIME-Version',
    'Organization',
    'P-Asserted-Identity',
    'P-Preferred-Identity',
    'Path',
    'Priority',
    'Privacy',
    'Proxy-Authenticate',
    'Proxy-Authorization',
    'Proxy-Require',
    'RAck',
    'Reason',
    'Record-Route',
    'Refer-To',
    'Referred-By',
    'Reject-Contact',
    'Replaces',
    'Reply-To',
    'Request-Disposition',
    'Require',
    'Retry-After',
    'Route',
    'RSeq',
    'Server',
    'Service-Route',
    'Session-Expires',
    'SIP-ETag',
    'SIP-If-Match',
    'Subject',
    'Subscription-State',
    'Supported',
    'Timestamp',
    'To',
    'Unsupported',
    'User-Agent',
    'Via',
    'Warning',
    'WWW-Authenticate',
  ].map((name) => [name.toLowerCase(), name]),
);

/** Returns the lookup key for a header name: lowercase, compact forms expanded. */
export function canonicalHeaderName(name: string): string {
  const lower = name.toLowerCase();
  return lower.length === 1 ? (COMPACT_FORMS[lower] ?? lower) : lower;
}

// ---------------------------------------------------------------------------
// Headers

/** One header name with all its values in order. */
export interface HeaderField {
  /** Canonical lookup key (lowercase long form). */
  readonly key: string;
  /** Name written when serializing. */
  readonly name: string;
  readonly values: readonly string[];
}

interface MutableHeaderField {
  key: string;
  name: string;
  values: string[];
}

const NO_VALUES: readonly string[] = Object.freeze([]);

/**
 * Ordered multi-map of header fields keyed by canonical name. Values of the
 * same header keep their relative order, which is significant (RFC 3261
 * §7.3.1); fields of different names keep first-insertion order, which is not
 * significant but is preserved for readable output.
 *
 * Each stored value is one header value: callers adding a Via or Route pass
 * one element per call, as the parser does after splitting lists. Values
 * are checked for CR, LF and NUL when serialized, not on every mutation.
 */
export class SipHeaders implements Iterable<HeaderField> {
  readonly #fields: Map<string, MutableHeaderField>;

  constructor(init?: Iterable<readonly [name: string, value: string]>) {
    this.#fields = new Map();
    if (init !== undefined) {
      for (const [name, value] of init) this.append(name, value);
    }
  }

  /** First (topmost) value, or undefined when the header is absent. */
  get(name: string): string | undefined {
    return this.#fields.get(canonicalHeaderName(name))?.values[0];
  }

  /** All values in order; an empty array when absent. Do not mutate the result. */
  getAll(name: string): readonly string[] {
    return this.#fields.get(canonicalHeaderName(name))?.values ?? NO_VALUES;
  }

  has(name: string): boolean {
    return this.#fields.has(canonicalHeaderName(name));
  }

  /** Replaces all values of a header, keeping its position when it already exists. */
  set(name: string, value: string | readonly string[]): this {
    const values = typeof value === 'string' ? [value] : [...value];
    if (values.length === 0) {
      this.delete(name);
      return this;
    }
    const key = canonicalHeaderName(name);
    const field = this.#fields.get(key);
    if (field !== undefined) field.values = values;
    else this.#create(name, key).values = values;
    return this;
  }

  /** Adds a value after the existing ones (bottom). */
  append(name: string, value: string): this {
    const key = canonicalHeaderName(name);
    const field = this.#fields.get(key) ?? this.#create(name, key);
    field.values.push(value);
    return this;
  }

  /** Adds a value before the existing ones (top), e.g. a new Via or Record-Route. */
  prepend(name: string, value: string): this {
    const key = canonicalHeaderName(name);
    const field = this.#fields.get(key) ?? this.#create(name, key);
    field.values.unshift(value);
    return this;
  }

  /** Replaces the topmost value, adding the header when absent. */
  replaceFirst(name: string, value: string): this {
    const key = canonicalHeaderName(name);
    const field = this.#fields.get(key) ?? this.#create(name, key);
    if (field.values.length === 0) field.values.push(value);
    else field.values[0] = value;
    return this;
  }

  /** Removes and returns the topmost value (e.g. popping the top Via). */
  removeFirst(name: string): string | undefined {
    const key = canonicalHeaderName(name);
    const field = this.#fields.get(key);
    if (field === undefined) return undefined;
    const value = field.values.shift();
    if (field.values.length === 0) this.#fields.delete(key);
    return value;
  }

  /** Removes every value of a header; returns whether it was present. */
  delete(name: string): boolean {
    return this.#fields.delete(canonicalHeaderName(name));
  }

  /** Number of distinct header names. */
  get size(): number {
    return this.#fields.size;
  }

  clone(): SipHeaders {
    const copy = new SipHeaders();
    for (const field of this.#fields.values()) {
      copy.#fields.set(field.key, { key: field.key, name: field.name, values: field.values.slice() });
    }
    return copy;
  }

  [Symbol.iterator](): IterableIterator<HeaderField> {
    return this.#fields.values();
  }

  #create(name: string, key: string): MutableHeaderField {
    if (!isToken(name)) throw new TypeError(`invalid SIP header name: ${JSON.stringify(name)}`);
    const field: MutableHeaderField = { key, name: DISPLAY_NAMES.get(key) ?? name, values: [] };
    this.#fields.set(key, field);
    return field;
  }
}

// ---------------------------------------------------------------------------
// Messages

export interface SipRequest {
  readonly kind: 'request';
  method: string;
  /** Request-URI as written; parse with `parseUri` when needed. */
  uri: string;
  version: string;
  headers: SipHeaders;
  body: Buffer;
}

export interface SipResponse {
  readonly kind: 'response';
  status: number;
  reason: string;
  version: string;
  headers: SipHeaders;
  body: Buffer;
}

export type SipMessage = SipRequest | SipResponse;

const EMPTY_BODY = Buffer.alloc(0);

export interface RequestInit {
  method: string;
  uri: string;
  headers?: SipHeaders;
  body?: Buffer;
}

export interface ResponseInit {
  status: number;
  reason?: string;
  headers?: SipHeaders;
  body?: Buffer;
}

export function createRequest(init: RequestInit): SipRequest {
  return {
    kind: 'request',
    method: init.method,
    uri: init.uri,
    version: SIP_VERSION,
    headers: init.headers ?? new SipHeaders(),
    body: init.body ?? EMPTY_BODY,
  };
}

export function createResponse(init: ResponseInit): SipResponse {
  return {
    kind: 'response',
    status: init.status,
    reason: init.reason ?? reasonPhrase(init.status),
    version: SIP_VERSION,
    headers: init.headers ?? new SipHeaders(),
    body: init.body ?? EMPTY_BODY,
  };
}

export function isRequest(message: SipMessage): message is SipRequest {
  return message.kind === 'request';
}

/** Copies a message so its start line and headers can be changed independently (bodies are shared). */
export function cloneMessage<T extends SipMessage>(message: T): T {
  return { ...message, headers: message.headers.clone() };
}

// ---------------------------------------------------------------------------
// Responses

const REASON_PHRASES: ReadonlyMap<number, string> = new Map([
  [100, 'Trying'],
  [180, 'Ringing'],
  [181, 'Call Is Being Forwarded'],
  [182, 'Queued'],
  [183, 'Session Progress'],
  [199, 'Early Dialog Terminated'],
  [200, 'OK'],
  [202, 'Accepted'],
  [204, 'No Notification'],
  [300, 'Multiple Choices'],
  [301, 'Moved Permanently'],
  [302, 'Moved Temporarily'],
  [305, 'Use Proxy'],
  [380, 'Alternative Service'],
  [400, 'Bad Request'],
  [401, 'Unauthorized'],
  [402, 'Payment Required'],
  [403, 'Forbidden'],
  [404, 'Not Found'],
  [405, 'Method Not Allowed'],
  [406, 'Not Acceptable'],
  [407, 'Proxy Authentication Required'],
  [408, 'Request Timeout'],
  [410, 'Gone'],
  [412, 'Conditional Request Failed'],
  [413, 'Request Entity Too Large'],
  [414, 'Request-URI Too Long'],
  [415, 'Unsupported Media Type'],
  [416, 'Unsupported URI Scheme'],
  [417, 'Unknown Resource-Priority'],
  [420, 'Bad Extension'],
  [421, 'Extension Required'],
  [422, 'Session Interval Too Small'],
  [423, 'Interval Too Brief'],
  [428, 'Use Identity Header'],
  [429, 'Provide Referrer Identity'],
  [430, 'Flow Failed'],
  [433, 'Anonymity Disallowed'],
  [436, 'Bad Identity-Info'],
  [437, 'Unsupported Certificate'],
  [438, 'Invalid Identity Header'],
  [439, 'First Hop Lacks Outbound Support'],
  [440, 'Max-Breadth Exceeded'],
  [469, 'Bad Info Package'],
  [470, 'Consent Needed'],
  [480, 'Temporarily Unavailable'],
  [481, 'Call/Transaction Does Not Exist'],
  [482, 'Loop Detected'],
  [483, 'Too Many Hops'],
  [484, 'Address Incomplete'],
  [485, 'Ambiguous'],
  [486, 'Busy Here'],
  [487, 'Request Terminated'],
  [488, 'Not Acceptable Here'],
  [489, 'Bad Event'],
  [491, 'Request Pending'],
  [493, 'Undecipherable'],
  [494, 'Security Agreement Required'],
  [500, 'Server Internal Error'],
  [501, 'Not Implemented'],
  [502, 'Bad Gateway'],
  [503, 'Service Unavailable'],
  [504, 'Server Time-out'],
  [505, 'Version Not Supported'],
  [513, 'Message Too Large'],
  [555, 'Push Notification Service Not Supported'],
  [580, 'Precondition Failure'],
  [600, 'Busy Everywhere'],
  [603, 'Decline'],
  [604, 'Does Not Exist Anywhere'],
  [606, 'Not Acceptable'],
  [607, 'Unwanted'],
  [608, 'Rejected'],
]);

/** Standard reason phrase for a status code, falling back to the class name. */
export function reasonPhrase(status: number): string {
  const phrase = REASON_PHRASES.get(status);
  if (phrase !== undefined) return phrase;
  if (status < 200) return 'Provisional';
  if (status < 300) return 'Success';
  if (status < 400) return 'Redirection';
  if (status < 500) return 'Client Error';
  if (status < 600) return 'Server Error';
  return 'Global Failure';
}

export interface BuildResponseOptions {
  reason?: string;
  /** Tag to add to To when the request's To has none (RFC 3261 §8.2.6.2). */
  toTag?: string;
  /**
   * Write the Via values on one line, as the request may have (`v: a,b,c`, RFC 3261 §7.3.1):
   * for answers to untrusted senders, which must not come out larger than the request went in.
   */
  compactVias?: boolean;
}

/**
 * Builds a response to a request per RFC 3261 §8.2.6: Via (all values, in
 * order), From, To, Call-ID and CSeq are copied, a To tag is added when given
 * and the request had none, and a 100 (Trying) echoes Timestamp
 * (§8.2.6.1). Record-Route is not copied: only dialog-creating responses
 * from a UAS need it (§12.1.1), and that is the caller's decision.
 */
export function buildResponse(request: SipRequest, status: number, options: BuildResponseOptions = {}): SipResponse {
  if (!Number.isInteger(status) || status < 100 || status > 699) {
    throw new RangeError(`invalid SIP status code: ${status}`);
  }
  const source = request.headers;
  const headers = new SipHeaders();
  for (const name of ['via', 'from', 'to', 'call-id', 'cseq']) {
    const values = source.getAll(name);
    if (values.length > 0) headers.set(name, name === 'via' && options.compactVias === true ? [values.join(',')] : values);
  }
  if (options.toTag !== undefined) {
    if (!isToken(options.toTag)) throw new TypeError(`invalid To tag: ${JSON.stringify(options.toTag)}`);
    const to = source.get('to');
    if (to !== undefined && parseNameAddr(to)?.params.has('tag') === false) {
      headers.replaceFirst('to', `${to};tag=${options.toTag}`);
    }
  }
  if (status === 100) {
    const timestamp = source.get('timestamp');
    if (timestamp !== undefined) headers.set('timestamp', timestamp);
  }
  return createResponse({ status, reason: options.reason ?? reasonPhrase(status), headers });
}
