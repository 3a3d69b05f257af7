import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT, spawnServer, type ServerProcess } from './support/process.ts';
import { sippAvailable } from './support/sipp.ts';

/**
 * The README's walkthrough, as written: its shell block is taken from README.md and run with
 * bash against a real `dialplane serve`, twice on the same database, and what it promises is
 * checked in what it prints.
 */
const hasSipp = sippAvailable();

function walkthrough(): string {
  const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Walkthrough'));
  const block = /```sh\n([\s\S]*?)```/.exec(section);
  assert.ok(block, 'the walkthrough has a shell block');
  return block[1];
}

function bash(script: string, env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The JSON objects the block printed, in order (one per line). */
function printed(stdout: string): any[] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line));
}

describe('the README walkthrough', { skip: !hasSipp && 'sipp not installed' }, () => {
  let dir: string;
  let server: ServerProcess;
  let env: Record<string, string>;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dialplane-readme-'));
    const database = path.join(dir, 'dialplane.db');
    server = await spawnServer({ DIALPLANE_DB: database });
    const key = /^\s+(dpk_\S+)\s*$/m.exec(server.output())![1];
    const sipPort = /"sip":"127\.0\.0\.1:(\d+)"/.exec(server.output())![1];
    env = { KEY: key, API: `${server.url}/api/v1`, EDGE: `127.0.0.1:${sipPort}`, DIALPLANE_DB: database };
  });
  after(async () => {
    server.child.kill('SIGTERM');
    await server.exited;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const round of ['first', 'second']) {
    test(`runs as written (${round} run on the same database)`, { timeout: 120_000 }, async () => {
      const result = await bash(walkthrough(), env);
      const [linked, relinked, outbound, agent, conflict, records, ...rest] = printed(result.stdout);
      const context = `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`;
      assert.equal(rest.length, 0, `nothing else printed JSON (the clean-up answers 204): ${context}`);
      // 4: linked inbound to Support; 5: relinked to Sales; 6: Support's outbound number.
      assert.equal(linked?.phoneNumber, '+15550100000', context);
      assert.ok(linked.incomingCallsAgentId, context);
      assert.equal(relinked.id, linked.id);
      assert.notEqual(relinked.incomingCallsAgentId, linked.incomingCallsAgentId, 'Sales replaced Support');
      assert.equal(outbound.id, linked.id);
      assert.equal(agent.agentId, linked.incomingCallsAgentId, 'the agent shown is Support');
      assert.equal(agent.outboundPhoneNumberId, linked.id, 'Support calls out with the number');
      // 7: the other organization's link.
      assert.equal(conflict.status, 409, context);
      assert.match(conflict.detail, /already linked/);
      // 8: the call, answered by Sales.
      assert.match(result.stdout, /the call was answered/, context);
      assert.equal(records.totalCount, 1, context);
      assert.deepEqual(
        {
          direction: records.items[0].direction,
          agentId: records.items[0].agentId,
          outcome: records.items[0].outcome,
          statusCode: records.items[0].statusCode,
        },
        { direction: 'inbound', agentId: relinked.incomingCallsAgentId, outcome: 'answered', statusCode: 200 },
      );
    });
  }
});
