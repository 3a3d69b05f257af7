import { PostgresAdapter, type Kysely } from 'kysely';

/**
 * Locks the rows a read inside a transaction returns until it ends, so that a read-then-write
 * (the link's "agent before") cannot interleave with another: `lock` adds FOR UPDATE on
 * PostgreSQL. SQLite needs nothing: its transaction already holds the whole database for writing.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function lockedOnPostgres<Q>(db: Kysely<any>, query: Q, lock: (query: Q) => Q): Q {
  return db.getExecutor().adapter instanceof PostgresAdapter ? lock(query) : query;
}
