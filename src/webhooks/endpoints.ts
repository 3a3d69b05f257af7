import crypto from 'node:crypto';
import net from 'node:net';
import type { Selectable } from 'kysely';
import type { TargetRules } from '../common/addresses.ts';
import { invalid, notFound } from '../common/errors.ts';
import { now } from '../common/time.ts';
import type { Context } from '../context.ts';
import type { SecretBox } from '../credentials/secret-box.ts';
import type { WebhookEndpointsTable } from '../db/schema.ts';
import type { EventType } from '../events/event-types.ts';
import type { Delivery, DeliveryListQuery, Webhook, WebhookInput } from './schemas.ts';
import { generateSecret } from './signing.ts';

type EndpointRow = Selectable<WebhookEndpointsTable>;

function webhookFromRow(row: EndpointRow): Webhook {
  const previousValid = row.previous_secret_until !== null && Date.parse(row.previous_secret_until) > Date.now();
  return {
    id: row.id,
    orgId: row.org_id,
    url: row.url,
    eventTypes: row.event_types === '*' ? null : (row.event_types.split(',').filter((type) => type !== '') as EventType[]),
    enabled: row.enabled === 1,
    disabledReason: row.disabled_reason,
    failingSince: row.failing_since,
    description: row.description,
    previousSecretValidUntil: previousValid ? row.previous_secret_until : null,
    createdTime: row.created_time,
    lastUpdateTime: row.last_update_time,
  };
}

/** `*` for every type, else `,a,b,`: a type is wanted when `,type,` occurs (src/events/event-log.ts). */
const storedTypes = (types: readonly string[] | null | undefined) => (types == null ? '*' : `,${types.join(',')},`);

/** The URL rules: http(s), no credentials in it, and a literal address the operator's target rules accept (names are checked when resolved). */
function checkUrl(raw: string, rules: TargetRules): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalid('url', 'is not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid('url', 'must be http or https');
  if (url.username !== '' || url.password !== '') throw invalid('url', 'must not carry a user name or password');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (net.isIP(host) !== 0) {
    const refusal = rules.policy.refusal(host);
    if (refusal !== null) throw invalid('url', `must not point at ${refusal}`);
  }
  return url.toString();
}

async function findRow(ctx: Context, orgId: string, id: string): Promise<EndpointRow> {
  const row = await ctx.db.selectFrom('webhook_endpoints').selectAll().where('id', '=', id).where('org_id', '=', orgId).executeTakeFirst();
  if (!row) throw notFound(`Webhook ${id} was not found`);
  return row;
}

export async function listWebhooks(ctx: Context, orgId: string): Promise<{ items: Webhook[] }> {
  const rows = await ctx.db.selectFrom('webhook_endpoints').selectAll().where('org_id', '=', orgId).orderBy('created_time').orderBy('id').execute();
  return { items: rows.map(webhookFromRow) };
}

export async function getWebhook(ctx: Context, orgId: string, id: string): Promise<Webhook> {
  return webhookFromRow(await findRow(ctx, orgId, id));
}

export async function createWebhook(ctx: Context, orgId: string, input: WebhookInput, rules: TargetRules): Promise<Webhook & { secret: string }> {
  const url = checkUrl(input.url, rules);
  const id = crypto.randomUUID();
  const secret = generateSecret();
  const time = now();
  const row: EndpointRow = {
    id,
    org_id: orgId,
    url,
    event_types: storedTypes(input.eventTypes),
    enabled: input.enabled === false ? 0 : 1,
    description: input.description ?? null,
    secret_enc: ctx.secrets.seal(secret, id),
    previous_secret_enc: null,
    previous_secret_until: null,
    failing_since: null,
    disabled_reason: null,
    created_time: time,
    last_update_time: time,
  };
  await ctx.db.insertInto('webhook_endpoints').values(row).execute();
  return { ...webhookFromRow(row), secret };
}

export async function replaceWebhook(ctx: Context, orgId: string, id: string, input: WebhookInput, rules: TargetRules): Promise<Webhook> {
  const url = checkUrl(input.url, rules);
  const enabled = input.enabled === false ? 0 : 1;
  const updated = await ctx.db
    .updateTable('webhook_endpoints')
    .set({
      url,
      event_types: storedTypes(input.eventTypes),
      enabled,
      description: input.description ?? null,
      last_update_time: now(),
      // Enabling (again) starts a new failure streak.
      ...(enabled === 1 ? { disabled_reason: null, failing_since: null } : {}),
    })
    .where('id', '=', id)
    .where('org_id', '=', orgId)
    .returningAll()
    .executeTakeFirst();
  if (!updated) throw notFound(`Webhook ${id} was not found`);
  return webhookFromRow(updated);
}

