import { Migrator, sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import type { DatabaseHandle, Dialect } from './connection.ts';

/**
 * The only place where the two dialects may differ. Each migration receives the dialect; the
 * schema builder covers almost everything, including the partial unique index that enforces
 * the global inbound rule of docs/api.md, Links.
 */
// Migrations run against the schema as it was when each was written, not against today's types.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type DialectMigration = (db: Kysely<any>, dialect: Dialect) => Promise<void>;

const migrations: Record<string, DialectMigration> = {
  async '0001_initial'(db, dialect) {
    await db.schema
      .createTable('orgs')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('created_time', 'text', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('api_keys')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id'))
      .addColumn('prefix', 'text', (c) => c.notNull())
      .addColumn('key_hash', 'text', (c) => c.notNull().unique())
      .addColumn('created_time', 'text', (c) => c.notNull())
      .addColumn('revoked_time', 'text')
      .execute();
    await db.schema.createIndex('api_keys_prefix').on('api_keys').column('prefix').execute();

    await db.schema
      .createTable('sip_credentials')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id'))
      .addColumn('server', 'text', (c) => c.notNull())
      .addColumn('transport', 'text', (c) => c.notNull())
      .addColumn('domain', 'text')
      .addColumn('auth_user', 'text')
      .addColumn('auth_password_enc', 'text')
      .addColumn('description', 'text')
      .addColumn('cps_limit', 'integer')
      .addColumn('cps_key', 'text')
      .addColumn('allowed_addresses', 'text', (c) => c.notNull())
      .addColumn('source', 'text', (c) => c.notNull())
      .addColumn('provider_id', 'text')
      .addColumn('created_time', 'text', (c) => c.notNull())
      .addColumn('last_update_time', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('sip_credentials_org_created').on('sip_credentials').columns(['org_id', 'created_time', 'id']).execute();

    // agents.outbound_phone_number_id and phone_numbers.incoming_calls_agent_id point at each
    // other. SQLite accepts a reference to a table created later; PostgreSQL needs the
    // constraint added once both tables exist.
    await db.schema
      .createTable('agents')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('description', 'text')
      .addColumn('is_enabled', 'integer', (c) => c.notNull())
      .addColumn('config', 'text', (c) => c.notNull())
      .addColumn('additional_data', 'text', (c) => c.notNull())
      .addColumn('sip_uri', 'text')
      .addColumn('outbound_phone_number_id', 'text', (c) => (dialect === 'sqlite' ? c.references('phone_numbers.id') : c))
      .addColumn('created_time', 'text', (c) => c.notNull())
      .addColumn('last_update_time', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('agents_org_created').on('agents').columns(['org_id', 'created_time']).execute();
    await db.schema.createIndex('agents_outbound').on('agents').column('outbound_phone_number_id').execute();

    await db.schema
      .createTable('phone_numbers')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id'))
      .addColumn('phone_number', 'text', (c) => c.notNull())
      .addColumn('credentials_id', 'text', (c) => c.notNull().references('sip_credentials.id'))
      .addColumn('display_name', 'text')
      .addColumn('description', 'text')
      .addColumn('registration', 'integer', (c) => c.notNull())
      .addColumn('incoming_calls_agent_id', 'text', (c) => c.references('agents.id'))
      .addColumn('reg_state', 'text', (c) => c.notNull())
      .addColumn('reg_error_description', 'text')
      .addColumn('reg_sip_response_message', 'text')
      .addColumn('reg_last_updated', 'text', (c) => c.notNull())
      .addColumn('reg_expires_at', 'text')
      .addColumn('created_time', 'text', (c) => c.notNull())
      .addColumn('last_update_time', 'text', (c) => c.notNull())
      .addUniqueConstraint('phone_numbers_org_number_credentials_unique', ['org_id', 'phone_number', 'credentials_id'])
      .execute();
    await db.schema.createIndex('phone_numbers_org_created').on('phone_numbers').columns(['org_id', 'created_time', 'id']).execute();
    await db.schema.createIndex('phone_numbers_credentials').on('phone_numbers').column('credentials_id').execute();
    await db.schema.createIndex('phone_numbers_agent').on('phone_numbers').column('incoming_calls_agent_id').execute();
    // docs/api.md, Links: one inbound agent per normalized number in the whole system.
    await db.schema
      .createIndex('phone_numbers_inbound_unique')
      .on('phone_numbers')
      .column('phone_number')
      .unique()
      .where(sql.ref('incoming_calls_agent_id'), 'is not', null)
      .execute();

    if (dialect === 'postgres') {
      await db.schema
        .alterTable('agents')
        .addForeignKeyConstraint('agents_outbound_phone_number_fk', ['outbound_phone_number_id'], 'phone_numbers', ['id'])
        .execute();
    }
  },

  /**
   * PostgreSQL only: every committed change to numbers, agents and credentials is announced on
   * the channel `dialplane_changes.<schema>` (see postgres-changes.ts), atomically with its
   * commit. The schema in the name keeps deployments that share one database apart.
   * Registration-status columns are left out: they change often and route nothing.
   */
  async '0002_change_notifications'(db, dialect) {
    if (dialect !== 'postgres') return;
    await sql`
      create function dialplane_notify_change() returns trigger language plpgsql as $$
      declare
        row_data record;
      begin
        if TG_OP = 'DELETE' then row_data := OLD; else row_data := NEW; end if;
        perform pg_notify('dialplane_changes.' || TG_TABLE_SCHEMA,
          json_build_object('kind', TG_ARGV[0], 'orgId', row_data.org_id, 'id', row_data.id)::text);
        return null;
      end $$`.execute(db);
    const triggers: [table: string, kind: string, columns: string][] = [
      ['phone_numbers', 'number', 'phone_number, credentials_id, display_name, description, registration, incoming_calls_agent_id'],
      ['agents', 'agent', 'name, description, is_enabled, config, additional_data, sip_uri, outbound_phone_number_id'],
      [
        'sip_credentials',
        'credentials',
        'server, transport, domain, auth_user, auth_password_enc, cps_limit, cps_key, allowed_addresses, source, provider_id',
      ],
    ];
    for (const [table, kind, columns] of triggers) {
      await sql
        .raw(
          `create trigger ${table}_notify after insert or delete or update of ${columns} on ${table} ` +
            `for each row execute function dialplane_notify_change('${kind}')`,
        )
        .execute(db);
    }
  },

  async '0003_call_records'(db) {
    await db.schema
      .createTable('call_records')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('org_id', 'text')
      .addColumn('direction', 'text', (c) => c.notNull())
      .addColumn('started_time', 'text', (c) => c.notNull())
      .addColumn('ended_time', 'text', (c) => c.notNull())
      .addColumn('phone_number_id', 'text')
      .addColumn('phone_number', 'text', (c) => c.notNull())
      .addColumn('remote_party', 'text', (c) => c.notNull())
      .addColumn('agent_id', 'text')
      .addColumn('outcome', 'text', (c) => c.notNull())
      .addColumn('status_code', 'integer', (c) => c.notNull())
      .addColumn('call_id', 'text', (c) => c.notNull())
      .addColumn('source_address', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('call_records_org_started').on('call_records').columns(['org_id', 'started_time', 'id']).execute();
  },

  /**
   * Which instance keeps which registration (docs/registration.md): one row per registration key (transport,
   * registrar, AOR), claimed with a conditional write and renewed while the owner lives.
   */
  async '0004_registration_leases'(db) {
    await db.schema
      .createTable('registration_leases')
      .addColumn('key', 'text', (c) => c.primaryKey())
      .addColumn('owner', 'text', (c) => c.notNull())
      .addColumn('lease_until', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('registration_leases_owner').on('registration_leases').column('owner').execute();
  },

  /**
   * Outbound cps budgets (docs/outbound.md, cps limits, src/outbound/cps-limiter.ts): one row per
   * budget and one-second window, counted up with an atomic upsert, so the limit holds across
   * instances sharing the database.
   */
  async '0005_cps_counters'(db) {
    await db.schema
      .createTable('cps_counters')
      .addColumn('key', 'text', (c) => c.notNull())
      .addColumn('window_start', 'bigint', (c) => c.notNull())
      .addColumn('count', 'integer', (c) => c.notNull())
      .addPrimaryKeyConstraint('cps_counters_pk', ['key', 'window_start'])
      .execute();
    await db.schema.createIndex('cps_counters_window').on('cps_counters').column('window_start').execute();
  },

  /** Call records are deleted by age (src/calls/retention.ts), across organizations. */
  async '0006_call_records_started'(db) {
    await db.schema.createIndex('call_records_started').on('call_records').column('started_time').execute();
  },

  /** Small values the server keeps about itself, such as the check value of the secret key. */
  async '0007_settings'(db) {
    await db.schema
      .createTable('settings')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('value', 'text', (c) => c.notNull())
      .execute();
  },

  /**
   * Trunk health (docs/sip-edge.md, "Trunk health"): credentials opt in to OPTIONS probes, and
   * the last probe round's result is kept per credentials. On PostgreSQL the opt-in is a change
   * every instance must hear of (its prober starts or stops), so the notify trigger covers it.
   */
  async '0008_trunk_health'(db, dialect) {
    await db.schema
      .alterTable('sip_credentials')
      .addColumn('health_check', 'integer', (c) => c.notNull().defaultTo(0))
      .execute();
    await db.schema
      .createTable('trunk_health')
      .addColumn('credentials_id', 'text', (c) => c.primaryKey())
      .addColumn('health', 'text', (c) => c.notNull())
      .execute();
    if (dialect !== 'postgres') return;
    await sql`drop trigger sip_credentials_notify on sip_credentials`.execute(db);
    await sql`
      create trigger sip_credentials_notify after insert or delete or update of
        server, transport, domain, auth_user, auth_password_enc, cps_limit, cps_key, allowed_addresses, source, provider_id, health_check
      on sip_credentials for each row execute function dialplane_notify_change('credentials')`.execute(db);
  },

  /**
   * Events and webhooks (docs/events.md): the event log (`seq` orders it; the live stream and
   * resumes read it), the organizations' webhook endpoints, and the outbox of deliveries, one
   * row per endpoint and event, written in the transaction of the change that caused the event.
   */
  async '0009_events'(db, dialect) {
    await db.schema
      .createTable('events')
      .addColumn('seq', dialect === 'postgres' ? 'bigserial' : 'integer', (c) => c.primaryKey())
      .addColumn('id', 'text', (c) => c.notNull().unique())
      .addColumn('org_id', 'text', (c) => c.notNull())
      .addColumn('type', 'text', (c) => c.notNull())
      .addColumn('resource', 'text', (c) => c.notNull())
      .addColumn('time', 'text', (c) => c.notNull())
      .addColumn('payload', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('events_org_seq').on('events').columns(['org_id', 'seq']).execute();
    await db.schema.createIndex('events_time').on('events').column('time').execute();

    await db.schema
      .createTable('webhook_endpoints')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id'))
      .addColumn('url', 'text', (c) => c.notNull())
      .addColumn('event_types', 'text', (c) => c.notNull())
      .addColumn('enabled', 'integer', (c) => c.notNull())
      .addColumn('description', 'text')
      .addColumn('secret_enc', 'text', (c) => c.notNull())
      .addColumn('previous_secret_enc', 'text')
      .addColumn('previous_secret_until', 'text')
      .addColumn('failing_since', 'text')
      .addColumn('disabled_reason', 'text')
      .addColumn('created_time', 'text', (c) => c.notNull())
      .addColumn('last_update_time', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('webhook_endpoints_org').on('webhook_endpoints').columns(['org_id', 'created_time']).execute();

    await db.schema
      .createTable('webhook_deliveries')
      .addColumn('endpoint_id', 'text', (c) => c.notNull())
      .addColumn('event_seq', 'bigint', (c) => c.notNull())
      .addColumn('org_id', 'text', (c) => c.notNull())
      .addColumn('event_id', 'text', (c) => c.notNull())
      .addColumn('event_type', 'text', (c) => c.notNull())
      .addColumn('resource', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull())
      .addColumn('ready', 'integer', (c) => c.notNull())
      .addColumn('next_attempt_time', 'text', (c) => c.notNull())
      .addColumn('claimed_until', 'text')
      .addColumn('retry_start_time', 'text', (c) => c.notNull())
      .addColumn('created_time', 'text', (c) => c.notNull())
      .addColumn('finished_time', 'text')
      .addPrimaryKeyConstraint('webhook_deliveries_pk', ['endpoint_id', 'event_seq'])
      .execute();
    await db.schema.createIndex('webhook_deliveries_due').on('webhook_deliveries').columns(['ready', 'status', 'next_attempt_time']).execute();
    await db.schema
      .createIndex('webhook_deliveries_resource')
      .on('webhook_deliveries')
      .columns(['endpoint_id', 'resource', 'status', 'event_seq'])
      .execute();

    await db.schema
      .createTable('webhook_attempts')
      .addColumn('endpoint_id', 'text', (c) => c.notNull())
      .addColumn('event_seq', 'bigint', (c) => c.notNull())
      .addColumn('attempt', 'integer', (c) => c.notNull())
      .addColumn('time', 'text', (c) => c.notNull())
      .addColumn('response_status', 'integer')
      .addColumn('duration_ms', 'integer', (c) => c.notNull())
      .addColumn('error', 'text')
      .addPrimaryKeyConstraint('webhook_attempts_pk', ['endpoint_id', 'event_seq', 'attempt'])
      .execute();

    // A call's end finds its record (and its answer time) by Call-ID.
    await db.schema.createIndex('call_records_call_id').on('call_records').column('call_id').execute();
  },

  /**
   * Deliveries are made from the event log by the dispatchers, off the changes' transactions
   * (src/webhooks/fan-out.ts): this row is how far they have got. Events written before this
   * migration already have their deliveries.
   */
  async '0010_webhook_fanout'(db) {
    await db.schema
      .createTable('webhook_fanout')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('last_seq', 'bigint', (c) => c.notNull())
      .execute();
    await db
      .insertInto('webhook_fanout')
      .expression((eb) => eb.selectFrom('events').select((s) => [sql.lit(1).as('id'), s.fn.coalesce(s.fn.max('seq'), sql.lit(0)).as('last_seq')]))
      .execute();
  },

  /** A trunk's media settings (docs/media.md), and what a call's media did (its record's `media`). */
  async '0011_media'(db) {
    await db.schema
      .alterTable('sip_credentials')
      .addColumn('media_anchoring', 'text', (c) => c.notNull().defaultTo('auto'))
      .execute();
    await db.schema
      .alterTable('sip_credentials')
      .addColumn('media_encryption', 'text', (c) => c.notNull().defaultTo('none'))
      .execute();
    await db.schema.alterTable('call_records').addColumn('media', 'text').execute();
  },
};

function provider(dialect: Dialect): MigrationProvider {
  return {
    async getMigrations() {
      const result: Record<string, Migration> = {};
      for (const [name, up] of Object.entries(migrations)) {
        result[name] = { up: (db) => up(db, dialect) };
      }
      return result;
    },
  };
}

export class MigrationError extends Error {}

/** Applies pending migrations; safe to run from several instances at once (the migrator locks). */
export async function migrateToLatest(handle: DatabaseHandle): Promise<string[]> {
  // Kysely looks for its bookkeeping tables in every schema unless told which one: several
  // deployments (or test runs) sharing one PostgreSQL database must each use their own.
  const migrationTableSchema =
    handle.dialect === 'postgres' ? (await sql<{ schema: string }>`select current_schema() as schema`.execute(handle.db)).rows[0]?.schema : undefined;
  const migrator = new Migrator({ db: handle.db, provider: provider(handle.dialect), migrationTableSchema });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    throw new MigrationError(
      `migration ${failed?.migrationName ?? '(unknown)'} failed: ${error instanceof Error ? error.message : JSON.stringify(error)}`,
    );
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
