import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { writeEvents, type EventSignal } from '../events/event-log.ts';
import { resourceOf, type NewEvent } from '../events/event-types.ts';
import type { CallAttempt } from './records.ts';
import type { CallDirection } from './schemas.ts';

/** A call the edge forwarded, as its events show it (docs/events.md). */
export interface StartedCall {
  callId: string;
  orgId: string;
  direction: CallDirection;
  phoneNumberId: string | null;
  phoneNumber: string;
  remoteParty: string;
  agentId: string | null;
}

interface AnsweredCall {
  call: StartedCall;
  startedTime: string;
  answeredTime: string;
}

const FLUSH_INTERVAL_MS = 50;
/** Past this many unwritten events (the database is down or slow) new ones are dropped and counted. */
const MAX_PENDING = 100_000;
/** Answered calls remembered for their BYE; the oldest are forgotten first (the BYE then reads the call record). */
const MAX_ANSWERED = 100_000;

/**
 * The call events: `call.started` when an INVITE is forwarded, `call.answered` with its 2xx,
 * `call.ended` with its failure or, once answered, with the BYE that ends it (the duration runs
 * from the answer). A call's events are not tied to a change of the API's resources, so they
 * are written in batches off the call path, like call records; a BYE reaching another instance
 * finds the call by its record. A call of no organization has no events.
 */
export class CallEvents {
  #pending: NewEvent[] = [];
  #timer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> = Promise.resolve();
  readonly #answered = new Map<string, AnsweredCall>();
  dropped = 0;

  readonly #db: Kysely<Database>;
  readonly #signal: EventSignal | undefined;
  readonly #onError: (error: unknown) => void;

  constructor(db: Kysely<Database>, signal: EventSignal | undefined, onError: (error: unknown) => void = () => {}) {
    this.#db = db;
    this.#signal = signal;
    this.#onError = onError;
  }

  started(call: StartedCall, startedTime: Date): void {
    this.#add('call.started', call, { startedTime: startedTime.toISOString() });
  }

  /** The INVITE's final response: answered, or the call's end. */
  finished(attempt: CallAttempt): void {
    if (attempt.orgId === null) return;
    const call: StartedCall = {
      callId: attempt.callId,
      orgId: attempt.orgId,
      direction: attempt.direction,
      phoneNumberId: attempt.phoneNumberId,
      phoneNumber: attempt.phoneNumber,
      remoteParty: attempt.remoteParty,
      agentId: attempt.agentId,
    };
    if (attempt.outcome === 'answered') {
      if (this.#answered.size >= MAX_ANSWERED) this.#answered.delete(this.#answered.keys().next().value!);
      this.#answered.set(attempt.callId, { call, startedTime: attempt.startedTime, answeredTime: attempt.endedTime });
      this.#add('call.answered', call, { startedTime: attempt.startedTime, answeredTime: attempt.endedTime, statusCode: attempt.statusCode });
      return;
    }
    this.#add('call.ended', call, {
      startedTime: attempt.startedTime,
      answeredTime: null,
      endedTime: attempt.endedTime,
      outcome: attempt.outcome,
      statusCode: attempt.statusCode,
      durationSeconds: 0,
    });
  }

  /** A BYE passed the edge: the answered call with this Call-ID has ended. */
  async hungUp(callId: string): Promise<void> {
    let answered = this.#answered.get(callId);
    this.#answered.delete(callId);
    answered ??= await this.#answeredElsewhere(callId);
    if (!answered) return;
    const ended = new Date();
    this.#add('call.ended', answered.call, {
      startedTime: answered.startedTime,
      answeredTime: answered.answeredTime,
      endedTime: ended.toISOString(),
      outcome: 'answered',
      statusCode: 200,
      durationSeconds: Math.max(0, Math.round((ended.getTime() - Date.parse(answered.answeredTime)) / 1000)),
    });
  }

  /** Writes what has gathered; resolves when it is in the database. */
  flush(): Promise<void> {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    const batch = this.#pending;
    this.#pending = [];
    this.#flushing = this.#flushing.then(async () => {
      if (batch.length === 0) return;
      try {
        await this.#db.transaction().execute((trx) => writeEvents(trx, batch));
        this.#signal?.written(batch.map((event) => event.type));
      } catch (error) {
        this.dropped += batch.length;
        this.#onError(error);
      }
    });
    return this.#flushing;
  }

  /** An answered call set up through another instance (or forgotten here): its record tells. */
  async #answeredElsewhere(callId: string): Promise<AnsweredCall | undefined> {
    const row = await this.#db
      .selectFrom('call_records')
      .selectAll()
      .where('call_id', '=', callId)
      .where('outcome', '=', 'answered')
      .orderBy('started_time', 'desc')
      .executeTakeFirst();
    if (!row || row.org_id === null) return undefined;
    const call: StartedCall = {
      callId,
      orgId: row.org_id,
      direction: row.direction as CallDirection,
      phoneNumberId: row.phone_number_id,
      phoneNumber: row.phone_number,
      remoteParty: row.remote_party,
      agentId: row.agent_id,
    };
    return { call, startedTime: row.started_time, answeredTime: row.ended_time };
  }

  #add(type: 'call.started' | 'call.answered' | 'call.ended', call: StartedCall, details: Record<string, unknown>): void {
    if (this.#pending.length >= MAX_PENDING) {
      this.dropped++;
      return;
    }
    this.#pending.push({ type, orgId: call.orgId, resource: resourceOf.call(call.callId), data: { call: { ...call, ...details } } });
    this.#timer ??= setTimeout(() => {
      this.#timer = null;
      void this.flush();
    }, FLUSH_INTERVAL_MS);
  }
}
