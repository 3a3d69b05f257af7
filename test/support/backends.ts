import crypto from 'node:crypto';
import pg from 'pg';

/**
 * The database backends the suites run against. SQLite always; PostgreSQL when it answers at
 * DIALPLANE_TEST_PG_URL (default the local `test` database). Under CI a missing PostgreSQL is a
 * failure, elsewhere the PostgreSQL suites are skipped with a message saying so.
 */
export type Backend = 'sqlite' | 'postgres';

export const PG_ADMIN_URL = process.env.DIALPLANE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

let postgresAvailable: Promise<boolean> | null = null;

async function probePostgres(): Promise<boolean> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch (error) {
    if (process.env.CI) {
      throw new Error(`PostgreSQL is required in CI but did not answer at ${PG_ADMIN_URL}: ${String(error)}`);
    }
    process.stderr.write(
      `\n# SKIPPED: PostgreSQL suites — no PostgreSQL at ${PG_ADMIN_URL} (${String(error)}). Set DIALPLANE_TEST_PG_URL or start it.\n`,
    );
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

export async function testBackends(): Promise<Backend[]> {
  postgresAvailable ??= probePostgres();
  return (await postgresAvailable) ? ['sqlite', 'postgres'] : ['sqlite'];
}

/** A fresh, empty PostgreSQL schema and a URL whose connections use it; `drop` removes it. */
export async function freshPostgresSchema(): Promise<{ url: string; schema: string; drop: () => Promise<void> }> {
  const schema = `dp_test_${crypto.randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`create schema ${schema}`);
  } finally {
    await admin.end();
  }
  const url = new URL(PG_ADMIN_URL);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return {
    url: url.toString(),
    schema,
    drop: async () => {
      const client = new pg.Client({ connectionString: PG_ADMIN_URL });
      await client.connect();
      try {
        await client.query(`drop schema if exists ${schema} cascade`);
      } finally {
        await client.end();
      }
    },
  };
}
