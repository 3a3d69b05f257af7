import type { Generated } from 'kysely';

/**
 * Table shapes shared by both dialects. Booleans are stored as 0/1 integers and timestamps as
 * ISO 8601 text (UTC, millisecond precision, so text order is time order) in SQLite and
 * PostgreSQL alike: one set of queries then runs unchanged on both.
 */
export interface OrgsTable {
  id: string;
  name: string;
  created_time: string;
}

export interface ApiKeysTable {
  id: string;
  org_id: string;
  prefix: string;
  key_hash: string;
  created_time: string;
  revoked_time: string | null;
}

export interface SipCredentialsTable {
  id: string;
  org_id: string;
  server: string;
  transport: string;
  domain: string | null;
  auth_user: string | null;
  auth_password_enc: string | null;
  description: string | null;
  cps_limit: number | null;
  cps_key: string | null;
  allowed_addresses: string;
  source: string;
  provider_id: string | null;
  /** 1: probed with OPTIONS (src/health/). */
  health_check: Generated<number>;
  created_time: string;
  last_update_time: string;
}

/** The last OPTIONS probe round of credentials with health_check (src/health/health-store.ts). */
export interface TrunkHealthTable {
  credentials_id: string;
  /** The API's `health` object as JSON. */
  health: string;
}

export interface AgentsTable {
  id: string;
  org_id: string;
  name: string;
  description: string | null;
  is_enabled: number;
  config: string;
  additional_data: string;
  sip_uri: string | null;
  outbound_phone_number_id: string | null;
  created_time: string;
  last_update_time: string;
}

export interface PhoneNumbersTable {
  id: string;
  org_id: string;
  phone_number: string;
  credentials_id: string;
  display_name: string | null;
  description: string | null;
  registration: number;
  incoming_calls_agent_id: string | null;
  reg_state: string;
  reg_error_description: string | null;
  reg_sip_response_message: string | null;
  reg_last_updated: string;
  reg_expires_at: string | null;
  created_time: string;
  last_update_time: string;
}

export interface CallRecordsTable {
  id: string;
  /** Null when the number was not found: nobody's call, never listed. */
  org_id: string | null;
  direction: string;
  started_time: string;
  ended_time: string;
  phone_number_id: string | null;
  phone_number: string;
  remote_party: string;
  agent_id: string | null;
  outcome: string;
  status_code: number;
  call_id: string;
  source_address: string;
}

/** One row per registration (src/registration/leases.ts): the instance that keeps it, and until when. */
export interface RegistrationLeasesTable {
  /** transport, registrar address and AOR (src/registration/target.ts). */
  key: string;
  /** The instance id of the owner. */
  owner: string;
  /** ISO 8601 UTC; past this, any instance may claim the row. */
  lease_until: string;
}

/** Outbound calls counted per cps budget and one-second window (src/outbound/cps-limiter.ts). */
export interface CpsCountersTable {
  /** `cred:<credentialsId>`, or `key:<orgId>:<cpsKey>` when credentials share a budget. */
  key: string;
  /** Unix time in whole seconds: the window's start. */
  window_start: number;
  count: number;
}

/** Values the server keeps about itself (src/credentials/secret-box.ts: the key's check value). */
export interface SettingsTable {
  name: string;
  value: string;
}

export interface Database {
  settings: SettingsTable;
  cps_counters: CpsCountersTable;
  call_records: CallRecordsTable;
  registration_leases: RegistrationLeasesTable;
  orgs: OrgsTable;
  api_keys: ApiKeysTable;
  sip_credentials: SipCredentialsTable;
  trunk_health: TrunkHealthTable;
  agents: AgentsTable;
  phone_numbers: PhoneNumbersTable;
}
