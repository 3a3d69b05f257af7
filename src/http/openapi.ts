/**
 * The OpenAPI document's finishing (served at /openapi.json, read by /docs and by the client
 * generator). The TypeBox schemas stay inline on the routes, where they validate; here every
 * schema with a `title` becomes a named component referenced by `$ref`, so generated clients get
 * one type per resource (SipPhoneNumber, Problem …), error bodies are declared as the server
 * sends them (`application/problem+json`), and each response gets a description.
 */

type Json = Record<string, unknown>;

/** Top-level document fields: who it is, where it runs, what each tag groups. */
export const DOCUMENT_INFO = {
  info: {
    title: 'dialplane',
    version: '0.1.0',
    description:
      'SIP phone-number control plane for voice AI agents: trunks (SIP credentials), phone numbers, agents, the links between them, ' +
      'and the call records of the SIP edge. JSON-compatible with the BlackBox phone-number API (docs/api.md). ' +
      'Every operation takes an API key as a bearer token; errors are RFC 9457 problem details.',
    license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    contact: { name: 'dialplane maintainers' },
  },
  servers: [
    {
      url: '{scheme}://{host}',
      description: 'A dialplane server (DIALPLANE_HTTP_HOST and DIALPLANE_HTTP_PORT; default 127.0.0.1:8080).',
      variables: {
        scheme: { default: 'http', enum: ['http', 'https'] },
        host: { default: '127.0.0.1:8080' },
      },
    },
  ],
  tags: [
    { name: 'SIP credentials', description: 'Trunks: where calls and REGISTERs go, who may send calls in, and their health.' },
    { name: 'Agents', description: 'The voice agents that answer numbers and call out with them.' },
    { name: 'SIP phone numbers', description: 'Numbers on trunks, their registration, and their links to agents.' },
    { name: 'Call records', description: 'Every call attempt through the SIP edge, inbound and outbound.' },
    { name: 'Webhooks', description: 'Endpoints that receive the organization’s events, signed (Standard Webhooks), and their deliveries.' },
    { name: 'Events', description: 'The live event stream (Server-Sent Events) with resume.' },
  ],
};

const RESPONSE_DESCRIPTIONS: Record<string, string> = {
  '400': 'The input is invalid; `errors` names each field and what is wrong with it.',
  '401': 'No API key, or one that is unknown or revoked.',
  '404': 'No such resource in the caller’s organization.',
  '409': 'The change conflicts with the current state (see `detail`).',
  '429': 'Too many failed authentications from this address; retry later.',
};

/** Returns the document with titled schemas hoisted into components and responses described. */
export function finishDocument<T extends object>(input: T): T {
  const document = structuredClone(input) as Json;
  const components = (document.components ??= {}) as Json;
  const schemas = (components.schemas ??= {}) as Record<string, unknown>;
  const hoist = (schema: unknown): unknown => {
    if (Array.isArray(schema)) return schema.map(hoist);
    if (schema === null || typeof schema !== 'object') return schema;
    const copy: Json = {};
    for (const [key, value] of Object.entries(schema)) copy[key] = key === 'examples' || key === 'default' ? value : hoist(value);
    const title = copy.title;
    if (typeof title !== 'string') return copy;
    const existing = schemas[title];
    if (existing !== undefined && JSON.stringify(existing) !== JSON.stringify(copy)) {
      throw new Error(`two different schemas are titled ${title}: give one another title`);
    }
    schemas[title] = copy;
    return { $ref: `#/components/schemas/${title}` };
  };
  for (const operations of Object.values(document.paths as Record<string, Json>)) {
    for (const operation of Object.values(operations) as Json[]) {
      for (const [status, response] of Object.entries((operation.responses ?? {}) as Record<string, Json>)) {
        finishResponse(status, response, hoist);
      }
      const body = operation.requestBody as Json | undefined;
      for (const media of Object.values((body?.content ?? {}) as Record<string, Json>)) media.schema = hoist(media.schema);
    }
  }
  return { ...document, ...DOCUMENT_INFO, components: { ...components, schemas: sorted(schemas) } } as T;
}

function finishResponse(status: string, response: Json, hoist: (schema: unknown) => unknown): void {
  const content = response.content as Record<string, Json> | undefined;
  for (const media of Object.values(content ?? {})) media.schema = hoist(media.schema);
  const json = content?.['application/json'];
  if (content && json) {
    if (Number(status) >= 400) {
      delete content['application/json'];
      content['application/problem+json'] = json;
    }
  }
  // A route that describes a response of its own (a stream) keeps its words.
  if (!json && typeof response.description === 'string' && response.description !== 'Default Response') return;
  response.description = RESPONSE_DESCRIPTIONS[status] ?? (status === '204' ? 'Deleted; no body.' : describe(json?.schema as Json | undefined));
}

/** A success response's description from what it carries. */
function describe(schema: Json | undefined): string {
  const name = (reference: unknown) => (typeof reference === 'string' ? reference.split('/').pop() : undefined);
  const single = name(schema?.$ref);
  if (single) return `The ${single}.`;
  const item = name((schema?.items as Json | undefined)?.$ref);
  return item ? `A list of ${item}.` : 'OK.';
}

function sorted(schemas: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(schemas).sort(([a], [b]) => a.localeCompare(b)));
}
