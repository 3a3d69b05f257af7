import { Type, type TSchema } from '@sinclair/typebox';

/** Shapes shared by several resources. Each is at once validation, TypeScript type and OpenAPI. */
export const Uuid = Type.String({ format: 'uuid', description: 'A UUID.' });
export const Timestamp = Type.String({ format: 'date-time', description: 'ISO 8601, UTC, with Z.' });

/**
 * A string from a fixed list, written as one JSON Schema `enum` (clearer in OpenAPI and in the
 * validation message than a union of constants).
 */
export const StringEnum = <const T extends readonly string[]>(values: T, options: { description?: string; default?: T[number] } = {}) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });

export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/**
 * A query parameter with a default: optional on the wire (so the OpenAPI document does not mark
 * it required), yet always present in the handler, since the validator fills in the default.
 */
export const Defaulted = <T extends TSchema>(schema: T): T => Type.Optional(schema) as unknown as T;

export const IdParams = Type.Object({ id: Uuid }, { additionalProperties: false });

export const PageQuery = {
  skip: Defaulted(Type.Integer({ minimum: 0, maximum: 2147483647, default: 0 })),
  take: Defaulted(Type.Integer({ minimum: 1, maximum: 1000, default: 20 })),
};

export const ForceQuery = Type.Object({
  force: Defaulted(Type.Boolean({ default: false, description: 'Also delete what depends on it.' })),
});

export function Page<T extends TSchema>(item: T, name: string) {
  return Type.Object(
    {
      items: Type.Array(item),
      totalCount: Type.Integer({ minimum: 0 }),
      skip: Type.Integer({ minimum: 0 }),
      take: Type.Integer({ minimum: 1 }),
    },
    { title: name },
  );
}

export const Problem = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    instance: Type.String(),
    errors: Type.Optional(Type.Record(Type.String(), Type.Array(Type.String()))),
  },
  {
    title: 'Problem',
    description: 'RFC 9457 problem details.',
    examples: [
      {
        type: 'about:blank',
        title: 'Conflict',
        status: 409,
        detail:
          'This phone number is already linked to an agent for inbound calls elsewhere; a number can have only one inbound agent in the whole system.',
        instance: '/api/v1/sip-phone-numbers/0b9f7a52-3c4d-4e5f-8a6b-7c8d9e0f1a2b/agent-link',
      },
    ],
  },
);

/** Error responses every authenticated route may give, for the OpenAPI document. */
export const problemResponses = {
  400: Problem,
  401: Problem,
  404: Problem,
  429: Problem,
};
