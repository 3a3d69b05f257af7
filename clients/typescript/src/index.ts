/**
 * The hand-written layer over the generated types (schema.ts): the API key on every request, one
 * method per operation grouped by resource, errors thrown as typed problems, and page iteration.
 * `raw` is the openapi-fetch client itself, for anything the layer does not cover.
 */
import createClient, { type Client } from 'openapi-fetch';
import type { components, operations, paths } from './schema.ts';

export type { components, operations, paths } from './schema.ts';

type Schemas = components['schemas'];
export type SipPhoneNumber = Schemas['SipPhoneNumber'];
export type SipPhoneNumberInput = Schemas['SipPhoneNumberInput'];
export type SipPhoneNumberPage = Schemas['SipPhoneNumberPage'];
export type SipPhoneNumberAffectedAgents = Schemas['SipPhoneNumberAffectedAgents'];
export type RegistrationStatus = Schemas['RegistrationStatus'];
export type SipCredentials = Schemas['SipCredentials'];
export type SipCredentialsInput = Schemas['SipCredentialsInput'];
export type SipCredentialsAffectedAgents = Schemas['SipCredentialsAffectedAgents'];
export type SipTrunkHealth = Schemas['SipTrunkHealth'];
export type Agent = Schemas['Agent'];
export type AgentCreate = Schemas['AgentCreate'];
export type AgentUpdate = Schemas['AgentUpdate'];
export type CallRecord = Schemas['CallRecord'];
export type CallRecordPage = Schemas['CallRecordPage'];
export type Problem = Schemas['Problem'];
export type Webhook = Schemas['Webhook'];
export type WebhookInput = Schemas['WebhookInput'];
export type WebhookWithSecret = Schemas['WebhookWithSecret'];
export type WebhookDelivery = Schemas['WebhookDelivery'];
export type WebhookDeliveryPage = Schemas['WebhookDeliveryPage'];
export type DialplaneEvent = Schemas['Event'];
export type EventType = Schemas['EventType'];

/** The query parameters an operation takes. */
export type QueryOf<Op extends keyof operations> = NonNullable<operations[Op]['parameters']['query']>;
export type LinkMode = QueryOf<'linkSipPhoneNumber'>['mode'] & string;

/** A page of any list operation. */
export interface Page<T> {
  items: T[];
  totalCount: number;
  skip: number;
  take: number;
}

/**
 * An error answer of the API (RFC 9457 problem details). `status` 401 means the key is missing,
 * wrong or revoked; 409 a conflict such as a number already linked inbound elsewhere; 400 comes
 * with `errors`, the messages per field.
 */
export class DialplaneProblem extends Error implements Problem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly instance: string;
  readonly errors?: Record<string, string[]>;

  constructor(problem: Problem) {
    super(problem.detail);
    this.name = 'DialplaneProblem';
    this.type = problem.type;
    this.title = problem.title;
    this.status = problem.status;
    this.detail = problem.detail;
    this.instance = problem.instance;
    if (problem.errors !== undefined) this.errors = problem.errors;
  }

  /** The problem an error answer carries; a body that is not one (a proxy's page) still becomes one. */
  static fromResponse(response: Response, body: unknown): DialplaneProblem {
    if (isProblem(body)) return new DialplaneProblem(body);
    return new DialplaneProblem({
      type: 'about:blank',
      title: response.statusText || `HTTP ${response.status}`,
      status: response.status,
      detail: `The server answered ${response.status} without a problem body.`,
      instance: new URL(response.url || 'http://invalid/').pathname,
    });
  }
}

function isProblem(body: unknown): body is Problem {
  if (body === null || typeof body !== 'object') return false;
  const fields = body as Record<string, unknown>;
  return typeof fields.status === 'number' && typeof fields.title === 'string' && typeof fields.detail === 'string';
}

export interface DialplaneClientOptions {
  /** Where dialplane's HTTP API listens, e.g. `http://127.0.0.1:8080` (no `/api/v1`). */
  baseUrl: string;
  /** An API key (`dpk_…`), sent as a bearer token. */
  apiKey: string;
  /** A fetch to use instead of the global one (tests, proxies, timeouts). */
  fetch?: typeof globalThis.fetch;
}

