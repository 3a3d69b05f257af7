import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import SQLite from 'better-sqlite3';
import { request, startTestServer } from './support/server.ts';
import { UUID, eventually } from './support/api.ts';

/** README, The CLI: the `dialplane` command, run as a user runs it, against a SQLite file. */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'dialplane.js');

/** The caller's environment without any DIALPLANE_ setting, so that only the test's apply. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('DIALPLANE_')) env[k] = v;
  return { ...env, ...extra };
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function start(args: string[], env: Record<string, string>): { child: ChildProcess; done: Promise<Run>; stdout: () => string } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const done = new Promise<Run>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done, stdout: () => stdout };
}

const run = (args: string[], env: Record<string, string>) => start(args, env).done;

/** Waits until the process's output matches, failing if it exits first or takes too long. */
async function waitFor(proc: ReturnType<typeof start>, pattern: RegExp, timeoutMs = 30000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  let exited: Run | null = null;
  void proc.done.then((r) => (exited = r));
  for (;;) {
    const match = pattern.exec(proc.stdout());
    if (match) return match;
    if (exited) assert.fail(`exited before printing ${pattern}: ${JSON.stringify(exited)}`);
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${pattern}; output so far: ${proc.stdout()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The one JSON object a command printed, alone on its line. */
function printed(result: Run): any {
  assert.equal(result.code, 0, `exit 0; stderr: ${result.stderr}`);
  const lines = result.stdout.split('\n').filter((l) => l.trim() !== '');
  assert.equal(lines.length, 1, `one line of output: ${result.stdout}`);
  const value = JSON.parse(lines[0]);
  assert.equal(typeof value, 'object');
  assert.ok(value !== null && !Array.isArray(value));
  return value;
}

// Each command is a new node process loading the sources through tsx: the tests run side by side.
describe('dialplane CLI', { concurrency: true }, () => {
  let dir: string;
  let env: Record<string, string>;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dialplane-cli-'));
    env = { DIALPLANE_DB: path.join(dir, 'dialplane.db'), DIALPLANE_LOG_LEVEL: 'warn' };
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('--help on every command exits 0 and touches no database', async () => {
    const noDb = { DIALPLANE_DB: path.join(dir, 'never', 'created.db') };
    const variants = [['--help'], ['serve', '--help'], ['migrate', '--help'], ['org', 'create', '--help'], ['key', 'revoke', '--help']];
    const results = await Promise.all(variants.map((args) => run(args, noDb)));
    results.forEach((r, i) => {
      assert.equal(r.code, 0, `${variants[i].join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, /dialplane/, variants[i].join(' '));
    });
    assert.match(results[3].stdout, /org create NAME/);
    assert.match(results[4].stdout, /key create ORG/);
    assert.match(results[4].stdout, /key revoke/);
    assert.equal(fs.existsSync(path.join(dir, 'never')), false);
  });

  test('a wrong command line exits 2 with one line saying what is wrong', async () => {
    const variants: Array<[string[], RegExp]> = [
      [[], /a command is missing/],
      [['bogus'], /unknown command "bogus"/],
      [['key', 'create'], /ORG is missing/],
      [['serve', '--port', '8081'], /unknown option '--port'/],
      [['org', 'create', '   '], /NAME must not be empty/],
      [['org', 'create', 'a', 'b'], /unexpected argument "b"/],
    ];
    const results = await Promise.all(variants.map(([args]) => run(args, env)));
    results.forEach((r, i) => {
      const [args, message] = variants[i];
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, message, args.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      assert.equal(r.stdout, '', 'nothing on stdout that a script could take for a result');
    });
  });

  test('--version prints the package version', async () => {
    const result = await run(['--version'], env);
    assert.equal(result.code, 0);
    assert.equal(result.stdout.trim(), JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
  });

  test('org list, and key create by organization name (a lost first key is recovered this way)', async () => {
    const listEnv = { DIALPLANE_DB: path.join(dir, 'list', 'dialplane.db') };
    const made = printed(await run(['org', 'create', 'listed'], listEnv));
    const byName = printed(await run(['key', 'create', 'listed'], listEnv));
    assert.equal(byName.orgId, made.orgId);
    const list = JSON.parse((await run(['org', 'list'], listEnv)).stdout);
    assert.deepEqual(
      list.map((o: any) => ({ id: o.id, name: o.name, activeKeys: o.activeKeys })),
      [{ id: made.orgId, name: 'listed', activeKeys: 2 }],
    );
    assert.match(list[0].createdTime, /Z$/);
    const unknown = await run(['key', 'create', 'nobody'], listEnv);
    assert.equal(unknown.code, 3, 'not found');
    assert.match(unknown.stderr, /no organization has the id or name "nobody"/);
  });

  test('migrate exits 0 and leaves a migrated file', async () => {
    const fresh = { DIALPLANE_DB: path.join(dir, 'migrate', 'fresh.db') };
    const result = await run(['migrate'], fresh);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(fs.existsSync(fresh.DIALPLANE_DB));
    const db = new SQLite(fresh.DIALPLANE_DB, { readonly: true });
    try {
      const tables = db
        .prepare("select name from sqlite_master where type = 'table'")
        .all()
        .map((r: any) => r.name);
      for (const t of ['orgs', 'api_keys', 'sip_credentials', 'agents', 'phone_numbers']) assert.ok(tables.includes(t), t);
      assert.equal((db.prepare('select count(*) as n from orgs').get() as any).n, 0, 'migrate creates no organization');
    } finally {
      db.close();
    }
  });

  test('org create, key create and key revoke work against the server’s database', async () => {
    const org = printed(await run(['org', 'create', 'acme'], env));
    assert.deepEqual(Object.keys(org).sort(), ['apiKey', 'name', 'orgId']);
    assert.match(org.orgId, UUID);
    assert.equal(org.name, 'acme');
    assert.equal(typeof org.apiKey, 'string');
    assert.ok(org.apiKey.length >= 32);

    const duplicate = await run(['org', 'create', 'acme'], env);
    assert.notEqual(duplicate.code, 0);
    assert.match(duplicate.stderr, /already exists/);
    assert.equal(duplicate.stdout, '');

    const key = printed(await run(['key', 'create', org.orgId], env));
    assert.deepEqual(Object.keys(key).sort(), ['apiKey', 'orgId']);
    assert.equal(key.orgId, org.orgId);
    assert.notEqual(key.apiKey, org.apiKey);

    // A server on the same file, running while the CLI revokes.
    const server = await startTestServer('sqlite', { database: { backend: 'sqlite', env, drop: async () => {} } });
    try {
      const get = (apiKey: string) => request(server.url, 'GET', '/api/v1/agents', { key: apiKey });
      const created = await request(server.url, 'POST', '/api/v1/agents', { key: org.apiKey, body: { name: 'acme agent' } });
      assert.equal(created.status, 201);
      assert.equal(created.body.orgId, org.orgId);
      const seen = await get(key.apiKey);
      assert.equal(seen.status, 200);
      assert.deepEqual(
        seen.body.map((a: any) => a.agentId),
        [created.body.agentId],
        'both keys belong to the organization',
      );

      const prefix = org.apiKey.slice(0, 12);
      const revoked = printed(await run(['key', 'revoke', prefix], env));
      assert.equal(revoked.orgId, org.orgId);
      // The server may honour a key it has just seen for up to a second after revocation.
      await eventually('the revoked key is refused', async () => (await get(org.apiKey)).status === 401);
      assert.equal((await get(key.apiKey)).status, 200, 'the other key still works');

      printed(await run(['key', 'revoke', key.apiKey], env));
      await eventually('the whole-key revocation is honoured', async () => (await get(key.apiKey)).status === 401);
    } finally {
      await server.close();
    }
  });

  test('serve prints the default organization’s key once, on the first start only, and stops gracefully', async () => {
    const data = path.join(dir, 'serve');
    const serveEnv = {
      DIALPLANE_DB: path.join(data, 'dialplane.db'),
      DIALPLANE_HTTP_HOST: '127.0.0.1',
      DIALPLANE_HTTP_PORT: '0',
      DIALPLANE_SIP_HOST: '127.0.0.1',
      DIALPLANE_SIP_PORT: '0',
      DIALPLANE_LOG_LEVEL: 'info',
    };
    const listening = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/;

    const first = start(['serve'], serveEnv);
    try {
      const [, url] = await waitFor(first, listening);
      const [, apiKey] = await waitFor(first, /^\s+(dpk_\S+)\s*$/m);
      const res = await request(url, 'GET', '/api/v1/agents', { key: apiKey });
      assert.equal(res.status, 200, 'the printed key works');
      assert.equal((await request(url, 'GET', '/healthz')).status, 200);
      first.child.kill('SIGTERM');
      const exit = await first.done;
      assert.equal(exit.signal, null, 'it exits by itself on SIGTERM');
      assert.equal(exit.code, 0, `graceful shutdown: ${exit.stderr}`);
      assert.equal(exit.stdout.split(apiKey).length - 1, 1, 'the key is printed exactly once');

      const second = start(['serve'], serveEnv);
      try {
        const [, url2] = await waitFor(second, listening);
        assert.equal((await request(url2, 'GET', '/api/v1/agents', { key: apiKey })).status, 200, 'the first key still works');
        assert.equal((await request(url2, 'GET', '/readyz')).status, 200);
        // Startup has finished (the signal handlers are in place) well before this.
        await new Promise((r) => setTimeout(r, 300));
        second.child.kill('SIGTERM');
        const exit2 = await second.done;
        assert.equal(exit2.code, 0, `graceful shutdown: ${exit2.stderr}`);
        assert.doesNotMatch(exit2.stdout, /dpk_/, 'no key printed on the second start');
        assert.doesNotMatch(exit2.stdout, /Created organization/);
      } finally {
        second.child.kill('SIGKILL');
      }
    } finally {
      first.child.kill('SIGKILL');
    }

    const db = new SQLite(serveEnv.DIALPLANE_DB, { readonly: true });
    try {
      const orgs = db.prepare('select name from orgs').all() as { name: string }[];
      assert.deepEqual(orgs, [{ name: 'default' }], 'one organization, created once');
      assert.equal((db.prepare('select count(*) as n from api_keys').get() as any).n, 1);
    } finally {
      db.close();
    }
  });
});
