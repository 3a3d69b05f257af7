import type { Kysely } from 'kysely';
import type { Dialect } from './db/connection.ts';
import type { Change, ChangeFeed } from './db/changes.ts';
import type { Database } from './db/schema.ts';
import type { SecretBox } from './credentials/secret-box.ts';

/**
 * The infrastructure the rules work with: the database, the change feed, the secret box. Views
 * of the running server (the number cache, the calls in progress) are given to the routes that
 * use them, not carried here.
 */
export interface Context {
  db: Kysely<Database>;
  dialect: Dialect;
  changes: ChangeFeed;
  secrets: SecretBox;
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
