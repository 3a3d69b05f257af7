import dns from 'node:dns/promises';
import net from 'node:net';
import type { Kysely } from 'kysely';
import type { Change, ChangeFeed } from '../db/changes.ts';
import type { Database } from '../db/schema.ts';
import { addressMatcher } from '../common/addresses.ts';
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
  private byNumber = new Map<number, NumberEntry | NumberEntry[]>();
  private byId = new Map<string, NumberEntry>();
  private agents = new Map<string, AgentEntry>();
  private credentials = new Map<string, CredentialsEntry>();
  private unsubscribe: (() => void) | null = null;
  /** Changes are applied one at a time, in order; a reload supersedes what is queued. */
  private work: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly resolve: HostResolver = systemResolver,
    private readonly onError: (error: unknown) => void = () => {},
  ) {}

  get size(): number {
    return this.byId.size;
  }

  /** The records for a normalized number (one, several, or undefined). */
  candidates(normalized: string): NumberEntry | NumberEntry[] | undefined {
    return this.byNumber.get(numberKey(normalized));
  }

  /** The records for a dialled number as written in a Request-URI, or undefined if it does not normalize. */
  lookup(dialled: string): NumberEntry | NumberEntry[] | undefined {
    const normalized = normalizePhoneNumber(dialled);
    return normalized === null ? undefined : this.candidates(normalized);
  }

  /** Loads everything and follows the feed from then on. */
  async start(changes: ChangeFeed): Promise<void> {
    this.unsubscribe = changes.subscribe((change) => this.enqueue(change));
    await this.enqueueAndWait({ kind: 'reload' });
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  /** Resolves when every change received so far has been applied. */
  settled(): Promise<void> {
    return this.work;
  }

  /** The returned promise resolves once this change is applied: a publisher may wait for it. */
  private enqueue(change: Change): Promise<void> {
    this.work = this.work.then(() => this.apply(change)).catch((error: unknown) => this.onError(error));
    return this.work;
  }

  private enqueueAndWait(change: Change): Promise<void> {
    this.work = this.work.then(() => this.apply(change));
    const done = this.work;
    this.work = done.catch((error: unknown) => this.onError(error));
    return done;
  }

  private async apply(change: Change): Promise<void> {
    switch (change.kind) {
      case 'reload':
        return this.reload();
      case 'credentials':
        await this.refreshCredentials(change.id);
        return;
      case 'agent':
        await this.refreshAgent(change.id);
        return;
      case 'number':
        return this.refreshNumber(change.id);
    }
  }

  private async allowedFor(row: CredentialsRow, resolved: Map<string, Promise<string[]>>): Promise<net.BlockList> {
    const configured = JSON.parse(row.allowed_addresses) as string[];
    if (configured.length > 0) return addressMatcher(configured);
    const server = parseServerAddress(row.server, row.transport as SipTransportName);
    if (!server) return addressMatcher([]);
    let addresses = resolved.get(server.host);
    if (!addresses) {
      addresses = this.resolve(server.host);
      resolved.set(server.host, addresses);
    }
    return addressMatcher(await addresses);
  }

  private async reload(): Promise<void> {
    const agents = new Map<string, AgentEntry>();
    for (const row of await this.db.selectFrom('agents').select(['id', 'org_id', 'is_enabled', 'sip_uri']).execute()) {
      agents.set(row.id, { id: row.id, orgId: row.org_id, isEnabled: row.is_enabled === 1, sipUri: row.sip_uri });
    }
    const credentials = new Map<string, CredentialsEntry>();
    const resolved = new Map<string, Promise<string[]>>();
    const rows = await this.db
      .selectFrom('sip_credentials')
      .select(['id', 'org_id', 'server', 'transport', 'allowed_addresses'])
      .execute();
    await Promise.all(
      rows.map(async (row) => {
        credentials.set(row.id, { id: row.id, orgId: row.org_id, allowed: await this.allowedFor(row, resolved) });
      }),
    );

    const byNumber = new Map<number, NumberEntry | NumberEntry[]>();
    const byId = new Map<string, NumberEntry>();
    let after = '';
    for (;;) {
      const page = await this.db
        .selectFrom('phone_numbers')
        .select(['id', 'phone_number', 'credentials_id', 'incoming_calls_agent_id'])
        .where('id', '>', after)
        .orderBy('id')
        .limit(PAGE)
        .execute();
      for (const row of page) {
        const entry = this.entryFor(row, credentials, agents);
        if (entry) {
          byId.set(entry.id, entry);
          insert(byNumber, entry);
        }
      }
      if (page.length < PAGE) break;
      after = page[page.length - 1]!.id;
    }

    this.agents = agents;
    this.credentials = credentials;
    this.byNumber = byNumber;
    this.byId = byId;
  }

  private entryFor(
    row: NumberRow,
    credentials: Map<string, CredentialsEntry>,
    agents: Map<string, AgentEntry>,
  ): NumberEntry | null {
    const creds = credentials.get(row.credentials_id);
    if (!creds) return null;
    return {
      id: row.id,
      key: numberKey(row.phone_number),
      credentials: creds,
      agent: row.incoming_calls_agent_id === null ? null : (agents.get(row.incoming_calls_agent_id) ?? null),
    };
  }

  private async refreshAgent(id: string): Promise<AgentEntry | null> {
    const row = await this.db
      .selectFrom('agents')
      .select(['id', 'org_id', 'is_enabled', 'sip_uri'])
      .where('id', '=', id)
      .executeTakeFirst();
    const existing = this.agents.get(id);
    if (!row) {
      // Deleting an agent unlinks its numbers first, and their changes come before this one;
      // should any entry still point here, it must not route.
      this.agents.delete(id);
      if (existing) existing.isEnabled = false;
      return null;
    }
    if (existing) {
      existing.isEnabled = row.is_enabled === 1;
      existing.sipUri = row.sip_uri;
      return existing;
    }
    const entry = { id: row.id, orgId: row.org_id, isEnabled: row.is_enabled === 1, sipUri: row.sip_uri };
    this.agents.set(id, entry);
    return entry;
  }

  private async refreshCredentials(id: string): Promise<CredentialsEntry | null> {
    const row = await this.db
      .selectFrom('sip_credentials')
      .select(['id', 'org_id', 'server', 'transport', 'allowed_addresses'])
      .where('id', '=', id)
      .executeTakeFirst();
    const existing = this.credentials.get(id);
    if (!row) {
      this.credentials.delete(id);
      return null;
    }
    const allowed = await this.allowedFor(row, new Map());
    if (existing) {
      existing.allowed = allowed;
      return existing;
    }
    const entry = { id: row.id, orgId: row.org_id, allowed };
    this.credentials.set(id, entry);
    return entry;
  }

  private async refreshNumber(id: string): Promise<void> {
    const row = await this.db
      .selectFrom('phone_numbers')
      .select(['id', 'phone_number', 'credentials_id', 'incoming_calls_agent_id'])
      .where('id', '=', id)
      .executeTakeFirst();
    const previous = this.byId.get(id);
    if (previous) {
      remove(this.byNumber, previous);
      this.byId.delete(id);
    }
    if (!row) return;
    if (!this.credentials.has(row.credentials_id)) await this.refreshCredentials(row.credentials_id);
    const agentId = row.incoming_calls_agent_id;
    if (agentId !== null && !this.agents.has(agentId)) await this.refreshAgent(agentId);
    const entry = this.entryFor(row, this.credentials, this.agents);
    if (!entry) return;
    this.byId.set(id, entry);
    insert(this.byNumber, entry);
  }
}

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
    else byNumber.set(entry.key, rest.length === 1 ? rest[0]! : rest);
  }
}
