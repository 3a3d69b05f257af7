import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import { consoleRoutes } from '../../src/console/routes.ts';
import { installProblemHandlers } from '../../src/http/problem.ts';

/** /console's files: served with their types and a content security policy; when not built, a 503 saying how to build it. */

async function consoleApp(dist: string) {
  const app = Fastify();
  installProblemHandlers(app);
  await app.register(consoleRoutes, { dist });
  return app;
}

test('a console that was not built is a 503 problem naming the build command', async () => {
  const app = await consoleApp(path.join(os.tmpdir(), 'no-such-console-dist'));
  for (const url of ['/console', '/console/', '/console/console.js']) {
    const res = await app.inject({ method: 'GET', url });
    assert.equal(res.statusCode, 503, url);
    assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
    assert.match(res.json<{ detail: string }>().detail, /npm run build:console/);
  }
  await app.close();
});

test('built files are served with their content types, no-cache, nosniff and the policy; nothing else is', async () => {
  const dist = fs.mkdtempSync(path.join(os.tmpdir(), 'console-dist-'));
  fs.writeFileSync(path.join(dist, 'index.html'), '<!doctype html><title>t</title>');
  fs.writeFileSync(path.join(dist, 'console.js'), 'export {};');
  fs.writeFileSync(path.join(dist, 'console.css'), 'body{}');
  fs.writeFileSync(path.join(dist, 'secret.txt'), 'not served');
  const app = await consoleApp(dist);
  try {
    const expected: [string, RegExp][] = [
      ['/console', /^text\/html/],
      ['/console/', /^text\/html/],
      ['/console/console.js', /^text\/javascript/],
      ['/console/console.css', /^text\/css/],
    ];
    for (const [url, type] of expected) {
      const res = await app.inject({ method: 'GET', url });
      assert.equal(res.statusCode, 200, url);
      assert.match(String(res.headers['content-type']), type);
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      assert.match(String(res.headers['content-security-policy']), /default-src 'none'; script-src 'self'/);
    }
    for (const url of ['/console/secret.txt', '/console/../package.json', '/console/%2e%2e/package.json']) {
      assert.equal((await app.inject({ method: 'GET', url })).statusCode, 404, url);
    }
  } finally {
    await app.close();
    fs.rmSync(dist, { recursive: true, force: true });
  }
});
