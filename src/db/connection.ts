import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { Kysely, PostgresDialect, type PostgresPool, type PostgresPoolClient } from 'kysely';
import { ConfigError } from '../common/errors.ts';
import { preparedStatementName } from './prepared.ts';
import { SqliteGroupCommitDialect } from './sqlite-driver.ts';
import type { DatabaseConfig } from '../config.ts';
import type { Database } from './schema.ts';

export type Dialect = 'sqlite' | 'postgres';

export interface DatabaseHandle {
  db: Kysely<Database>;
  dialect: Dialect;
  config: DatabaseConfig;
  /** PostgreSQL: whether a server backend (by pid) is one of this process's pool connections. */
  isOwnBackend(pid: number): boolean;
  close(): Promise<void>;
}

export interface PoolOptions {
  /** Connections in the PostgreSQL pool. */
  max?: number;
  statementTimeoutMs?: number;
}

function reason(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? String(error);
}

/**
 * Makes sure the SQLite file can be created and written, or says why not, naming the path.
 * Folders are made one level at a time: `mkdirSync(…, { recursive: true })` spins forever on
 * some paths (under /proc). Owner-only: the file holds API key hashes and sealed SIP passwords;
 * SQLite gives the WAL and shared-memory files the database file's mode, so 0600 covers them.
 */
function prepareSqliteFile(file: string): void {
  const missing: string[] = [];
  for (let dir = path.dirname(file); !fs.existsSync(dir) && dir !== path.dirname(dir); dir = path.dirname(dir)) missing.unshift(dir);
  for (const dir of missing) {
    try {
      fs.mkdirSync(dir, { mode: 0o700 });
    } catch (error) {
      throw new ConfigError(`DIALPLANE_DB: cannot create the folder ${dir} (${reason(error)})`);
    }
  }
  const dir = path.dirname(file);
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    fs.closeSync(fs.openSync(file, 'a', 0o600));
  } catch (error) {
    throw new ConfigError(`DIALPLANE_DB: cannot write ${file} in ${dir} (${reason(error)}); the folder must be writable for SQLite's journal`);
  }
}

function openSqlite(config: Extract<DatabaseConfig, { kind: 'sqlite' }>): DatabaseHandle {
  prepareSqliteFile(config.file);
  const sqlite = new SQLite(config.file);
  // WAL keeps readers and the writer apart; NORMAL sync is durable across a killed process
  // (only an OS crash can lose the last commits), which is the failure this file must survive.
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  // The CLI may write while a server runs against the same file.
  sqlite.pragma('busy_timeout = 5000');
  const db = new Kysely<Database>({ dialect: new SqliteGroupCommitDialect(sqlite) });
  return { db, dialect: 'sqlite', config, isOwnBackend: () => false, close: () => db.destroy() };
}

/**
 * The pool as Kysely sees it: the SQL of a prepared query (prepared.ts) goes out as a named
 * statement, which PostgreSQL parses and plans once per connection instead of on every run.
 */
function namingPreparedStatements(pool: pg.Pool): PostgresPool {
  const clients = new WeakMap<pg.PoolClient, PostgresPoolClient>();
  const wrap = (client: pg.PoolClient): PostgresPoolClient => ({
    // Kysely's other form, query(cursor), is for streaming, which no query here uses.
    query: ((sql: string, parameters: readonly unknown[]) => {
      const name = preparedStatementName(sql);
      return client.query(name === undefined ? sql : { name, text: sql }, parameters as unknown[]);
    }) as unknown as PostgresPoolClient['query'],
    release: (destroy?: boolean) => client.release(destroy),
  });
  return {
    async connect() {
      const client = await pool.connect();
      let wrapped = clients.get(client);
      if (!wrapped) {
        wrapped = wrap(client);
        clients.set(client, wrapped);
      }
      return wrapped;
    },
    end: () => pool.end(),
  };
}

function openPostgres(config: Extract<DatabaseConfig, { kind: 'postgres' }>, options: PoolOptions): DatabaseHandle {
  const pool = new pg.Pool({
    connectionString: config.url,
    max: options.max ?? 10,
    statement_timeout: options.statementTimeoutMs ?? 5000,
    connectionTimeoutMillis: 5000,
  });
  // A dropped idle connection must not take the process down; the pool replaces it.
  pool.on('error', () => {});
  // The backends behind our own connections: a change notification from one of them is an
  // echo of a change this process has already announced to itself.
  const backends = new Set<number>();
  const pidOf = (client: pg.PoolClient) => (client as unknown as { processID: number | null }).processID;
  pool.on('connect', (client) => void backends.add(pidOf(client) ?? -1));
  pool.on('remove', (client) => void backends.delete(pidOf(client) ?? -1));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: namingPreparedStatements(pool) }) });
  return { db, dialect: 'postgres', config, isOwnBackend: (pid) => backends.has(pid), close: () => db.destroy() };
}

export function openDatabase(config: DatabaseConfig, options: PoolOptions = {}): DatabaseHandle {
  return config.kind === 'sqlite' ? openSqlite(config) : openPostgres(config, options);
}