interface Answer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** The data of a successful answer; the problem of any other, thrown. */
async function dataOf<T>(pending: Promise<Answer<T>>): Promise<T> {
  const { data, error, response } = await pending;
  if (!response.ok) throw DialplaneProblem.fromResponse(response, error);
  return data as T;
}

/** Like dataOf, for operations that answer 204 No Content. */
async function done(pending: Promise<Answer<unknown>>): Promise<void> {
  await dataOf(pending);
}

export function createDialplaneClient(options: DialplaneClientOptions) {
  const raw: Client<paths> = createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ''),
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  const authorization = `Bearer ${options.apiKey}`;
  raw.use({
    onRequest({ request }) {
      request.headers.set('authorization', authorization);
      return request;
    },
  });

  const numberPath = (id: string) => ({ params: { path: { id } } });
  const agentPath = (agentId: string) => ({ params: { path: { agentId } } });

  return {
    raw,
    numbers: {
      list: (query: QueryOf<'listSipPhoneNumbers'> = {}) => dataOf(raw.GET('/api/v1/sip-phone-numbers', { params: { query } })),
      get: (id: string) => dataOf(raw.GET('/api/v1/sip-phone-numbers/{id}', numberPath(id))),
      create: (body: SipPhoneNumberInput) => dataOf(raw.POST('/api/v1/sip-phone-numbers', { body })),
      replace: (id: string, body: SipPhoneNumberInput) => dataOf(raw.PUT('/api/v1/sip-phone-numbers/{id}', { ...numberPath(id), body })),
      delete: (id: string, query: QueryOf<'deleteSipPhoneNumber'> = {}) =>
        done(raw.DELETE('/api/v1/sip-phone-numbers/{id}', { params: { path: { id }, query } })),
      affectedAgents: (id: string) => dataOf(raw.GET('/api/v1/sip-phone-numbers/{id}/affected-agents', numberPath(id))),
      /** Links the number to an agent: `inbound` (the default) or `replaceOutbound` (the agent's caller ID). */
      link: (id: string, query: QueryOf<'linkSipPhoneNumber'>) =>
        dataOf(raw.PUT('/api/v1/sip-phone-numbers/{id}/agent-link', { params: { path: { id }, query } })),
      unlink: (id: string, query: QueryOf<'unlinkSipPhoneNumber'> = {}) =>
        dataOf(raw.DELETE('/api/v1/sip-phone-numbers/{id}/agent-link', { params: { path: { id }, query } })),
    },
    agents: {
      /** Every agent of the organization, newest first (not paged, as in BlackBox). */
      list: () => dataOf(raw.GET('/api/v1/agents')),
      get: (agentId: string) => dataOf(raw.GET('/api/v1/agents/{agentId}', agentPath(agentId))),
      create: (body: AgentCreate) => dataOf(raw.POST('/api/v1/agents', { body })),
      update: (agentId: string, body: AgentUpdate) => dataOf(raw.PUT('/api/v1/agents/{agentId}', { ...agentPath(agentId), body })),
      delete: (agentId: string) => done(raw.DELETE('/api/v1/agents/{agentId}', agentPath(agentId))),
    },
    credentials: {
      list: (query: QueryOf<'listSipCredentials'> = {}) => dataOf(raw.GET('/api/v1/sip-credentials', { params: { query } })),
      get: (id: string) => dataOf(raw.GET('/api/v1/sip-credentials/{id}', numberPath(id))),
      create: (body: SipCredentialsInput) => dataOf(raw.POST('/api/v1/sip-credentials', { body })),
      replace: (id: string, body: SipCredentialsInput) => dataOf(raw.PUT('/api/v1/sip-credentials/{id}', { ...numberPath(id), body })),
      /** `force: true` also deletes the numbers on the trunk and their links (see affectedAgents first). */
      delete: (id: string, query: QueryOf<'deleteSipCredentials'> = {}) =>
        done(raw.DELETE('/api/v1/sip-credentials/{id}', { params: { path: { id }, query } })),
      affectedAgents: (id: string) => dataOf(raw.GET('/api/v1/sip-credentials/{id}/affected-agents', numberPath(id))),
    },
    callRecords: {
      list: (query: QueryOf<'listCallRecords'> = {}) => dataOf(raw.GET('/api/v1/call-records', { params: { query } })),
    },
    webhooks: {
      list: () => dataOf(raw.GET('/api/v1/webhooks')),
      get: (id: string) => dataOf(raw.GET('/api/v1/webhooks/{id}', numberPath(id))),
      /** The answer's `secret` (`whsec_…`) is shown only here: keep it to verify deliveries. */
      create: (body: WebhookInput) => dataOf(raw.POST('/api/v1/webhooks', { body })),
      replace: (id: string, body: WebhookInput) => dataOf(raw.PUT('/api/v1/webhooks/{id}', { ...numberPath(id), body })),
      delete: (id: string) => done(raw.DELETE('/api/v1/webhooks/{id}', numberPath(id))),
      rotateSecret: (id: string, graceSeconds?: number) =>
        dataOf(raw.POST('/api/v1/webhooks/{id}/rotate-secret', { ...numberPath(id), body: graceSeconds === undefined ? {} : { graceSeconds } })),
      deliveries: (id: string, query: QueryOf<'listWebhookDeliveries'> = {}) =>
        dataOf(raw.GET('/api/v1/webhooks/{id}/deliveries', { params: { path: { id }, query } })),
      resend: (id: string, eventId: string) =>
        done(raw.POST('/api/v1/webhooks/{id}/deliveries/{eventId}/resend', { params: { path: { id, eventId } } })),
    },
    events: {
      /**
       * The organization's events as they happen (Server-Sent Events), each with its stream id;
       * pass the last id seen as `lastEventId` to resume. Ends when `signal` aborts.
       */
      stream: (query: EventStreamQuery = {}) => streamEvents(options, authorization, query),
    },
  };
}

