import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { buildConsole } from '../../scripts/build-console.ts';
import { createApiKey, revokeApiKey } from '../../src/orgs/orgs.ts';
import { ackText, inviteText, newCall, replyText, request, response, UdpPeer } from '../support/sip-peers.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

/**
 * The console in a real browser (Debian's chromium driven by playwright-core) against a real
 * server, a carrier and an agent runtime on real SIP sockets. The tests run in order on one page,
 * as one person's session. Screenshots go to DIALPLANE_SCREENSHOTS (`npm run screenshots` writes
 * docs/screenshots), else to a temporary folder.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const NUMBER = '+15550190000';
const SCREENSHOTS = process.env.DIALPLANE_SCREENSHOTS ?? fs.mkdtempSync(path.join(os.tmpdir(), 'dialplane-screenshots-'));

describe('web console', { skip: !fs.existsSync(CHROMIUM) && !process.env.CI ? `no browser at ${CHROMIUM}` : false }, () => {
  let server: TestServer;
  let browser: Browser;
  let page: Page;
  let carrier: UdpPeer;
  let agentRuntime: UdpPeer;
  /** Uncaught page errors, and errors the console's own code writes to the browser console. */
  const pageErrors: string[] = [];

  const nav = (name: string) => page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name });
  const dialog = () => page.getByRole('dialog');
  const numberRow = () => page.getByRole('row', { name: new RegExp(`\\${NUMBER}`) });
  const shoot = async (name: string) => {
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
  };
  const save = async (within: Locator = dialog()) => {
    await within.getByRole('button', { name: 'Save' }).click();
    await assert.doesNotReject(dialog().waitFor({ state: 'detached' }), 'the dialog closes once saved');
  };
  const signIn = async (apiKey: string) => {
    await page.getByLabel('API key').fill(apiKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
  };

  before(async () => {
    await buildConsole();
    server = await startTestServer('sqlite');
    const edge = { host: '127.0.0.1', port: server.server.sipPort };
    carrier = await UdpPeer.start('127.0.0.2', edge);
    agentRuntime = await UdpPeer.start('127.0.0.3', edge);
    browser = await chromium.launch({ executablePath: CHROMIUM });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      // Chromium itself logs every 4xx answer ("Failed to load resource"); the tests cause those on purpose.
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) pageErrors.push(message.text());
    });
    page.setDefaultTimeout(10000);
  });
  after(async () => {
    await browser?.close();
    await carrier?.close();
    await agentRuntime?.close();
    await server?.close();
  });

  test('served at /console with a strict content security policy', async () => {
    const response = await page.goto(`${server.url}/console`);
    assert.equal(response?.status(), 200);
    assert.match(response?.headers()['content-security-policy'] ?? '', /script-src 'self'/);
    await page.getByLabel('API key').waitFor();
  });

  test('sign in: a wrong key is refused with a message, the right one opens Numbers', async () => {
    await signIn('dpk_not-a-key');
    await page.getByRole('alert').filter({ hasText: 'That API key was not accepted.' }).waitFor();
    await shoot('sign-in');
    // By keyboard: the field, then Enter submits.
    await page.getByLabel('API key').fill(server.defaultKey);
    await page.getByLabel('API key').press('Enter');
    await page.getByRole('heading', { name: 'Numbers', level: 1 }).waitFor();
    await page.getByRole('table', { name: 'Phone numbers' }).getByText('No numbers yet').waitFor();
  });

  test('create a trunk and two agents', async () => {
    await nav('Trunks').click();
    await page.getByRole('button', { name: 'New trunk' }).click();
    await dialog().getByLabel('Server').fill(`127.0.0.2:${carrier.port}`);
    await dialog().getByLabel('Auth user').fill('trunk-user');
    await dialog().getByLabel('Password').fill('trunk-secret');
    await dialog().getByLabel('Allowed addresses').fill('127.0.0.2');
    await save();
    await page
      .getByRole('row', { name: /127\.0\.0\.2/ })
      .getByText('trunk-user')
      .waitFor();
    await shoot('trunks');

    await nav('Agents').click();
    for (const name of ['Front desk', 'Night line']) {
      await page.getByRole('button', { name: 'New agent' }).click();
      await dialog().getByLabel('Name').fill(name);
      await dialog()
        .getByLabel('SIP URI')
        .fill(`sip:${name.replace(' ', '-').toLowerCase()}@${agentRuntime.hostPort}`);
      await save();
      await page.getByRole('row', { name: new RegExp(name) }).waitFor();
    }
  });

  test('a trunk’s media settings: shown in its row, changed in Edit, kept by an edit of another field', async () => {
    const row = page.getByRole('row', { name: /127\.0\.0\.2/ });
    await nav('Trunks').click();
    await row.getByRole('cell', { name: 'Anchored', exact: true }).waitFor();
    await row.getByRole('button', { name: 'Edit' }).click();
    await dialog().getByLabel('Media encryption').selectOption('dtls-srtp');
    await save();
    await row.getByRole('cell', { name: 'Anchored, DTLS-SRTP' }).waitFor();
    // The form sends every field (a PUT replaces them all): changing the description keeps the media settings.
    await row.getByRole('button', { name: 'Edit' }).click();
    await dialog().getByLabel('Description').fill('main carrier');
    await save();
    await row.getByRole('cell', { name: 'main carrier' }).waitFor();
    await row.getByRole('cell', { name: 'Anchored, DTLS-SRTP' }).waitFor();
  });

  test('a number: bad input shows the problem in the dialog; registration goes Registering → Registered live', async () => {
    await nav('Numbers').click();
    await page.getByRole('button', { name: 'New number' }).click();
    await dialog().getByLabel('Phone number').fill('not a number');
    await dialog().getByRole('button', { name: 'Save' }).click();
    await dialog().getByRole('alert').filter({ hasText: 'must be a phone number' }).waitFor();

    await dialog().getByLabel('Phone number').fill('+1 (555) 019-0000');
    await dialog().getByLabel('Display name').fill('Main line');
    await dialog().getByLabel('Register with the provider').check();
    await save();
    const register = await carrier.next(request('REGISTER'), 'the REGISTER for the new number', 5000);
    await numberRow().getByText('Registering').waitFor();
    carrier.respond(register, replyText(register, 200, 'OK', 'reg-1', [`Contact: ${register.headers.get('contact')};expires=3600`]));
    // No reload: the registration column refreshes by itself.
    await numberRow().getByText('Registered').waitFor();
  });

  test('link inbound, relink, and set as an outbound caller ID through the Link dialog', async () => {
    await numberRow().getByRole('button', { name: 'Link', exact: true }).click();
    await dialog().getByLabel('Agent').selectOption({ label: 'Front desk' });
    await dialog().getByRole('radio', { name: 'Inbound' }).check();
    await save();
    await numberRow()
      .getByRole('cell', { name: /Front desk/ })
      .waitFor();

    await numberRow().getByRole('button', { name: 'Link', exact: true }).click();
    await dialog().getByLabel('Agent').selectOption({ label: 'Night line' });
    await save();
    await numberRow()
      .getByRole('cell', { name: /Night line/ })
      .first()
      .waitFor();
    assert.equal(await numberRow().getByText('Front desk').count(), 0, 'relinked: the first agent is gone');

    await numberRow().getByRole('button', { name: 'Link', exact: true }).click();
    await dialog().getByLabel('Agent').selectOption({ label: 'Front desk' });
    await dialog().getByRole('radio', { name: 'Outbound caller ID' }).check();
    await save();
    await numberRow()
      .getByRole('button', { name: /Unlink Front desk's caller ID/ })
      .waitFor();
    await shoot('numbers');
  });

  test('a second organization sees the 409 of the global inbound rule as a clear message', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('alert').filter({ hasText: 'You are signed out.' }).waitFor();
    const other = await server.newOrg();
    const headers = { authorization: `Bearer ${other.apiKey}` };
    const trunk = await server.request('POST', '/api/v1/sip-credentials', { key: other.apiKey, body: { server: 'sip.other.example' } });
    await server.request('POST', '/api/v1/agents', { key: other.apiKey, body: { name: 'Their agent' }, headers });
    await server.request('POST', '/api/v1/sip-phone-numbers', { key: other.apiKey, body: { phoneNumber: NUMBER, credentialsId: trunk.body.id } });

    await signIn(other.apiKey);
    await numberRow().getByRole('button', { name: 'Link', exact: true }).click();
    await dialog().getByLabel('Agent').selectOption({ label: 'Their agent' });
    await dialog().getByRole('button', { name: 'Save' }).click();
    await dialog().getByRole('alert').filter({ hasText: 'already linked to an agent for inbound calls elsewhere' }).waitFor();
    await shoot('link-conflict');
    await dialog().press('Escape');
    await dialog().waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signIn(server.defaultKey);
    await numberRow().waitFor();
  });

  test('a call to the number reaches the agent and shows in Calls', async () => {
    const call = newCall(`127.0.0.1:${server.server.sipPort}`, NUMBER);
    carrier.send(inviteText(call, carrier));
    const invite = await agentRuntime.next(request('INVITE'), 'the INVITE at the inbound agent');
    assert.match(invite.uri, /^sip:night-line@/);
    agentRuntime.respond(invite, replyText(invite, 486, 'Busy Here', 'agent-1'));
    const busy = await carrier.next(response(486), '486 at the carrier');
    carrier.send(ackText(call, carrier, busy));

    await nav('Calls').click();
    await page.getByLabel('Direction').selectOption('inbound');
    const row = page.getByRole('row', { name: new RegExp(`\\${NUMBER}`) });
    // Records are written in batches just after the call: Refresh until it is there.
    for (let tries = 0; (await row.count()) === 0 && tries < 50; tries++) {
      await page.getByRole('button', { name: 'Refresh' }).click();
      await page.waitForTimeout(100);
    }
    await row.getByRole('cell', { name: 'rejected' }).waitFor();
    await row.getByRole('cell', { name: '486' }).waitFor();
    await row.getByRole('cell', { name: 'Night line' }).waitFor();
    await shoot('calls');
  });

  test('unlink, search and filter the numbers table', async () => {
    await nav('Numbers').click();
    await numberRow()
      .getByRole('button', { name: /Unlink inbound agent/ })
      .click();
    await numberRow()
      .getByRole('button', { name: /Unlink inbound agent/ })
      .waitFor({ state: 'detached' });
    await numberRow()
      .getByRole('button', { name: /Unlink Front desk's caller ID/ })
      .click();
    await page.getByLabel('Linked to').selectOption({ label: 'Unlinked only' });
    await numberRow().waitFor();

    await page.getByRole('searchbox', { name: 'Search numbers' }).fill('nothing like this');
    await page.getByText('No number matches.').waitFor();
    await page.getByRole('searchbox', { name: 'Search numbers' }).fill('019-00');
    await numberRow().waitFor();
  });

  test('usable at phone width', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await nav('Numbers').click();
    await numberRow().waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page itself does not scroll sideways at 390 px (the table box does): ${overflow} px`);
    await shoot('numbers-phone');
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  test('a revoked key brings the person back to sign-in with a message', async () => {
    const { apiKey } = await createApiKey(server.server.ctx.db, server.defaultOrgId);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signIn(apiKey);
    await nav('Agents').waitFor();
    await revokeApiKey(server.server.ctx.db, apiKey);
    // A running server trusts a key it checked for up to a second (src/orgs/api-key-cache.ts).
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await nav('Agents').click();
    await page.getByRole('alert').filter({ hasText: 'Your API key is no longer accepted' }).waitFor();
    await page.getByLabel('API key').waitFor();
  });

  test('no page errors along the way', () => {
    assert.deepEqual(pageErrors, []);
  });
});
