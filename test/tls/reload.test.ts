import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { setTimeout as delay } from 'node:timers/promises';
import { spawnServer, type ServerProcess } from '../support/process.ts';
import { freePort } from '../support/sipp.ts';
import { makeTestPki, type TestPki } from '../support/tls-certs.ts';

/** Certificate renewal: `dialplane serve` rereads its TLS files on SIGHUP; open connections go on. */
let first: TestPki;
let second: TestPki;
let dir: string;
let server: ServerProcess;
let tlsPort: number;

const fingerprint = (file: string) => new crypto.X509Certificate(fs.readFileSync(file)).fingerprint256;

function connect(): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: tlsPort, rejectUnauthorized: false }, () => resolve(socket));
    socket.once('error', reject);
  });
}

async function logged(message: string, count: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (server.output().split(message).length - 1 >= count) return;
    await delay(25);
  }
  assert.fail(`"${message}" was not logged:\n${server.output()}`);
}

before(async () => {
  first = makeTestPki();
  second = makeTestPki();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dialplane-reload-'));
  fs.copyFileSync(first.cert, path.join(dir, 'cert.pem'));
  fs.copyFileSync(first.key, path.join(dir, 'key.pem'));
  tlsPort = await freePort();
  server = await spawnServer({
    DIALPLANE_DB: path.join(dir, 'dialplane.db'),
    DIALPLANE_SIP_TLS_PORT: String(tlsPort),
    DIALPLANE_SIP_TLS_CERT: path.join(dir, 'cert.pem'),
    DIALPLANE_SIP_TLS_KEY: path.join(dir, 'key.pem'),
  });
});
after(async () => {
  server.child.kill('SIGTERM');
  await server.exited;
  for (const pki of [first, second]) pki.remove();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('SIGHUP: new TLS connections get the renewed certificate, open ones stay; a broken renewal keeps the old one', async () => {
  const open = await connect();
  assert.equal(open.getPeerCertificate().fingerprint256, fingerprint(first.cert));

  fs.copyFileSync(second.cert, path.join(dir, 'cert.pem'));
  fs.copyFileSync(second.key, path.join(dir, 'key.pem'));
  server.child.kill('SIGHUP');
  await logged('TLS files reloaded', 1);
  const renewed = await connect();
  assert.equal(renewed.getPeerCertificate().fingerprint256, fingerprint(second.cert), 'the renewed certificate');
  renewed.destroy();

  // The connection made before the reload still carries SIP: a keep-alive ping gets its pong.
  const pong = new Promise<string>((resolve) => open.once('data', (data: Buffer) => resolve(data.toString())));
  open.write('\r\n\r\n');
  assert.equal(await pong, '\r\n');
  open.destroy();

  // A key that does not match: logged, and the renewed certificate stays in use.
  fs.copyFileSync(first.key, path.join(dir, 'key.pem'));
  server.child.kill('SIGHUP');
  await logged('TLS files not reloaded', 1);
  const after = await connect();
  assert.equal(after.getPeerCertificate().fingerprint256, fingerprint(second.cert));
  after.destroy();
  assert.equal(server.child.exitCode, null, 'still running');
});
