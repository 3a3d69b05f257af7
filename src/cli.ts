import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { DomainError, OperatorError } from './common/errors.ts';
import { loadConfig, type Config } from './config.ts';
import { openDatabase, type DatabaseHandle } from './db/connection.ts';
import { migrateToLatest } from './db/migrations.ts';
import { createApiKey, createOrg, listOrgs, revokeApiKey } from './orgs/orgs.ts';

/** Exit codes, as the README documents them. */
export const EXIT = { ok: 0, runtime: 1, usage: 2, notFound: 3 } as const;

class UsageError extends Error {}

const VERSION = (JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const USAGE = `dialplane — SIP phone-number control plane and SIP edge for voice AI agents

Usage:
  dialplane serve                       run the HTTP API and the SIP edge (what npm start runs)
  dialplane migrate                     apply database migrations and exit
  dialplane org create NAME             create an organization and its first API key
  dialplane org list                    list the organizations
  dialplane key create ORG              create another API key for an organization (its id or name)
  dialplane key revoke KEY_PREFIX_OR_ID revoke an API key (its id, the whole key, or its first 12 characters)

Options: --help (-h) on any command, --version (-v).
Every command uses the database named by DIALPLANE_DB (default ./data/dialplane.db).
Exit codes: 0 done, 1 runtime error, 2 usage or configuration error, 3 not found.`;

const HELP: Record<string, string> = {
  serve: `dialplane serve

Runs the HTTP API (DIALPLANE_HTTP_HOST:DIALPLANE_HTTP_PORT, default 127.0.0.1:8080) and the SIP edge
(DIALPLANE_SIP_HOST:DIALPLANE_SIP_PORT, default 0.0.0.0:5060) against DIALPLANE_DB, migrating it first.
On the first start against an empty database, once it is serving, it creates the organization
"default" and prints its API key once. SIGTERM or SIGINT stops it gracefully; SIGHUP rereads the
TLS certificate, key and CA files (DIALPLANE_SIP_TLS_*). One server per SQLite file: a second one
exits at once.`,
  migrate: 'dialplane migrate\n\nApplies pending migrations to DIALPLANE_DB and exits; prints {"migrated":true,"applied":[…]}.',
  org: `dialplane org create NAME
  creates an organization and its first API key; prints {"orgId","name","apiKey"}. The key is shown only here.
dialplane org list
  prints the organizations as a JSON array of {"id","name","createdTime","activeKeys"}.`,
  key: `dialplane key create ORG
  creates another API key for the organization ORG (its id or its name); prints {"orgId","apiKey"}.
  The key is shown only here.
dialplane key revoke KEY_PREFIX_OR_ID
  revokes the key (its id, the whole key, or its first 12 characters); prints {"revoked","orgId","prefix"}.`,
};

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

async function withDatabase<T>(config: Config, work: (handle: DatabaseHandle) => Promise<T>): Promise<T> {
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
      `\nCreated organization "default" (${server.defaultOrg.orgId}).\n` + `Its API key, shown only this once:\n\n  ${server.defaultOrg.apiKey}\n\n`,
    );
  }
  const stop = (signal: string) => {
    server.log.info({ signal }, 'shutting down');
    server.close().then(
      () => process.exit(EXIT.ok),
      (error: unknown) => {
        server.log.error({ err: error }, 'shutdown failed');
        server.log.flush(() => process.exit(EXIT.runtime));
      },
    );
  };
  // Before the ready line: the log is written off the main thread, so whoever waits for that
  // line may signal at once, and a signal without a handler would kill the process.
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  // Certificate renewals: new TLS connections get the new files, open ones and calls go on.
  process.on('SIGHUP', () => server.reloadTls());
  // One line that says everything is up (scripts wait for it; the key above is printed first).
  server.log.info(
    {
      http: `http://${config.http.host}:${server.httpPort}`,
      sip: `${config.sip.host}:${server.sipPort}`,
      sipTls: server.sipTlsPort === null ? null : `${config.sip.host}:${server.sipTlsPort}`,
    },
    'dialplane ready',
  );
  server.log.flush();
}

