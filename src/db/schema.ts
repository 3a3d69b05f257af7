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
  /** auto or off (src/media/media-policy.ts). */
  media_anchoring: Generated<string>;
  /** The carrier leg's media encryption when anchored: none, sdes-srtp or dtls-srtp. */
  media_encryption: Generated<string>;
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
  /** The API's `media` object as JSON (src/media/); null when the call's media was not anchored. */
  media: Generated<string | null>;
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

/** The event log (src/events/): what happened, in commit order per instance, kept for the retention window. */
export interface EventsTable {
  /** Ascending; PostgreSQL's bigint arrives as text. */
  seq: Generated<number | string>;
  id: string;
  org_id: string;
  type: string;
  /** `phone_number:<id>`, `agent:<id>`…: events of one resource are delivered in order. */
  resource: string;
  time: string;
  /** The event as delivered: JSON text. */
  payload: string;
}

export interface WebhookEndpointsTable {
  id: string;
  org_id: string;
  url: string;
  /** `*`, or the types separated and surrounded by commas (`,call.ended,agent.created,`). */
  event_types: string;
  enabled: number;
  description: string | null;
  secret_enc: string;
  /** The secret before the last rotation, valid (signing too) until previous_secret_until. */
  previous_secret_enc: string | null;
  previous_secret_until: string | null;
  /** Since when every attempt has failed; null after a success. */
  failing_since: string | null;
  /** Why the server disabled the endpoint; null when a person did or it is enabled. */
  disabled_reason: string | null;
  created_time: string;
  last_update_time: string;
}

/** One row per endpoint and event, made from the event log (src/webhooks/fan-out.ts), sent by src/webhooks/dispatcher.ts. */
export interface WebhookDeliveriesTable {
  endpoint_id: string;
  event_seq: number | string;
  org_id: string;
  event_id: string;
  event_type: string;
  resource: string;
  /** pending, delivered or failed. */
  status: string;
  attempts: number;
  /** 1 when no earlier event of the same resource is pending for the endpoint: it may be sent. */
  ready: number;
  next_attempt_time: string;
  /** While an instance is sending it: until when its claim holds. */
  claimed_until: string | null;
  /** Retries end DIALPLANE_WEBHOOK_RETRY_HOURS after this: the event's time, or a re-send's. */
  retry_start_time: string;
  created_time: string;
  finished_time: string | null;
}

/** One row: the last event whose deliveries have been made (src/webhooks/fan-out.ts). */
export interface WebhookFanoutTable {
  id: number;
  last_seq: number | string;
}

export interface WebhookAttemptsTable {
  endpoint_id: string;
  event_seq: number | string;
  attempt: number;
  time: string;
  response_status: number | null;
  duration_ms: number;
  error: string | null;
}

export interface Database {
  events: EventsTable;
  webhook_endpoints: WebhookEndpointsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  webhook_fanout: WebhookFanoutTable;
  webhook_attempts: WebhookAttemptsTable;
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
