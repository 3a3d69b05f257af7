import type { Agent, SipPhoneNumber } from '../../clients/typescript/src/index.ts';
import { confirmDelete } from './confirm-delete.ts';
import { formDialog, h, labelled, textOrNull } from './dom.ts';
import { dataTable, LARGEST_PAGE, type Page } from './page.ts';
import { describeError } from './session.ts';

export const agentsPage: Page = ({ client, content, alert }) => {
  const results = h('div', { class: 'results' });
  content.append(
    h('div', { class: 'toolbar' }, h('button', { type: 'button', class: 'primary', onclick: () => editAgent(null) }, 'New agent')),
    results,
  );

  async function load(): Promise<void> {
    try {
      const [agents, numbers] = await Promise.all([client.agents.list(), client.numbers.list({ take: LARGEST_PAGE }).then((page) => page.items)]);
      results.replaceChildren(
        dataTable(
          'Agents',
          ['Name', 'SIP URI', 'Enabled', 'Inbound numbers', 'Outbound caller ID', 'Actions'],
          agents.map((agent) => agentRow(agent, numbers)),
          'No agents yet: add one with New agent.',
        ),
      );
      alert.show(null);
    } catch (error) {
      alert.show(describeError(error));
    }
  }

  function agentRow(agent: Agent, numbers: SipPhoneNumber[]): HTMLTableRowElement {
    const inbound = numbers.filter((number) => number.incomingCallsAgentId === agent.agentId).map((number) => number.phoneNumber);
    const outbound = numbers.find((number) => number.id === agent.outboundPhoneNumberId)?.phoneNumber ?? '';
    return h(
      'tr',
      {},
      h('th', { scope: 'row' }, agent.name),
      h('td', {}, agent.sipUri ?? ''),
      h('td', {}, agent.isEnabled ? 'Yes' : 'No'),
      h('td', {}, inbound.join(', ')),
      h('td', {}, outbound),
      h(
        'td',
        { class: 'row-actions' },
        h('button', { type: 'button', onclick: () => editAgent(agent) }, 'Edit'),
        h('button', { type: 'button', class: 'danger', onclick: () => deleteAgent(agent) }, 'Delete'),
      ),
    );
  }

  function editAgent(agent: Agent | null): void {
    const name = h('input', { type: 'text', required: true, value: agent?.name ?? '' });
    const sipUri = h('input', { type: 'text', placeholder: 'sip:agent@runtime.example.com', value: agent?.sipUri ?? '' });
    const description = h('input', { type: 'text', value: agent?.description ?? '' });
    const isEnabled = h('input', { type: 'checkbox', checked: agent?.isEnabled ?? true });
    formDialog(
      agent ? `Edit ${agent.name}` : 'New agent',
      [
        labelled('Name', name),
        labelled('SIP URI', sipUri, 'Where inbound calls to its numbers are sent.'),
        labelled('Description', description),
        labelled('Enabled', isEnabled),
      ],
      async () => {
        const body = { name: name.value.trim(), sipUri: textOrNull(sipUri), description: textOrNull(description), isEnabled: isEnabled.checked };
        if (agent) await client.agents.update(agent.agentId, body);
        else await client.agents.create(body);
        await load();
      },
      describeError,
    );
  }

  function deleteAgent(agent: Agent): void {
    confirmDelete(agent.name, [], '', async () => {
      await client.agents.delete(agent.agentId);
      await load();
    });
  }

  void load();
  return () => {};
};
