import dns from 'node:dns/promises';
import type { TrunkMediaSettings } from '../media/media-policy.ts';
import net from 'node:net';
import type { Kysely } from 'kysely';
import type { Change, ChangeFeed } from '../db/changes.ts';
import type { Database } from '../db/schema.ts';
import { preparedQuery } from '../db/prepared.ts';
import { AddressSet } from '../common/addresses.ts';
import { parseServerAddress, type SipTransportName } from '../credentials/server-address.ts';
import { normalizePhoneNumber } from '../numbers/normalize.ts';
import type { AgentEntry, CredentialsEntry, NumberEntry } from './decide.ts';

/**
 * A normalized number (`+` and up to 15 digits) packed into one double: a leading 1 keeps
 * leading zeros apart, and 16 digits stay below 2^53. A number key costs far less memory than
 * a string key, which matters at a million numbers.
 */
export function numberKey(normalized: string): number {
  return Number(`1${normalized.slice(1)}`);
}

const PAGE = 20000;
const DNS_TIMEOUT_MS = 2000;

export type HostResolver = (host: string) => Promise<string[]>;

/** Resolves a trunk's host to its addresses; an unresolvable host allows nobody. */
export const systemResolver: HostResolver = async (host) => {
  if (net.isIP(host)) return [host];
  const lookup = dns.lookup(host, { all: true }).then((results) => results.map((r) => r.address));
  const timeout = new Promise<string[]>((resolve) => setTimeout(() => resolve([]), DNS_TIMEOUT_MS).unref());
  return Promise.race([lookup.catch(() => []), timeout]);
};

interface CredentialsRow {
  id: string;
  org_id: string;
  server: string;
  transport: string;
  allowed_addresses: string;
  media_anchoring: string;
  media_encryption: string;
}

interface NumberRow {
  id: string;
  phone_number: string;
  credentials_id: string;
  incoming_calls_agent_id: string | null;
}

/**
 * Everything inbound routing needs, in memory: normalized number → number records, each with
 * its credentials (allowed sources) and inbound agent (state, sipUri). Loaded at start and kept
 * current through the change feed, so a relink applies to the very next INVITE. Agent and
 * credentials entries are shared by their numbers and updated in place.
 */
export class RoutingIndex {
  #byNumber = new Map<number, NumberEntry | NumberEntry[]>();
  #byId = new Map<string, NumberEntry>();
  #agents = new Map<string, AgentEntry>();
  #credentials = new Map<string, CredentialsEntry>();
  /** Every trunk's allowed sources together: who may send out-of-dialog requests to the edge. */
  #trunkSources = new AddressSet();
  #unsubscribe: (() => void) | null = null;
  /**
   * Changes wait here while a batch is being applied; the next batch takes all of them at once,
   * with one query per kind, so a burst of changes costs a few round trips, not one each.
   */
  #pending: Change[] = [];
  #waiting: (() => void)[] = [];
  #draining: Promise<void> | null = null;

  readonly #db: Kysely<Database>;
  readonly #resolve: HostResolver;
  readonly #onError: (error: unknown) => void;

  constructor(db: Kysely<Database>, resolve: HostResolver = systemResolver, onError: (error: unknown) => void = () => {}) {
    this.#db = db;
    this.#resolve = resolve;
    this.#onError = onError;
  }

  get size(): number {
    return this.#byId.size;
  }

  /** The records for a normalized number (one, several, or undefined). */
  candidates(normalized: string): NumberEntry | NumberEntry[] | undefined {
    return this.#byNumber.get(numberKey(normalized));
  }

  /** Whether an address may send calls for some trunk (its allowedAddresses, else its server's addresses). */
  isTrunkAddress(address: string): boolean {
    return this.#trunkSources.has(address);
  }

  /** The records for a dialled number as written in a Request-URI, or undefined if it does not normalize. */
  lookup(dialled: string): NumberEntry | NumberEntry[] | undefined {
    const normalized = normalizePhoneNumber(dialled);
    return normalized === null ? undefined : this.candidates(normalized);
  }