/** A name given on the command line: not empty, not only spaces. */
function name(value: string | undefined, what: string): string {
  if (value === undefined) throw new UsageError(`${what} is missing`);
  if (value.trim() === '') throw new UsageError(`${what} must not be empty`);
  return value.trim();
}

function exactly(args: string[], count: number, usage: string): void {
  if (args.length > count) throw new UsageError(`unexpected argument "${args[count]}" (usage: ${usage})`);
}

/** Runs one command; resolves with its exit code, or null for `serve`, which keeps running. */
export async function main(argv: string[]): Promise<number | null> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'v' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    // "Unknown option '--port'. To specify a positional argument …": the first sentence says it.
    const first = (error as Error).message.split('. ')[0];
    throw new UsageError(first.charAt(0).toLowerCase() + first.slice(1));
  }
  const { values, positionals } = parsed;
  const [command, sub, ...rest] = positionals;
  if (values.version) {
    process.stdout.write(`${VERSION}\n`);
    return EXIT.ok;
  }
  if (values.help || command === 'help') {
    process.stdout.write(`${(command !== undefined && HELP[command]) || USAGE}\n`);
    return EXIT.ok;
  }
  if (command === undefined) throw new UsageError('a command is missing');
  switch (command) {
    case 'serve': {
      exactly(positionals, 1, 'dialplane serve');
      await serve(loadConfig());
      return null;
    }
    case 'migrate': {
      exactly(positionals, 1, 'dialplane migrate');
      const handle = openDatabase(loadConfig().database, { max: 2 });
      try {
        print({ migrated: true, applied: await migrateToLatest(handle) });
      } finally {
        await handle.close();
      }
      return EXIT.ok;
    }
    case 'org':
      if (sub === 'create') {
        exactly(rest, 1, 'dialplane org create NAME');
        const orgName = name(rest[0], 'NAME');
        print(await withDatabase(loadConfig(), (h) => createOrg(h.db, orgName)));
        return EXIT.ok;
      }
      if (sub === 'list') {
        exactly(rest, 0, 'dialplane org list');
        print(await withDatabase(loadConfig(), (h) => listOrgs(h.db)));
        return EXIT.ok;
      }
      throw new UsageError(sub === undefined ? 'org needs create or list' : `unknown org command "${sub}"`);
    case 'key':
      if (sub === 'create') {
        exactly(rest, 1, 'dialplane key create ORG');
        const org = name(rest[0], 'ORG');
        print(await withDatabase(loadConfig(), (h) => createApiKey(h.db, org)));
        return EXIT.ok;
      }
      if (sub === 'revoke') {
        exactly(rest, 1, 'dialplane key revoke KEY_PREFIX_OR_ID');
        const key = name(rest[0], 'KEY_PREFIX_OR_ID');
        const revoked = await withDatabase(loadConfig(), (h) => revokeApiKey(h.db, key));
        print({ revoked: revoked.id, orgId: revoked.orgId, prefix: revoked.prefix });
        return EXIT.ok;
      }
      throw new UsageError(sub === undefined ? 'key needs create or revoke' : `unknown key command "${sub}"`);
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

/** What an operator can act on is one line and an exit code; anything else is a bug and keeps its stack. */
export async function run(argv: string[]): Promise<void> {
  try {
    const code = await main(argv);
    if (code !== null) process.exitCode = code;
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`dialplane: ${error.message} (dialplane --help shows the usage)\n`);
      process.exitCode = EXIT.usage;
    } else if (error instanceof OperatorError) {
      process.stderr.write(`dialplane: ${error.message}\n`);
      process.exitCode = error.exitCode;
    } else if (error instanceof DomainError) {
      process.stderr.write(`dialplane: ${error.message}\n`);
      process.exitCode = error.status === 404 ? EXIT.notFound : error.status === 400 ? EXIT.usage : EXIT.runtime;
    } else if (error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string') {
      // A system error (a database unreachable): the operator's to fix, said in one line.
      process.stderr.write(`dialplane: ${error.message}\n`);
      process.exitCode = EXIT.runtime;
    } else {
      throw error;
    }
  }
}
