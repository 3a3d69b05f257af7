import { ConfigError, loadConfig, type Config } from './config.ts';
import { DomainError } from './common/errors.ts';
import { openDatabase } from './db/connection.ts';
import { migrateToLatest } from './db/migrations.ts';
import { createApiKey, createOrg, revokeApiKey } from './orgs/orgs.ts';

const USAGE = `dialplane — SIP phone-number control plane and SIP edge for voice AI agents

Usage:
  dialplane serve                       run the HTTP API and the SIP edge (what npm start runs)
  dialplane migrate                     apply database migrations and exit
  dialplane org create NAME             create an organization and its first API key
  dialplane key create ORG_ID           create another API key for an organization
  dialplane key revoke KEY_PREFIX_OR_ID revoke an API key (its id, the whole key, or its first 12 characters)

Every command uses the database named by DIALPLANE_DB (default ./data/dialplane.db).
Add --help to any command for its own help.`;

const HELP: Record<string, string> = {
  serve: `dialplane serve\n\nRuns the HTTP API (DIALPLANE_HTTP_HOST:DIALPLANE_HTTP_PORT, default 127.0.0.1:8080) against DIALPLANE_DB,\nmigrating it first. On the first start against an empty database it creates the organization\n"default" and prints its API key once. SIGTERM or SIGINT stops it gracefully.`,
  migrate: 'dialplane migrate\n\nApplies pending migrations to DIALPLANE_DB and exits.',
  org: 'dialplane org create NAME\n\nCreates an organization and its first API key; prints {"orgId","name","apiKey"}. The key is shown only here.',
  key: 'dialplane key create ORG_ID\n  prints {"orgId","apiKey"}; the key is shown only here.\ndialplane key revoke KEY_PREFIX_OR_ID\n  revokes the key; prints {"revoked","orgId","prefix"}.',
};

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

async function withDatabase<T>(config: Config, work: (db: ReturnType<typeof openDatabase>) => Promise<T>): Promise<T> {
  const handle = openDatabase(config.database, { max: 2 });
  try {
    await migrateToLatest(handle);
    return await work(handle);
  } finally {
    await handle.close();
  }
}

async function serve(config: Config): Promise<void> {
  // Loaded only here: the other commands need no HTTP or SIP code and start faster without it.
  const { startServer } = await import('./server.ts');
  const server = await startServer(config);
  if (server.defaultOrg) {
    process.stdout.write(
      `\nCreated organization "default" (${server.defaultOrg.orgId}).\n` +
        `Its API key, shown only this once:\n\n  ${server.defaultOrg.apiKey}\n\n`,
    );
  }
  // One line that says everything is up (scripts wait for it; the key above is printed first).
  server.app.log.info(
    { http: `http://${config.http.host}:${server.httpPort}`, sip: `${config.sip.host}:${server.sipPort}` },
    'dialplane ready',
  );
  const stop = (signal: string) => {
    server.app.log.info({ signal }, 'shutting down');
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        server.app.log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

export async function main(argv: string[]): Promise<number> {
  const [command, sub, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined ? 1 : 0;
  }
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${HELP[command] ?? USAGE}\n`);
    return HELP[command] ? 0 : 1;
  }
  const config = loadConfig();
  switch (command) {
    case 'serve':
      await serve(config);
      return -1;
    case 'migrate': {
      const handle = openDatabase(config.database, { max: 2 });
      try {
        print({ migrated: true, applied: await migrateToLatest(handle) });
      } finally {
        await handle.close();
      }
      return 0;
    }
    case 'org':
      if (sub === 'create' && rest.length === 1) {
        print(await withDatabase(config, (h) => createOrg(h.db, rest[0]!)));
        return 0;
      }
      break;
    case 'key':
      if (sub === 'create' && rest.length === 1) {
        print(await withDatabase(config, (h) => createApiKey(h.db, rest[0]!)));
        return 0;
      }
      if (sub === 'revoke' && rest.length === 1) {
        const revoked = await withDatabase(config, (h) => revokeApiKey(h.db, rest[0]!));
        print({ revoked: revoked.id, orgId: revoked.orgId, prefix: revoked.prefix });
        return 0;
      }
      break;
  }
  process.stderr.write(`${USAGE}\n`);
  return 1;
}

export async function run(argv: string[]): Promise<void> {
  try {
    const code = await main(argv);
    if (code >= 0) process.exitCode = code;
  } catch (error) {
    if (error instanceof ConfigError || error instanceof DomainError) {
      process.stderr.write(`dialplane: ${error.message}\n`);
      process.exitCode = error instanceof DomainError && error.status === 404 ? 3 : 2;
      return;
    }
    // A system error (port in use, database unreachable) is the operator's to fix: say what it is.
    if (error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string') {
      process.stderr.write(`dialplane: ${error.message}\n`);
      process.exitCode = 1;
      return;
    }
    throw error;
  }
}