  /** Loads everything and follows the feed from then on. */
  async start(changes: ChangeFeed): Promise<void> {
    this.#unsubscribe = changes.subscribe((change) => this.#enqueue(change));
    const loaded = this.#reload();
    // Changes that arrive during the first load are applied after it.
    this.#draining = loaded.then(
      () => this.#drain(),
      () => this.#drain(),
    );
    await loaded;
  }

  stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
  }

  /** Resolves once this change is applied: a publisher may wait for it. */
  #enqueue(change: Change): Promise<void> {
    this.#pending.push(change);
    const applied = new Promise<void>((resolve) => this.#waiting.push(resolve));
    if (this.#draining === null) this.#draining = this.#drain();
    return applied;
  }

  async #drain(): Promise<void> {
    while (this.#pending.length > 0) {
      const batch = this.#pending;
      const waiting = this.#waiting;
      this.#pending = [];
      this.#waiting = [];
      try {
        await this.#apply(batch);
      } catch (error) {
        this.#onError(error);
      }
      for (const resolve of waiting) resolve();
    }
    this.#draining = null;
  }

  /** Credentials and agents before numbers, which refer to them; a reload covers everything. */
  async #apply(batch: Change[]): Promise<void> {
    if (batch.some((change) => change.kind === 'reload')) return this.#reload();
    const ids = (kind: Change['kind']) => [...new Set(batch.flatMap((c) => (c.kind === kind && 'id' in c ? [c.id] : [])))];
    await this.#refreshCredentials(ids('credentials'));
    await this.#refreshAgents(ids('agent'));
    await this.#refreshNumbers(ids('number'));
  }

  /** The credentials' entry: who may send for it is its allowedAddresses, else its server's addresses. */
  async #entryOf(row: CredentialsRow, resolved: Map<string, Promise<string[]>>): Promise<CredentialsEntry> {
    const sources = await this.#sourcesOf(row, resolved);
    const media = { mediaAnchoring: row.media_anchoring, mediaEncryption: row.media_encryption } as TrunkMediaSettings;
    return { id: row.id, orgId: row.org_id, sources, allowed: AddressSet.of(sources), media };
  }

  async #sourcesOf(row: CredentialsRow, resolved: Map<string, Promise<string[]>>): Promise<string[]> {
    const configured = JSON.parse(row.allowed_addresses) as string[];
    if (configured.length > 0) return configured;
    const server = parseServerAddress(row.server, row.transport as SipTransportName);
    if (!server) return [];
    let addresses = resolved.get(server.host);
    if (!addresses) {
      addresses = this.#resolve(server.host);
      resolved.set(server.host, addresses);
    }
    return addresses;
  }

  #rebuildTrunkSources(): void {
    this.#trunkSources = AddressSet.of([...this.#credentials.values()].flatMap((entry) => entry.sources));
  }

  async #reload(): Promise<void> {
    const agents = new Map<string, AgentEntry>();
    for (const row of await this.#db.selectFrom('agents').select(['id', 'org_id', 'is_enabled', 'sip_uri']).execute()) {
      agents.set(row.id, { id: row.id, orgId: row.org_id, isEnabled: row.is_enabled === 1, sipUri: row.sip_uri });
    }
    const credentials = new Map<string, CredentialsEntry>();
    const resolved = new Map<string, Promise<string[]>>();
    const rows = await this.#db
      .selectFrom('sip_credentials')
      .select(['id', 'org_id', 'server', 'transport', 'allowed_addresses', 'media_anchoring', 'media_encryption'])
      .execute();
    await Promise.all(
      rows.map(async (row) => {
        credentials.set(row.id, await this.#entryOf(row, resolved));
      }),
    );

    const byNumber = new Map<number, NumberEntry | NumberEntry[]>();
    const byId = new Map<string, NumberEntry>();
    let after = '';
    for (;;) {
      const page = await selectNumbers(this.#db).where('id', '>', after).orderBy('id').limit(PAGE).execute();
      for (const row of page) {
        const entry = this.#entryFor(row, credentials, agents);
        if (entry) {
          byId.set(entry.id, entry);
          insert(byNumber, entry);
        }
      }
      if (page.length < PAGE) break;
      after = page[page.length - 1].id;
    }

    this.#agents = agents;
    this.#credentials = credentials;
    this.#byNumber = byNumber;
    this.#byId = byId;
    this.#rebuildTrunkSources();
  }

  #entryFor(row: NumberRow, credentials: Map<string, CredentialsEntry>, agents: Map<string, AgentEntry>): NumberEntry | null {
    const creds = credentials.get(row.credentials_id);
    if (!creds) return null;
    return {
      id: row.id,
      key: numberKey(row.phone_number),
      credentials: creds,
      agent: row.incoming_calls_agent_id === null ? null : (agents.get(row.incoming_calls_agent_id) ?? null),
    };
  }

  async #refreshAgents(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const rows = await this.#db.selectFrom('agents').select(['id', 'org_id', 'is_enabled', 'sip_uri']).where('id', 'in', ids).execute();
    const found = new Map(rows.map((row) => [row.id, row]));
    for (const id of ids) {
      const row = found.get(id);
      const existing = this.#agents.get(id);
      if (!row) {
        // Deleting an agent unlinks its numbers first, and their changes come no later than
        // this one; should any entry still point here, it must not route.
        this.#agents.delete(id);
        if (existing) existing.isEnabled = false;
      } else if (existing) {
        existing.isEnabled = row.is_enabled === 1;
        existing.sipUri = row.sip_uri;
      } else {
        this.#agents.set(id, { id: row.id, orgId: row.org_id, isEnabled: row.is_enabled === 1, sipUri: row.sip_uri });
      }
    }
  }

  async #refreshCredentials(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const rows = await this.#db
      .selectFrom('sip_credentials')
      .select(['id', 'org_id', 'server', 'transport', 'allowed_addresses', 'media_anchoring', 'media_encryption'])
      .where('id', 'in', ids)
      .execute();
    const found = new Map(rows.map((row) => [row.id, row]));
    const resolved = new Map<string, Promise<string[]>>();
    for (const id of ids) {
      const row = found.get(id);
      if (!row) {
        this.#credentials.delete(id);
        continue;
      }
      const entry = await this.#entryOf(row, resolved);
      const existing = this.#credentials.get(id);
      if (existing) {
        existing.sources = entry.sources;
        existing.allowed = entry.allowed;
      } else {
        this.#credentials.set(id, entry);
      }
    }
    this.#rebuildTrunkSources();
  }

  async #refreshNumbers(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const rows = ids.length === 1 ? await numberById.rows(this.#db, { id: ids[0] }) : await selectNumbers(this.#db).where('id', 'in', ids).execute();
    // Credentials or agents this instance has not heard of yet (their changes may still be on their way).
    await this.#refreshCredentials([...new Set(rows.map((r) => r.credentials_id).filter((id) => !this.#credentials.has(id)))]);
    await this.#refreshAgents([
      ...new Set(
        rows.flatMap((r) => (r.incoming_calls_agent_id !== null && !this.#agents.has(r.incoming_calls_agent_id) ? [r.incoming_calls_agent_id] : [])),
      ),
    ]);
    for (const id of ids) {
      const previous = this.#byId.get(id);
      if (previous) {
        remove(this.#byNumber, previous);
        this.#byId.delete(id);
      }
    }
    for (const row of rows) {
      const entry = this.#entryFor(row, this.#credentials, this.#agents);
      if (!entry) continue;
      this.#byId.set(entry.id, entry);
      insert(this.#byNumber, entry);
    }
  }
}

function selectNumbers(db: Kysely<Database>) {
  return db.selectFrom('phone_numbers').select(['id', 'phone_number', 'credentials_id', 'incoming_calls_agent_id']);
}

// A link changes one number: that re-read is prepared; batches of changes use an IN list.
const numberById = preparedQuery((db, v: { id: string }) => selectNumbers(db).where('id', '=', v.id));

function insert(byNumber: Map<number, NumberEntry | NumberEntry[]>, entry: NumberEntry): void {
  const present = byNumber.get(entry.key);
  if (present === undefined) byNumber.set(entry.key, entry);
  else if (Array.isArray(present)) present.push(entry);
  else byNumber.set(entry.key, [present, entry]);
}

function remove(byNumber: Map<number, NumberEntry | NumberEntry[]>, entry: NumberEntry): void {
  const present = byNumber.get(entry.key);
  if (present === entry) byNumber.delete(entry.key);
  else if (Array.isArray(present)) {
    const rest = present.filter((e) => e !== entry);
    if (rest.length === 0) byNumber.delete(entry.key);
    else byNumber.set(entry.key, rest.length === 1 ? rest[0] : rest);
  }
}
