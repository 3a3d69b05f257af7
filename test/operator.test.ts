import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type SpawnOptions } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CLI, REPO_ROOT, spawnServer, type ServerProcess } from './support/process.ts';
import { request } from './support/server.ts';
import { inviteText, newCall, response, UdpPeer } from './support/sip-peers.ts';

/**
 * The first hour of running dialplane, through the real CLI and real server processes: what a
 * start refuses and how it says so, one server per SQLite file, the first key, the logs.
 */

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string>, options: SpawnOptions = {}): Promise<Run> {
  const clean: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('DIALPLANE_')) clean[k] = v;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: REPO_ROOT,
      env: { ...clean, DIALPLANE_HTTP_HOST: '127.0.0.1', DIALPLANE_HTTP_PORT: '0', DIALPLANE_SIP_HOST: '127.0.0.1', DIALPLANE_SIP_PORT: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...options,
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    // A refusal must come at once: a start that hangs fails the test instead.
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** One line on stderr naming what to fix, the exit code, no stack trace, nothing on stdout. */
function assertRefused(run: Run, code: number, message: RegExp): void {
  assert.equal(run.code, code, `exit ${code}: ${run.stderr}`);
  assert.match(run.stderr, message);
  assert.equal(run.stderr.trim().split('\n').length, 1, `one line: ${run.stderr}`);
  assert.doesNotMatch(run.stderr, /\n\s+at /);
}

describe('operator: start-up', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dialplane-operator-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('settings that cannot work are refused at once, naming the variable, with exit code 2', async () => {
    const db = { DIALPLANE_DB: path.join(dir, 'refusals', 'dialplane.db') };
    assertRefused(await cli(['serve'], { ...db, DIALPLANE_LOG_LEVEL: 'verbose' }), 2, /DIALPLANE_LOG_LEVEL must be one of/);
    assertRefused(await cli(['serve', '--port', '8081'], db), 2, /unknown option '--port'/);
    assertRefused(
      await cli(['serve'], { DIALPLANE_DB: '/proc/dialplane/dialplane.db' }),
      2,
      /DIALPLANE_DB: cannot create the folder \/proc\/dialplane/,
    );
    assertRefused(await cli(['serve'], { ...db, DIALPLANE_SIP_T1_MS: 'fast' }), 2, /DIALPLANE_SIP_T1_MS must be a positive integer/);
  });

  test('a read-only database folder is refused, naming the path', async () => {
    const readOnly = path.join(dir, 'read-only');
    fs.mkdirSync(readOnly, { mode: 0o555 });
    fs.chmodSync(dir, 0o755);
    // root may write anywhere: the server runs as nobody then.
    const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    assertRefused(
      await cli(['serve'], { DIALPLANE_DB: path.join(readOnly, 'dialplane.db') }, asNobody),
      2,
      new RegExp(`DIALPLANE_DB: cannot write .*${readOnly}`),
    );
  });

  test('a secret key that does not open the stored SIP passwords is refused', async () => {
    const database = path.join(dir, 'key', 'dialplane.db');
    const server = await spawnServer({ DIALPLANE_DB: database });
    const key = /^\s+(dpk_\S+)\s*$/m.exec(server.output())![1];
    const created = await request(server.url, 'POST', '/api/v1/sip-credentials', {
      key,
      body: { server: 'sip.example.com', authPassword: 'hunter2' },
    });
    assert.equal(created.status, 201);
    server.child.kill('SIGTERM');
    await server.exited;
    const wrong = crypto.randomBytes(32).toString('hex');
    assertRefused(
      await cli(['serve'], { DIALPLANE_DB: database, DIALPLANE_SECRET_KEY: wrong }),
      2,
      /DIALPLANE_SECRET_KEY is not the key this database's SIP passwords were sealed with/,
    );
    // The generated key file is named when it is the one that does not fit.
    fs.writeFileSync(path.join(dir, 'key', 'secret.key'), `${wrong}\n`);
    assertRefused(await cli(['serve'], { DIALPLANE_DB: database }), 2, /the key file .*secret\.key .* is not the key/);
  });

  test('a first start that fails leaves no organization behind; the next one prints the key', async () => {
    const database = path.join(dir, 'first', 'dialplane.db');
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      assertRefused(
        await cli(['serve'], { DIALPLANE_DB: database, DIALPLANE_HTTP_PORT: String(port) }),
        1,
        new RegExp(`DIALPLANE_HTTP_PORT: 127\\.0\\.0\\.1:${port} is in use`),
      );
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
    assert.deepEqual(JSON.parse((await cli(['org', 'list'], { DIALPLANE_DB: database })).stdout), [], 'no organization, so no key lost');
    const server = await spawnServer({ DIALPLANE_DB: database });
    try {
      const key = /^\s+(dpk_\S+)\s*$/m.exec(server.output())![1];
      assert.equal((await request(server.url, 'GET', '/api/v1/agents', { key })).status, 200);
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });

  test('one server per SQLite file: a second exits at once; the CLI keeps working beside the first', async () => {
    const database = path.join(dir, 'lock', 'dialplane.db');
    const first = await spawnServer({ DIALPLANE_DB: database });
    try {
      const started = Date.now();
      assertRefused(await cli(['serve'], { DIALPLANE_DB: database }), 1, /another dialplane server is running on .*dialplane\.db/);
      assert.ok(Date.now() - started < 15_000, 'at once');
      const org = await cli(['org', 'create', 'beside'], { DIALPLANE_DB: database });
      assert.equal(org.code, 0, org.stderr);
      const { apiKey } = JSON.parse(org.stdout);
      assert.equal((await request(first.url, 'GET', '/api/v1/agents', { key: apiKey })).status, 200, 'the server sees the new key');
    } finally {
      first.child.kill('SIGTERM');
      assert.equal(await first.exited, 0);
    }
    // Once the first has stopped, the file is free again.
    const again = await spawnServer({ DIALPLANE_DB: database });
    again.child.kill('SIGTERM');
    assert.equal(await again.exited, 0);
  });
});

describe('operator: logs', () => {
  let dir: string;
  let server: ServerProcess;
  const lines = () =>
    server
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dialplane-logs-'));
    server = await spawnServer({ DIALPLANE_DB: path.join(dir, 'dialplane.db'), DIALPLANE_SIP_T1_MS: '100' });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('one line per HTTP request and per call attempt, ISO timestamps, a last line at shutdown, and never a secret', async () => {
    const key = /^\s+(dpk_\S+)\s*$/m.exec(server.output())![1];
    const password = `pw-${crypto.randomUUID()}`;
    const edge = { host: '127.0.0.1', port: Number(/"sip":"127\.0\.0\.1:(\d+)"/.exec(server.output())![1]) };
    const carrier = await UdpPeer.start('127.0.0.2', edge);
    try {
      const creds = await request(server.url, 'POST', '/api/v1/sip-credentials', {
        key,
        body: { server: '127.0.0.2', authUser: 'trunk', authPassword: password, allowedAddresses: ['127.0.0.2'] },
      });
      assert.equal(creds.status, 201);
      await request(server.url, 'POST', '/api/v1/sip-phone-numbers', { key, body: { phoneNumber: '+15550170000', credentialsId: creds.body.id } });
      assert.equal((await request(server.url, 'GET', '/api/v1/agents', { key: 'dpk_not-a-key' })).status, 401);
      carrier.send(inviteText(newCall(`127.0.0.1:${edge.port}`, '+15550170000'), carrier));
      await carrier.next(response(480), '480: no agent');
    } finally {
      await carrier.close();
    }
    server.child.kill('SIGTERM');
    assert.equal(await server.exited, 0);

    const all = lines();
    const requests = all.filter((line) => line.msg === 'http request');
    const post = requests.find((line) => line.method === 'POST' && line.route === '/api/v1/sip-credentials');
    assert.ok(post, 'the POST is logged');
    assert.deepEqual(
      Object.keys(post)
        .filter((k) => !['level', 'time', 'pid', 'hostname', 'msg'].includes(k))
        .sort(),
      ['durationMs', 'method', 'orgId', 'route', 'status'],
    );
    assert.equal(post.status, 201);
    assert.match(String(post.orgId), /^[0-9a-f-]{36}$/);
    assert.ok(
      requests.some((line) => line.status === 401 && line.orgId === undefined),
      'a refused request is logged without an organization',
    );
    const call = all.find((line) => line.msg === 'call');
    assert.ok(call, 'the call attempt is logged');
    assert.deepEqual(
      { direction: call.direction, number: call.number, outcome: call.outcome, status: call.status },
      { direction: 'inbound', number: '+15550170000', outcome: 'unavailable', status: 480 },
    );
    assert.ok(typeof call.callId === 'string' && typeof call.durationMs === 'number');
    for (const line of all) assert.match(String(line.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(all.at(-1)?.msg, 'dialplane stopped', 'the last line says the shutdown completed');
    const everything = server.output();
    assert.ok(!everything.includes(password), 'no SIP password');
    assert.equal(everything.split(key).length - 1, 1, 'the API key only in its one showing at the first start');
    assert.ok(!everything.includes('dpk_not-a-key'), 'not even a wrong one');
  });
});
