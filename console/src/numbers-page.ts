import type { Agent, SipCredentials, SipPhoneNumber, SipPhoneNumberPage, RegistrationStatus } from '../../clients/typescript/src/index.ts';
import { confirmDelete } from './confirm-delete.ts';
import { formDialog, h, labelled, options, textOrNull, uniqueId } from './dom.ts';
import { dataTable, LARGEST_PAGE, pager, type Page } from './page.ts';
import { describeError } from './session.ts';

/** How often registration states are re-read while the event stream is down. */
const REFRESH_MS = 3000;
/** The wait before the event stream is opened again after it broke. */
const RECONNECT_MS = 2000;

const registrationText = (status: RegistrationStatus) => {
  const reason = status.errorDescription ?? (status.state === 'Failed' ? status.sipResponseMessage : null);
  return reason ? `${status.state}: ${reason}` : status.state;
};

export const numbersPage: Page = ({ client, content, alert }) => {
  const query = { skip: 0, take: 20, search: '', linked: '' };
  let agents: Agent[] = [];
  let trunks: SipCredentials[] = [];
  let page: SipPhoneNumberPage | null = null;
  const registrationCells = new Map<string, HTMLElement>();

  const search = h('input', { type: 'search', 'aria-label': 'Search numbers', placeholder: 'Digits, name or description' });
  const linkedFilter = h('select', { 'aria-label': 'Linked to' });
  const results = h('div', { class: 'results' });
  let searchTimer: ReturnType<typeof setTimeout> | undefined;
  search.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      query.search = search.value.trim();
      query.skip = 0;
      void load();
    }, 250);
  });
  linkedFilter.addEventListener('change', () => {
    query.linked = linkedFilter.value;
    query.skip = 0;
    void load();
  });
  content.append(
    h(
      'div',
      { class: 'toolbar' },
      search,
      linkedFilter,
      h('button', { type: 'button', class: 'primary', onclick: () => editNumber(null) }, 'New number'),
    ),
    results,
  );

  const agentName = (agentId: string | null) => agents.find((agent) => agent.agentId === agentId)?.name ?? agentId ?? '';

  function listQuery() {
    return {
      skip: query.skip,
      take: query.take,
      ...(query.search ? { search: query.search } : {}),
      ...(query.linked === 'unlinked' ? { unlinkedOnly: true } : query.linked ? { linkedAgentId: query.linked } : {}),
    };
  }

  async function load(): Promise<void> {
    try {
      [page, agents, trunks] = await Promise.all([
        client.numbers.list(listQuery()),
        client.agents.list(),
        client.credentials.list({ take: LARGEST_PAGE }).then((list) => list.items),
      ]);
      linkedFilter.replaceChildren(
        ...options(
          [['', 'Any link'], ['unlinked', 'Unlinked only'], ...agents.map((agent): [string, string] => [agent.agentId, `Linked to ${agent.name}`])],
          query.linked,
        ),
      );
      draw(page);
      alert.show(null);
    } catch (error) {
      alert.show(describeError(error));
    }
  }

  /** Refreshes the registration column in place, so that focus and the reader's place stay put. */
  async function refreshRegistrations(): Promise<void> {
    try {
      const fresh = await client.numbers.list(listQuery());
      for (const number of fresh.items) {
        const cell = registrationCells.get(number.id);
        const text = registrationText(number.registrationStatus);
        if (cell && cell.textContent !== text) cell.textContent = text;
      }
    } catch {
      // The next refresh tries again; a revoked key has already signed the person out.
    }
  }

  function draw(current: SipPhoneNumberPage): void {
    registrationCells.clear();
    const rows = current.items.map((number) => numberRow(number));
    results.replaceChildren(
      dataTable(
        'Phone numbers',
        ['Number', 'Display name', 'Trunk', 'Inbound agent', 'Outbound agent', 'Registration', 'Actions'],
        rows,
        query.search || query.linked ? 'No number matches.' : 'No numbers yet: add one with New number.',
      ),
      pager(current, (skip) => {
        query.skip = skip;
        void load();
      }),
    );
  }

  function numberRow(number: SipPhoneNumber): HTMLTableRowElement {
    const trunk = trunks.find((candidate) => candidate.id === number.credentialsId);
    const outbound = agents.filter((agent) => agent.outboundPhoneNumberId === number.id);
    const registration = h(
      'td',
      { class: `registration ${number.registrationStatus.state.toLowerCase()}` },
      registrationText(number.registrationStatus),
    );
    registrationCells.set(number.id, registration);
    const unlinkButton = (label: string, run: () => Promise<unknown>) =>
      h('button', { type: 'button', class: 'link-button', 'aria-label': label, onclick: () => void act(run) }, 'Unlink');
    return h(
      'tr',
      {},
      h('th', { scope: 'row' }, number.phoneNumber),
      h('td', {}, number.displayName ?? ''),
      h('td', {}, trunk?.server ?? ''),
      h(
        'td',
        {},
        number.incomingCallsAgentId
          ? [
              agentName(number.incomingCallsAgentId),
              ' ',
              unlinkButton(`Unlink inbound agent of ${number.phoneNumber}`, () => client.numbers.unlink(number.id, { mode: 'inbound' })),
            ]
          : '',
      ),
      h(
        'td',
        {},
        outbound.map((agent) =>
          h(
            'span',
            { class: 'outbound-agent' },
            agent.name,
            ' ',
            unlinkButton(`Unlink ${agent.name}'s caller ID ${number.phoneNumber}`, () =>
              client.numbers.unlink(number.id, { mode: 'replaceOutbound', agentId: agent.agentId }),
            ),
          ),
        ),
      ),
      registration,
      h(
        'td',
        { class: 'row-actions' },
        h('button', { type: 'button', onclick: () => linkNumber(number) }, 'Link'),
        h('button', { type: 'button', onclick: () => editNumber(number) }, 'Edit'),
        h('button', { type: 'button', class: 'danger', onclick: () => void deleteNumber(number) }, 'Delete'),
      ),
    );
  }

  async function act(run: () => Promise<unknown>): Promise<void> {
    try {
      await run();
      await load();
    } catch (error) {
      alert.show(describeError(error));
    }
  }

  function linkNumber(number: SipPhoneNumber): void {
    if (agents.length === 0) {
      alert.show('There is no agent to link to yet: create one on the Agents page.');
      return;
    }
    const agent = h(
      'select',
      {},
      options(
        agents.map((candidate): [string, string] => [candidate.agentId, candidate.name]),
        number.incomingCallsAgentId,
      ),
    );
    const mode = uniqueId('mode');
    const modeChoice = (value: string, label: string, checked: boolean) => {
      const input = h('input', { type: 'radio', name: mode, value, id: uniqueId('mode-choice'), checked });
      return h('div', { class: 'choice' }, input, h('label', { for: input.id }, label));
    };
    const modes = h(
      'fieldset',
      {},
      h('legend', {}, 'Mode'),
      modeChoice('inbound', 'Inbound', true),
      modeChoice('replaceOutbound', 'Outbound caller ID', false),
    );
    formDialog(
      `Link ${number.phoneNumber}`,
      [labelled('Agent', agent), modes],
      async () => {
        const chosen = modes.querySelector<HTMLInputElement>('input:checked')?.value === 'replaceOutbound' ? 'replaceOutbound' : 'inbound';
        await client.numbers.link(number.id, { agentId: agent.value, mode: chosen });
        await load();
      },
      describeError,
    );
  }

  function editNumber(number: SipPhoneNumber | null): void {
    if (trunks.length === 0) {
      alert.show('A number needs a trunk: create one on the Trunks page first.');
      return;
    }
    const phoneNumber = h('input', { type: 'tel', required: true, autocomplete: 'off', value: number?.phoneNumber ?? '' });
    const trunk = h(
      'select',
      {},
      options(
        trunks.map((candidate): [string, string] => [candidate.id, candidate.server]),
        number?.credentialsId,
      ),
    );
    const displayName = h('input', { type: 'text', value: number?.displayName ?? '' });
    const description = h('input', { type: 'text', value: number?.description ?? '' });
    const registration = h('input', { type: 'checkbox', checked: number?.registration ?? false });
    formDialog(
      number ? `Edit ${number.phoneNumber}` : 'New number',
      [
        labelled('Phone number', phoneNumber, 'Any common notation; stored as + and digits.'),
        labelled('Trunk', trunk),
        labelled('Display name', displayName),
        labelled('Description', description),
        labelled('Register with the provider', registration),
      ],
      async () => {
        const body = {
          phoneNumber: phoneNumber.value,
          credentialsId: trunk.value,
          displayName: textOrNull(displayName),
          description: textOrNull(description),
          registration: registration.checked,
        };
        if (number) await client.numbers.replace(number.id, body);
        else await client.numbers.create(body);
        await load();
      },
      describeError,
    );
  }

  async function deleteNumber(number: SipPhoneNumber): Promise<void> {
    try {
      const { affectedAgents } = await client.numbers.affectedAgents(number.id);
      const dependents = affectedAgents.map((agent) => `${agent.agentName} (${agent.uses.join(' and ')})`);
      confirmDelete(number.phoneNumber, dependents, 'unlinks these agents', async (force) => {
        await client.numbers.delete(number.id, { force });
        await load();
      });
    } catch (error) {
      alert.show(describeError(error));
    }
  }

  /** Registration states as they change, from the event stream; while it is down, they are polled. */
  const stream = new AbortController();
  let streaming = false;
  async function followRegistrations(): Promise<void> {
    let lastEventId: string | undefined;
    while (!stream.signal.aborted) {
      try {
        const events = client.events.stream({
          types: ['registration.state_changed'],
          lastEventId,
          signal: stream.signal,
          onOpen: () => {
            streaming = true;
            // What changed before the stream opened.
            void refreshRegistrations();
          },
        });
        for await (const { id, event } of events) {
          lastEventId = id;
          const number = (event.data as { phoneNumber: SipPhoneNumber }).phoneNumber;
          const cell = registrationCells.get(number.id);
          if (cell) cell.textContent = registrationText(number.registrationStatus);
        }
      } catch {
        // Closed, or the server went away: poll until the stream is back.
      }
      streaming = false;
      await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
    }
  }

  void load();
  void followRegistrations();
  const refresh = setInterval(() => {
    if (!streaming) void refreshRegistrations();
  }, REFRESH_MS);
  return () => {
    stream.abort();
    clearInterval(refresh);
    clearTimeout(searchTimer);
  };
};
