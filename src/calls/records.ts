import crypto from 'node:crypto';
import type { Insertable, Kysely, Selectable } from 'kysely';
import type { Context } from '../context.ts';
import type { CallRecordsTable, Database } from '../db/schema.ts';
import type { InitialRequestRecord } from '../sip/router.ts';
import type { CallDirection, CallMedia, CallOutcome, CallRecord, CallRecordListQuery } from './schemas.ts';

export interface CallAttempt {
  orgId: string | null;
  direction: CallDirection;
  startedTime: string;
  endedTime: string;
  phoneNumberId: string | null;
  phoneNumber: string;
  remoteParty: string;
  agentId: string | null;
  outcome: CallOutcome;
  statusCode: number;
  callId: string;
  sourceAddress: string;
}

/** The outcome of a call the edge forwarded, from the final status the caller got. */
function forwardedCallOutcome(finalStatus: number): CallOutcome {
  if (finalStatus >= 200 && finalStatus < 300) return 'answered';
  if (finalStatus === 487) return 'cancelled';
  if (finalStatus === 408) return 'timeout';
  if (finalStatus === 503) return 'failed';
  return 'rejected';
}

/** Stored text fields are capped: what a caller writes in them must not grow the table without bound. */
export const MAX_CALL_ID_LENGTH = 256;
export const MAX_REMOTE_PARTY_LENGTH = 256;
export const MAX_PHONE_NUMBER_LENGTH = 64;

/** What a router knows of a call attempt; the rest of its record comes from how the INVITE ended. */
export interface CallParties {
  direction: CallDirection;
  orgId: string | null;
  phoneNumberId: string | null;
  phoneNumber: string;
  remoteParty: string;
  agentId: string | null;
  /** The router's own refusal, when it refused the call; otherwise the final status decides. */
  refusal: CallOutcome | null;
}

/** The one place a call attempt's record is built. */
export function callAttempt(record: InitialRequestRecord, parties: CallParties): CallAttempt {
  const { refusal, ...known } = parties;
  return {
    ...known,
    outcome: refusal ?? forwardedCallOutcome(record.finalStatus),
    startedTime: record.startedAt.toISOString(),
    endedTime: record.endedAt.toISOString(),
    statusCode: record.finalStatus,
    callId: record.request.headers.get('call-id') ?? '',
    sourceAddress: `${record.source.address}:${record.source.port}`,
  };
}

const FLUSH_INTERVAL_MS = 200;
const ROWS_PER_INSERT = 500;
/** Past this many unwritten records (the database is down or slow) new ones are dropped and counted. */
const MAX_PENDING = 100000;

/**
 * Writes call records in batches off the call path: a call only appends to a buffer; a timer
 * writes what has gathered in one multi-row insert. Shutdown flushes what is left. An attempt
 * that belongs to no organization (a number nobody has, an unknown agent) is not stored: no
 * one could ever read it, and storing it would let any sender fill the table. Metrics count it.
 */
export class CallRecorder {
  #pending: Insertable<CallRecordsTable>[] = [];
  #pendingMedia: { callId: string; media: CallMedia }[] = [];
  #timer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> = Promise.resolve();
  dropped = 0;

  readonly #db: Kysely<Database>;
  readonly #onError: (error: unknown) => void;

  constructor(db: Kysely<Database>, onError: (error: unknown) => void = () => {}) {
    this.#db = db;
    this.#onError = onError;
  }

