import type { CallRecord, CallRecordPage, QueryOf } from '../../clients/typescript/src/index.ts';
import { formatTime, h, labelled, options } from './dom.ts';
import { dataTable, LARGEST_PAGE, pager, type Page } from './page.ts';
import { describeError } from './session.ts';

type CallQuery = QueryOf<'listCallRecords'>;

const OUTCOMES = [
  'answered',
  'not_found',
  'forbidden',
  'unavailable',
  'rejected',
  'cancelled',
  'timeout',
  'failed',
  'rate_limited',
] as const satisfies readonly CallRecord['outcome'][];

type MediaFlow = NonNullable<NonNullable<CallRecord['media']>['fromCaller']>;

const flowText = (flow: MediaFlow | null) => (flow === null ? '–' : `${flow.packets}${flow.lost === null ? '' : ` (${flow.lost} lost)`}`);

/** Packets each party sent through the media relay (and those the other reported lost), for anchored answered calls. */
const mediaText = (call: CallRecord) => {
  if (call.media === null) return '';
  if (call.media.statistics === 'missing') return 'Figures missing';
  return `caller ${flowText(call.media.fromCaller)} · callee ${flowText(call.media.fromCallee)}`;
};

const duration = (call: CallRecord) => `${((Date.parse(call.endedTime) - Date.parse(call.startedTime)) / 1000).toFixed(1)} s`;

export const callsPage: Page = ({ client, content, alert }) => {
  const query: CallQuery = { skip: 0, take: 20 };
  const direction = h(
    'select',
    {},
    options([
      ['', 'Any'],
      ['inbound', 'Inbound'],
      ['outbound', 'Outbound'],
    ]),
  );
  const outcome = h('select', {}, options([['', 'Any'], ...OUTCOMES.map((value): [string, string] => [value, value.replace('_', ' ')])]));
  const agent = h('select', {}, options([['', 'Any']]));
  const number = h('select', {}, options([['', 'Any']]));
  const results = h('div', { class: 'results' });
  const filters = h(
    'form',
    { class: 'filters', 'aria-label': 'Filter calls' },
    labelled('Direction', direction),
    labelled('Outcome', outcome),
    labelled('Agent', agent),
    labelled('Number', number),
  );
  filters.addEventListener('change', () => {
    query.skip = 0;
    query.direction = (direction.value || undefined) as CallQuery['direction'];
    query.outcome = (outcome.value || undefined) as CallQuery['outcome'];
    query.agentId = agent.value || undefined;
    query.phoneNumberId = number.value || undefined;
    void load();
  });
  const refresh = h('button', { type: 'button', onclick: () => void load() }, 'Refresh');
  content.append(h('div', { class: 'toolbar' }, filters, refresh), results);

  let names = { agents: new Map<string, string>(), numbers: new Map<string, string>() };

  async function loadPickers(): Promise<void> {
    const [agents, numbers] = await Promise.all([client.agents.list(), client.numbers.list({ take: LARGEST_PAGE })]);
    names = { agents: new Map(agents.map((a) => [a.agentId, a.name])), numbers: new Map(numbers.items.map((n) => [n.id, n.phoneNumber])) };
    agent.append(...options([...names.agents]));
    number.append(...options([...names.numbers]));
  }

  async function load(): Promise<void> {
    try {
      const page: CallRecordPage = await client.callRecords.list(query);
      results.replaceChildren(
        dataTable(
          'Call records, newest first',
          ['Started', 'Direction', 'Number', 'Remote party', 'Agent', 'Outcome', 'Status', 'Duration', 'Media packets'],
          page.items.map((call) =>
            h(
              'tr',
              {},
              h('th', { scope: 'row' }, formatTime(call.startedTime)),
              h('td', {}, call.direction),
              h('td', {}, call.phoneNumber),
              h('td', {}, call.remoteParty),
              h('td', {}, call.agentId ? (names.agents.get(call.agentId) ?? call.agentId) : ''),
              h('td', {}, call.outcome.replace('_', ' ')),
              h('td', {}, call.statusCode),
              h('td', {}, duration(call)),
              h('td', {}, mediaText(call)),
            ),
          ),
          'No calls match.',
        ),
        pager(page, (skip) => {
          query.skip = skip;
          void load();
        }),
      );
      alert.show(null);
    } catch (error) {
      alert.show(describeError(error));
    }
  }

  void loadPickers()
    .then(load)
    .catch((error: unknown) => alert.show(describeError(error)));
  return () => {};
};
