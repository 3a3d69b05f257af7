/**
 * The console's entry: sign-in, the page frame (navigation, sign out) and the hash routes
 * (#/numbers, #/agents, #/trunks, #/calls). Everything it shows comes through the typed client.
 */
import { agentsPage } from './agents-page.ts';
import { callsPage } from './calls-page.ts';
import { alertBox, h, labelled } from './dom.ts';
import { numbersPage } from './numbers-page.ts';
import type { Page } from './page.ts';
import { consoleClient, describeError, forgetApiKey, isProblem, storeApiKey, storedApiKey } from './session.ts';
import { trunksPage } from './trunks-page.ts';

const PAGES: Record<string, { title: string; page: Page }> = {
  numbers: { title: 'Numbers', page: numbersPage },
  agents: { title: 'Agents', page: agentsPage },
  trunks: { title: 'Trunks', page: trunksPage },
  calls: { title: 'Calls', page: callsPage },
};

const root = document.getElementById('app')!;
let stopPage: () => void = () => {};

function signOut(message: string | null): void {
  forgetApiKey();
  stopPage();
  stopPage = () => {};
  showSignIn(message);
}

function showSignIn(message: string | null): void {
  document.title = 'Sign in · dialplane';
  const apiKey = h('input', { type: 'password', required: true, autocomplete: 'off', spellcheck: 'false' });
  const alert = alertBox();
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h(
    'form',
    { class: 'sign-in', 'aria-labelledby': 'sign-in-title' },
    h('h1', { id: 'sign-in-title' }, 'dialplane console'),
    h('p', {}, 'Sign in with an API key of your organization. It is kept for this browser tab only.'),
    labelled('API key', apiKey),
    alert,
    submit,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const key = apiKey.value.trim();
    if (key === '') {
      alert.show('Enter an API key.');
      return;
    }
    submit.disabled = true;
    // The key is checked with a cheap call before it is kept.
    consoleClient(key, () => {})
      .agents.list()
      .then(() => {
        storeApiKey(key);
        if (!location.hash.startsWith('#/') || !(location.hash.slice(2) in PAGES)) location.hash = '#/numbers';
        showPage();
      })
      .catch((error: unknown) => alert.show(isProblem(error, 401) ? 'That API key was not accepted.' : describeError(error)))
      .finally(() => (submit.disabled = false));
  });
  root.replaceChildren(h('main', { class: 'centered' }, form));
  alert.show(message);
  apiKey.focus();
}

function showPage(): void {
  const apiKey = storedApiKey();
  if (apiKey === null) {
    showSignIn(null);
    return;
  }
  const name = location.hash.slice(2);
  if (!(name in PAGES)) {
    location.hash = '#/numbers';
    return;
  }
  const { title, page } = PAGES[name];
  document.title = `${title} · dialplane`;
  stopPage();
  const client = consoleClient(apiKey, () => signOut('Your API key is no longer accepted: sign in again.'));
  const alert = alertBox();
  const content = h('div', { class: 'content' });
  const heading = h('h1', { tabindex: -1 }, title);
  root.replaceChildren(
    h(
      'header',
      { class: 'top' },
      h('span', { class: 'brand' }, 'dialplane'),
      h(
        'nav',
        { 'aria-label': 'Main' },
        h(
          'ul',
          {},
          Object.entries(PAGES).map(([key, entry]) =>
            h('li', {}, h('a', { href: `#/${key}`, 'aria-current': key === name ? 'page' : null }, entry.title)),
          ),
        ),
      ),
      h('button', { type: 'button', onclick: () => signOut('You are signed out.') }, 'Sign out'),
    ),
    h('main', {}, heading, alert, content),
  );
  stopPage = page({ client, content, alert });
  heading.focus();
}

window.addEventListener('hashchange', showPage);
showPage();
