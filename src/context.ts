import type { Kysely } from 'kysely';
import type { Dialect } from './db/connection.ts';
import type { Change, ChangeFeed } from './db/changes.ts';
import type { Database } from './db/schema.ts';
import type { SecretBox } from './credentials/secret-box.ts';
import type { NumberRowCache } from './numbers/number-cache.ts';

/** Live call counts, known once the SIP edge runs. */
export interface ActiveCalls {
  byCredentials(credentialsId: string): number;
}

/** What the rules need from the outside world: the database, the change feed, the secret box. */
export interface Context {
  db: Kysely<Database>;
  dialect: Dialect;
  changes: ChangeFeed;
  secrets: SecretBox;
  activeCalls?: ActiveCalls;
  /** Number rows that reads by id may be answered from; only where this process sees every write. */
  numberRows?: NumberRowCache;
}

/**
 * Runs `work` in one database transaction. Changes it publishes are held back and announced
 * only after the commit, so no listener ever sees a change that was rolled back.
 */
export async function withTransaction<T>(ctx: Context, work: (tx: Context) => Promise<T>): Promise<T> {
  const pending: Change[] = [];
  const held: ChangeFeed = {
    publish: async (change) => void pending.push(change),
    subscribe: (listener) => ctx.changes.subscribe(listener),
    close: async () => {},
  };
  const result = await ctx.db.transaction().execute((trx) => work({ ...ctx, db: trx, changes: held }));
  for (const change of pending) await ctx.changes.publish(change);
  return result;
}