export interface EventStreamQuery {
  /** Only these types; every type when absent. */
  types?: EventType[];
  /** Resume after this stream id (the `id` of the last event seen). */
  lastEventId?: string;
  signal?: AbortSignal;
  /** Called once the server has accepted the stream: from then on, every event comes. */
  onOpen?: () => void;
}

/** Reads the event stream with fetch (EventSource cannot send the API key). */
async function* streamEvents(
  options: DialplaneClientOptions,
  authorization: string,
  query: EventStreamQuery,
): AsyncGenerator<{ id: string; event: DialplaneEvent }> {
  const url = new URL(`${options.baseUrl.replace(/\/+$/, '')}/api/v1/events`);
  if (query.types?.length) url.searchParams.set('types', query.types.join(','));
  const headers: Record<string, string> = { authorization, accept: 'text/event-stream' };
  if (query.lastEventId !== undefined) headers['last-event-id'] = query.lastEventId;
  const response = await (options.fetch ?? globalThis.fetch)(new Request(url, { headers, signal: query.signal }));
  if (!response.ok || response.body === null) {
    const body: unknown = await response.json().catch(() => undefined);
    throw DialplaneProblem.fromResponse(response, body);
  }
  query.onOpen?.();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { value, done: ended } = await reader.read();
      if (ended) return;
      buffer += value;
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let id = '';
        let data = '';
        for (const line of frame.split('\n')) {
          if (line.startsWith('id: ')) id = line.slice(4);
          else if (line.startsWith('data: ')) data += line.slice(6);
        }
        if (data !== '') yield { id, event: JSON.parse(data) as DialplaneEvent };
      }
    }
  } finally {
    reader.releaseLock();
  }
}

export type DialplaneClient = ReturnType<typeof createDialplaneClient>;

/**
 * Every item of a list operation, fetching pages of `take` as the loop goes:
 * `for await (const number of paginate((page) => client.numbers.list({ ...page, unlinkedOnly: true })))`.
 */
export async function* paginate<T>(list: (page: { skip: number; take: number }) => Promise<Page<T>>, take = 100): AsyncGenerator<T> {
  for (let skip = 0; ; skip += take) {
    const page = await list({ skip, take });
    yield* page.items;
    if (page.items.length < take || skip + page.items.length >= page.totalCount) return;
  }
}