export async function deleteWebhook(ctx: Context, orgId: string, id: string): Promise<void> {
  await ctx.db.transaction().execute(async (trx) => {
    const deleted = await trx.deleteFrom('webhook_endpoints').where('id', '=', id).where('org_id', '=', orgId).executeTakeFirst();
    if (deleted.numDeletedRows === 0n) throw notFound(`Webhook ${id} was not found`);
    await trx.deleteFrom('webhook_deliveries').where('endpoint_id', '=', id).execute();
    await trx.deleteFrom('webhook_attempts').where('endpoint_id', '=', id).execute();
  });
}

/** A new secret; the old one signs too (and so stays valid for receivers) for `graceSeconds`. */
export async function rotateSecret(ctx: Context, orgId: string, id: string, graceSeconds: number): Promise<Webhook & { secret: string }> {
  const existing = await findRow(ctx, orgId, id);
  const secret = generateSecret();
  const time = now();
  const updated = await ctx.db
    .updateTable('webhook_endpoints')
    .set({
      secret_enc: ctx.secrets.seal(secret, id),
      previous_secret_enc: graceSeconds > 0 ? existing.secret_enc : null,
      previous_secret_until: graceSeconds > 0 ? new Date(Date.now() + graceSeconds * 1000).toISOString() : null,
      last_update_time: time,
    })
    .where('id', '=', id)
    .where('org_id', '=', orgId)
    .returningAll()
    .executeTakeFirstOrThrow();
  return { ...webhookFromRow(updated), secret };
}

/** The secrets a request is signed with: the current one, and the previous one during its grace period. */
export function endpointSecrets(
  box: SecretBox,
  endpointId: string,
  row: Pick<EndpointRow, 'secret_enc' | 'previous_secret_enc' | 'previous_secret_until'>,
  at: Date,
): string[] {
  const secrets = [box.open(row.secret_enc, endpointId)];
  if (row.previous_secret_enc !== null && row.previous_secret_until !== null && Date.parse(row.previous_secret_until) > at.getTime()) {
    secrets.push(box.open(row.previous_secret_enc, endpointId));
  }
  return secrets;
}

export async function listDeliveries(ctx: Context, orgId: string, id: string, query: DeliveryListQuery) {
  await findRow(ctx, orgId, id);
  const filtered = () => {
    let q = ctx.db.selectFrom('webhook_deliveries').where('endpoint_id', '=', id).where('org_id', '=', orgId);
    if (query.status !== undefined) q = q.where('status', '=', query.status);
    return q;
  };
  const [rows, count] = await Promise.all([
    filtered().selectAll().orderBy('event_seq', 'desc').offset(query.skip).limit(query.take).execute(),
    filtered()
      .select((eb) => eb.fn.countAll<string | number>().as('n'))
      .executeTakeFirstOrThrow(),
  ]);
  const seqs = rows.map((row) => Number(row.event_seq));
  const attempts =
    seqs.length === 0
      ? []
      : await ctx.db
          .selectFrom('webhook_attempts')
          .selectAll()
          .where('endpoint_id', '=', id)
          .where('event_seq', 'in', seqs)
          .orderBy('attempt')
          .execute();
  const items: Delivery[] = rows.map((row) => ({
    eventId: row.event_id,
    eventType: row.event_type as EventType,
    status: row.status as Delivery['status'],
    attemptCount: row.attempts,
    nextAttemptTime: row.status === 'pending' ? row.next_attempt_time : null,
    createdTime: row.created_time,
    finishedTime: row.finished_time,
    attempts: attempts
      .filter((attempt) => Number(attempt.event_seq) === Number(row.event_seq))
      .map((attempt) => ({
        attempt: attempt.attempt,
        time: attempt.time,
        responseStatus: attempt.response_status,
        durationMs: attempt.duration_ms,
        error: attempt.error,
      })),
  }));
  return { items, totalCount: Number(count.n), skip: query.skip, take: query.take };
}

/**
 * Sends a delivery again (failed, delivered, or still pending): at once, with a new retry period
 * and the same webhook-id, even ahead of later events of its resource.
 */
export async function resendDelivery(ctx: Context, orgId: string, id: string, eventId: string): Promise<void> {
  await findRow(ctx, orgId, id);
  const time = now();
  const updated = await ctx.db
    .updateTable('webhook_deliveries')
    .set({ status: 'pending', ready: 1, next_attempt_time: time, retry_start_time: time, finished_time: null, claimed_until: null })
    .where('endpoint_id', '=', id)
    .where('org_id', '=', orgId)
    .where('event_id', '=', eventId)
    .executeTakeFirst();
  if (updated.numUpdatedRows === 0n) throw notFound(`No delivery of event ${eventId} to webhook ${id}`);
}
