import type { SipCredentials, SipCredentialsInput } from '../../clients/typescript/src/index.ts';
import { confirmDelete } from './confirm-delete.ts';
import { formDialog, h, labelled, options, textOrNull } from './dom.ts';
import { dataTable, pager, type Page } from './page.ts';
import { describeError } from './session.ts';

const ENCRYPTIONS: [SipCredentials['mediaEncryption'], string][] = [
  ['none', 'None (RTP)'],
  ['sdes-srtp', 'SRTP, keys in the SDP (SDES)'],
  ['dtls-srtp', 'SRTP, keys by DTLS'],
];

const mediaText = (trunk: SipCredentials) =>
  trunk.mediaAnchoring === 'off' ? 'Direct' : `Anchored${trunk.mediaEncryption === 'none' ? '' : `, ${trunk.mediaEncryption.toUpperCase()}`}`;

const healthText = (trunk: SipCredentials) =>
  trunk.health ? `${trunk.health.state}${trunk.health.lastResponse ? `: ${trunk.health.lastResponse}` : ''}` : 'Not checked';

export const trunksPage: Page = ({ client, content, alert }) => {
  let skip = 0;
  const results = h('div', { class: 'results' });
  content.append(
    h('div', { class: 'toolbar' }, h('button', { type: 'button', class: 'primary', onclick: () => editTrunk(null) }, 'New trunk')),
    results,
  );

  async function load(): Promise<void> {
    try {
      const page = await client.credentials.list({ skip, take: 20 });
      results.replaceChildren(
        dataTable(
          'Trunks (SIP credentials)',
          ['Server', 'Transport', 'Auth user', 'Description', 'Media', 'Health', 'Actions'],
          page.items.map(trunkRow),
          'No trunks yet: add one with New trunk.',
        ),
        pager(page, (next) => {
          skip = next;
          void load();
        }),
      );
      alert.show(null);
    } catch (error) {
      alert.show(describeError(error));
    }
  }

  function trunkRow(trunk: SipCredentials): HTMLTableRowElement {
    return h(
      'tr',
      {},
      h('th', { scope: 'row' }, trunk.server),
      h('td', {}, trunk.transport.toUpperCase()),
      h('td', {}, trunk.authUser ?? ''),
      h('td', {}, trunk.description ?? ''),
      h('td', {}, mediaText(trunk)),
      h('td', {}, healthText(trunk)),
      h(
        'td',
        { class: 'row-actions' },
        h('button', { type: 'button', onclick: () => editTrunk(trunk) }, 'Edit'),
        h('button', { type: 'button', class: 'danger', onclick: () => void deleteTrunk(trunk) }, 'Delete'),
      ),
    );
  }

  function editTrunk(trunk: SipCredentials | null): void {
    const server = h('input', { type: 'text', required: true, placeholder: 'sip.carrier.example or host:port', value: trunk?.server ?? '' });
    const transport = h(
      'select',
      {},
      options(
        [
          ['udp', 'UDP'],
          ['tcp', 'TCP'],
          ['tls', 'TLS'],
        ],
        trunk?.transport ?? 'udp',
      ),
    );
    const domain = h('input', { type: 'text', value: trunk?.domain ?? '' });
    const authUser = h('input', { type: 'text', autocomplete: 'off', value: trunk?.authUser ?? '' });
    const authPassword = h('input', { type: 'password', autocomplete: 'new-password' });
    const description = h('input', { type: 'text', value: trunk?.description ?? '' });
    const allowedAddresses = h('input', { type: 'text', value: trunk?.allowedAddresses.join(', ') ?? '' });
    const healthCheck = h('input', { type: 'checkbox', checked: trunk?.healthCheck ?? false });
    const mediaAnchoring = h(
      'select',
      {},
      options(
        [
          ['auto', 'Through the media relay'],
          ['off', 'Direct between carrier and agent'],
        ],
        trunk?.mediaAnchoring ?? 'auto',
      ),
    );
    const mediaEncryption = h('select', {}, options(ENCRYPTIONS, trunk?.mediaEncryption ?? 'none'));
    formDialog(
      trunk ? `Edit ${trunk.server}` : 'New trunk',
      [
        labelled('Server', server),
        labelled('Transport', transport),
        labelled('Domain', domain, 'The SIP domain, when it is not the server.'),
        labelled('Auth user', authUser),
        labelled('Password', authPassword, trunk?.authPasswordSet ? 'Set; leave blank to keep it.' : 'Stored encrypted, never shown again.'),
        labelled('Description', description),
        labelled('Allowed addresses', allowedAddresses, 'IPs or CIDRs inbound calls may come from, comma-separated; blank: the server’s addresses.'),
        labelled('Health check', healthCheck),
        labelled('Media', mediaAnchoring, 'When the server has rtpengines (docs/media.md); without them media is always direct.'),
        labelled('Media encryption', mediaEncryption, 'On the carrier’s leg of anchored calls; the agent’s leg stays RTP.'),
      ],
      async () => {
        const body: SipCredentialsInput = {
          server: server.value.trim(),
          transport: transport.value as SipCredentialsInput['transport'],
          domain: textOrNull(domain),
          authUser: textOrNull(authUser),
          description: textOrNull(description),
          allowedAddresses: allowedAddresses.value
            .split(',')
            .map((address) => address.trim())
            .filter(Boolean),
          healthCheck: healthCheck.checked,
          mediaAnchoring: mediaAnchoring.value as SipCredentialsInput['mediaAnchoring'],
          mediaEncryption: mediaEncryption.value as SipCredentialsInput['mediaEncryption'],
          // A PUT replaces every field: keep what this form does not show.
          ...(trunk ? { cpsLimit: trunk.cpsLimit, cpsKey: trunk.cpsKey, source: trunk.source, providerId: trunk.providerId } : {}),
          ...(authPassword.value ? { authPassword: authPassword.value } : {}),
        };
        if (trunk) await client.credentials.replace(trunk.id, body);
        else await client.credentials.create(body);
        await load();
      },
      describeError,
    );
  }

  async function deleteTrunk(trunk: SipCredentials): Promise<void> {
    try {
      const { phoneNumbers } = await client.credentials.affectedAgents(trunk.id);
      const dependents = phoneNumbers.map((number) => {
        const agents = number.affectedAgents.map((agent) => `${agent.agentName} (${agent.uses.join(' and ')})`);
        return agents.length > 0 ? `${number.phoneNumber}, used by ${agents.join(', ')}` : number.phoneNumber;
      });
      confirmDelete(trunk.server, dependents, 'also deletes these numbers and unlinks their agents', async (force) => {
        await client.credentials.delete(trunk.id, { force });
        await load();
      });
    } catch (error) {
      alert.show(describeError(error));
    }
  }

  void load();
  return () => {};
};
