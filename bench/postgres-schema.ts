import crypto from 'node:crypto';
import pg from 'pg';

/** A fresh schema for one bench run and a URL whose connections use it; null (and a line on stderr) when PostgreSQL does not answer. */
export async function postgresSchema(adminUrl: string): Promise<{ url: string; drop: () => Promise<void> } | null> {
  const schema = `dp_bench_${crypto.randomBytes(4).toString('hex')}`;
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query(`create schema ${schema}`);
  } catch (error) {
    process.stderr.write(`PostgreSQL not reachable at ${adminUrl}: ${String(error)}; its rows are skipped\n`);
    return null;
  } finally {
    await client.end().catch(() => {});
  }
  const url = new URL(adminUrl);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return {
    url: url.toString(),
    async drop() {
      const admin = new pg.Client({ connectionString: adminUrl });
      await admin.connect();
      await admin.query(`drop schema ${schema} cascade`);
      await admin.end();
    },
  };
}
