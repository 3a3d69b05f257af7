import pg from 'pg';
import { ChangeListeners, type Change, type ChangeFeed, type ChangeListener } from './changes.ts';

/** The triggers of migration 0002 notify `dialplane_changes.<schema>` on every committed change. */
const CHANNEL_PREFIX = 'dialplane_changes.';

const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5000;

function parseNotification(payload: string | undefined): Change | null {
  if (!payload) return null;
  try {
    const value = JSON.parse(payload) as { kind?: unknown; orgId?: unknown; id?: unknown };
    if (
      (value.kind === 'number' || value.kind === 'agent' || value.kind === 'credentials') &&
      typeof value.orgId === 'string' &&
      typeof value.id === 'string'
    ) {
      return { kind: value.kind, orgId: value.orgId, id: value.id };
    }
  } catch {
    // A payload we do not understand is treated as "something changed".
  }
  return { kind: 'reload' };
}

/**
 * Change feed for several instances on one PostgreSQL. Database triggers notify every committed
 * change to numbers, agents and credentials, whoever made it (another instance, the CLI, a
 * hand-written UPDATE); one dedicated connection LISTENs. Local changes are also delivered at
 * once, so the instance that made a change does not wait for its own echo. When the listening
 * connection drops, notifications may have been missed: after reconnecting it announces
 * `reload` so that subscribers rebuild what they hold.
 */
export class PostgresChangeFeed implements ChangeFeed {
  readonly #listeners = new ChangeListeners();
  #client: pg.Client | null = null;
  #closed = false;
  #reconnectDelay = RECONNECT_MIN_MS;
  #reconnectTimer: NodeJS.Timeout | null = null;
  readonly #onError: (error: unknown) => void;

  /**
   * `isOwnBackend` tells the notifications this process caused (already delivered locally when
   * it published them) from those of other instances.
   */
  readonly #url: string;
  readonly #isOwnBackend: (pid: number) => boolean;

  constructor(url: string, onError: (error: unknown) => void = () => {}, isOwnBackend: (pid: number) => boolean = () => false) {
    this.#url = url;
    this.#isOwnBackend = isOwnBackend;
    this.#onError = onError;
  }

  /** Resolves once the first LISTEN is in place. */
  async start(): Promise<void> {
    await this.#connect();
  }

  async #connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#url, connectionTimeoutMillis: 5000, keepAlive: true });
    let channel = '';
    client.on('notification', (message) => {
      if (message.channel !== channel || this.#isOwnBackend(message.processId)) return;
      const change = parseNotification(message.payload);
      if (change) void this.#listeners.deliver(change).catch(this.#onError);
    });
    client.on('error', (error) => this.#lost(client, error));
    client.on('end', () => this.#lost(client, new Error('listen connection ended')));
    try {
      await client.connect();
    } catch (error) {
      await client.end().catch(() => {});
      throw error;
    }
    const { rows } = await client.query<{ schema: string }>('select current_schema() as schema');
    channel = `${CHANNEL_PREFIX}${rows[0].schema}`;
    await client.query(`LISTEN ${client.escapeIdentifier(channel)}`);
    this.#client = client;
    this.#reconnectDelay = RECONNECT_MIN_MS;
  }

  #lost(client: pg.Client, error: unknown): void {
    if (this.#client !== client || this.#closed) return;
    this.#client = null;
    this.#onError(error);
    client.end().catch(() => {});
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#reconnectTimer) return;
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      this.#connect().then(
        () => this.#listeners.deliver({ kind: 'reload' }).catch(this.#onError),
        (error: unknown) => {
          this.#onError(error);
          this.#reconnectDelay = Math.min(this.#reconnectDelay * 2, RECONNECT_MAX_MS);
          this.#scheduleReconnect();
        },
      );
    }, this.#reconnectDelay);
    this.#reconnectTimer.unref();
  }

  /** For tests and operations: the backend pid of the listening connection, if connected. */
  get listenerPid(): number | null {
    return (this.#client as unknown as { processID?: number } | null)?.processID ?? null;
  }

  publish(change: Change): Promise<void> {
    return this.#listeners.deliver(change);
  }

  subscribe(listener: ChangeListener): () => void {
    return this.#listeners.add(listener);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    const client = this.#client;
    this.#client = null;
    this.#listeners.clear();
    await client?.end().catch(() => {});
  }
}
