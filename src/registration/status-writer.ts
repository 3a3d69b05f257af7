/**
 * Writes registration status into the numbers' reg_* columns, which the API reads: a number's
 * registrationStatus is what was last written here. Writes made in the same turn of the event
 * loop are coalesced (the latest per number wins) and grouped into `update ... where id in`
 * statements, so ten thousand registrations succeeding together cost a few statements, not ten
 * thousand. Each write only touches a number that still registers with the credentials the
 * status is about, so a late write never overwrites what an API call just set. A number whose
 * state (or reason) changes gets a registration.state_changed event in the same transaction.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { writeEvents, type EventSignal } from '../events/event-log.ts';
import { registrationEvent } from '../numbers/number-events.ts';
import { numberFromRow, selectNumbers } from '../numbers/numbers.ts';

export type RegistrationState = 'Registering' | 'Registered' | 'Failed';

export interface RegistrationStatus {
  state: RegistrationState;
  errorDescription: string | null;
  sipResponseMessage: string | null;
  expiresAt: string | null;
}

interface Pending {
  status: RegistrationStatus;
  credentialsId: string;
  time: string;
}

const CHUNK = 500;

export class StatusWriter {
  #pending = new Map<string, Pending>();
  #flushing: Promise<void> | null = null;
  #scheduled = false;
  #idle: (() => void)[] = [];

  readonly #db: Kysely<Database>;
  readonly #onError: (error: unknown) => void;
  /** Told which numbers were written, once they are (the API's number cache drops them). */
  readonly #onWritten: (numberIds: string[]) => void;

  readonly #events: EventSignal | undefined;

  constructor(db: Kysely<Database>, onError: (error: unknown) => void, onWritten: (numberIds: string[]) => void = () => {}, events?: EventSignal) {
    this.#db = db;
    this.#onError = onError;
    this.#onWritten = onWritten;
    this.#events = events;
  }

  /** Queues `status` for each (number id, its credentials id). */
  write(numbers: Iterable<readonly [numberId: string, credentialsId: string]>, status: RegistrationStatus): void {
    const time = new Date().toISOString();
    for (const [id, credentialsId] of numbers) this.#pending.set(id, { status, credentialsId, time });
    this.#schedule();
  }

  /** Resolves once everything written so far is in the database. */
  async flush(): Promise<void> {
    while (this.#pending.size > 0 || this.#flushing !== null || this.#scheduled) {
      await new Promise<void>((resolve) => this.#idle.push(resolve));
    }
  }

  #schedule(): void {
    if (this.#scheduled || this.#flushing !== null) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#flushing = this.#run().finally(() => {
        this.#flushing = null;
        if (this.#pending.size > 0) this.#schedule();
        else for (const resolve of this.#idle.splice(0)) resolve();
      });
    });
  }

  async #run(): Promise<void> {
    const batch = this.#pending;
    this.#pending = new Map();
    const groups = new Map<string, { pending: Pending; ids: string[] }>();
    for (const [id, pending] of batch) {
      const { status } = pending;
      const key = JSON.stringify([status.state, status.errorDescription, status.sipResponseMessage, status.expiresAt, pending.credentialsId]);
      const group = groups.get(key);
      if (group) group.ids.push(id);
      else groups.set(key, { pending, ids: [id] });
    }
    for (const { pending, ids } of groups.values()) {
      for (let i = 0; i < ids.length; i += CHUNK) {
        const chunk = ids.slice(i, i + CHUNK);
        try {
          const changed = await this.#db.transaction().execute(async (trx) => {
            const { status } = pending;
            const current = await selectNumbers(trx)
              .where('n.id', 'in', chunk)
              .where('n.registration', '=', 1)
              .where('n.credentials_id', '=', pending.credentialsId)
              .execute();
            const columns = {
              reg_state: status.state,
              reg_error_description: status.errorDescription,
              reg_sip_response_message: status.sipResponseMessage,
              reg_expires_at: status.expiresAt,
              reg_last_updated: pending.time,
            };
            await trx
              .updateTable('phone_numbers')
              .set(columns)
              .where('id', 'in', chunk)
              .where('registration', '=', 1)
              .where('credentials_id', '=', pending.credentialsId)
              .execute();
            const events = current
              .filter(
                (row) =>
                  row.reg_state !== status.state ||
                  row.reg_error_description !== status.errorDescription ||
                  row.reg_sip_response_message !== status.sipResponseMessage,
              )
              .map((row) => registrationEvent(numberFromRow({ ...row, ...columns }), row.reg_state));
            await writeEvents(trx, events);
            return events;
          });
          if (changed.length > 0) this.#events?.written(changed.map((event) => event.type));
        } catch (error) {
          this.#onError(error);
        } finally {
          this.#onWritten(chunk);
        }
      }
    }
  }
}