  record(attempt: CallAttempt): void {
    if (attempt.orgId === null) return;
    if (this.#pending.length >= MAX_PENDING) {
      this.dropped++;
      return;
    }
    this.#pending.push({
      id: crypto.randomUUID(),
      org_id: attempt.orgId,
      direction: attempt.direction,
      started_time: attempt.startedTime,
      ended_time: attempt.endedTime,
      phone_number_id: attempt.phoneNumberId,
      phone_number: attempt.phoneNumber.slice(0, MAX_PHONE_NUMBER_LENGTH),
      remote_party: attempt.remoteParty.slice(0, MAX_REMOTE_PARTY_LENGTH),
      agent_id: attempt.agentId,
      outcome: attempt.outcome,
      status_code: attempt.statusCode,
      call_id: attempt.callId.slice(0, MAX_CALL_ID_LENGTH),
      source_address: attempt.sourceAddress,
    });
    this.#scheduleFlush();
  }

  /**
   * What an answered call's media did, known when its relay session is deleted (at the BYE):
   * written onto its record after the records pending now, so a short call's record is there.
   */
  recordMedia(callId: string, media: CallMedia): void {
    if (this.#pendingMedia.length >= MAX_PENDING) {
      this.dropped++;
      return;
    }
    this.#pendingMedia.push({ callId: callId.slice(0, MAX_CALL_ID_LENGTH), media });
    this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    this.#timer ??= setTimeout(() => {
      this.#timer = null;
      void this.flush();
    }, FLUSH_INTERVAL_MS);
  }

  /** Writes everything recorded so far; resolves when it is in the database. */
  flush(): Promise<void> {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    const batch = this.#pending;
    const media = this.#pendingMedia;
    this.#pending = [];
    this.#pendingMedia = [];
    this.#flushing = this.#flushing.then(async () => {
      for (let i = 0; i < batch.length; i += ROWS_PER_INSERT) {
        try {
          await this.#db
            .insertInto('call_records')
            .values(batch.slice(i, i + ROWS_PER_INSERT))
            .execute();
        } catch (error) {
          this.dropped += Math.min(ROWS_PER_INSERT, batch.length - i);
          this.#onError(error);
        }
      }
      for (const { callId, media: figures } of media) {
        try {
          await this.#db
            .updateTable('call_records')
            .set({ media: JSON.stringify(figures) })
            .where('call_id', '=', callId)
            .where('outcome', '=', 'answered')
            .where('media', 'is', null)
            .execute();
        } catch (error) {
          this.dropped++;
          this.#onError(error);
        }
      }
    });
    return this.#flushing;
  }
}

/** The stored media figures; those written before lost packets were kept have `lost: null`. */
function mediaFromRow(text: string): CallMedia {
  const media = JSON.parse(text) as CallMedia;
  for (const flow of [media.fromCaller, media.fromCallee]) if (flow !== null) flow.lost ??= null;
  return media;
}

function callRecordFromRow(row: Selectable<CallRecordsTable>): CallRecord {
  return {
    id: row.id,
    orgId: row.org_id ?? '',
    direction: row.direction as CallDirection,
    startedTime: row.started_time,
    endedTime: row.ended_time,
    phoneNumberId: row.phone_number_id,
    phoneNumber: row.phone_number,
    remoteParty: row.remote_party,
    agentId: row.agent_id,
    outcome: row.outcome as CallOutcome,
    statusCode: row.status_code,
    callId: row.call_id,
    sourceAddress: row.source_address,
    media: row.media === null ? null : mediaFromRow(row.media),
  };
}

/** An organization's call records, newest first. */
export async function listCallRecords(ctx: Context, orgId: string, query: CallRecordListQuery) {
  const filtered = () => {
    let q = ctx.db.selectFrom('call_records').where('org_id', '=', orgId);
    if (query.phoneNumberId !== undefined) q = q.where('phone_number_id', '=', query.phoneNumberId);
    if (query.agentId !== undefined) q = q.where('agent_id', '=', query.agentId);
    if (query.outcome !== undefined) q = q.where('outcome', '=', query.outcome);
    if (query.direction !== undefined) q = q.where('direction', '=', query.direction);
    return q;
  };
  const [rows, count] = await Promise.all([
    filtered().selectAll().orderBy('started_time', 'desc').orderBy('id', 'desc').offset(query.skip).limit(query.take).execute(),
    filtered()
      .select((eb) => eb.fn.countAll<string | number>().as('n'))
      .executeTakeFirstOrThrow(),
  ]);
  return { items: rows.map(callRecordFromRow), totalCount: Number(count.n), skip: query.skip, take: query.take };
}
