import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import type { Config } from './config.ts';
import type { Context } from './context.ts';
import { LocalChangeFeed, type ChangeFeed } from './db/changes.ts';
import { PostgresChangeFeed } from './db/postgres-changes.ts';
import { openDatabase, type DatabaseHandle } from './db/connection.ts';
import { migrateToLatest } from './db/migrations.ts';
import { SecretBox, resolveSecretKey } from './credentials/secret-box.ts';
import { buildApp } from './http/app.ts';
import { Metrics } from './http/metrics.ts';
import { ensureDefaultOrg, type NewOrg } from './orgs/orgs.ts';

export interface RunningServer {
  app: FastifyInstance;
  ctx: Context;
  database: DatabaseHandle;
  /** Set when this start created the `default` organization. */
  defaultOrg: NewOrg | null;
  httpPort: number;
  /** Graceful: stop accepting, let in-flight requests finish, then close the database. */
  close(): Promise<void>;
}

export interface StartOptions {
  /** Logger settings for Fastify/pino; false silences it (tests). */
  logger?: boolean | { level: string };
}

async function openChangeFeed(config: Config): Promise<ChangeFeed> {
  if (config.database.kind === 'sqlite') return new LocalChangeFeed();
  const feed = new PostgresChangeFeed(config.database.url);
  await feed.start();
  return feed;
}

export async function startServer(config: Config, options: StartOptions = {}): Promise<RunningServer> {
  const database = openDatabase(config.database);
  let changes: ChangeFeed | null = null;
  try {
    await migrateToLatest(database);
    const defaultOrg = await ensureDefaultOrg(database.db);
    changes = await openChangeFeed(config);
    const ctx: Context = {
      db: database.db,
      dialect: database.dialect,
      changes,
      secrets: new SecretBox(resolveSecretKey(config)),
    };
    const app = await buildApp({
      ctx,
      metrics: new Metrics(),
      bodyLimitBytes: config.http.bodyLimitBytes,
      logger: options.logger ?? { level: config.logLevel },
      isReady: async () => {
        await sql`select 1`.execute(database.db);
        return true;
      },
    });
    await app.listen({ host: config.http.host, port: config.http.port });
    const address = app.server.address();
    const httpPort = typeof address === 'object' && address ? address.port : config.http.port;
    let closing: Promise<void> | null = null;
    return {
      app,
      ctx,
      database,
      defaultOrg,
      httpPort,
      close: () =>
        (closing ??= (async () => {
          await app.close();
          await ctx.changes.close();
          await database.close();
        })()),
    };
  } catch (error) {
    await changes?.close();
    await database.close();
    throw error;
  }
}
