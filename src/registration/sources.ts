/** What registration reads of the database: the numbers with `registration: true` and their credentials' columns. */
import type { Kysely } from 'kysely';
import { preparedQuery } from '../db/prepared.ts';
import type { Database } from '../db/schema.ts';
import type { RegistrationSource } from './target.ts';

const SOURCE_COLUMNS = [
  'n.id as numberId',
  'n.org_id as orgId',
  'n.phone_number as phoneNumber',
  'n.credentials_id as credentialsId',
  'c.server as server',
  'c.transport as transport',
  'c.domain as domain',
  'c.auth_user as authUser',
  'c.auth_password_enc as authPasswordEnc',
] as const;

function selectSources(db: Kysely<Database>) {
  return db
    .selectFrom('phone_numbers as n')
    .innerJoin('sip_credentials as c', 'c.id', 'n.credentials_id')
    .select(SOURCE_COLUMNS)
    .where('n.registration', '=', 1);
}

// A number that changes is re-read here on its own, which happens often: the query is prepared.
const sourceOfNumber = preparedQuery((db, v: { numberId: string }) => selectSources(db).where('n.id', '=', v.numberId));

export type SourceFilter = { numberId: string } | { credentialsId: string } | 'all';

/** The sources of one number, of one credentials' numbers, or of all. */
export function readSources(db: Kysely<Database>, filter: SourceFilter): Promise<RegistrationSource[]> {
  if (filter === 'all') return selectSources(db).execute();
  if ('numberId' in filter) return sourceOfNumber.rows(db, filter);
  return selectSources(db).where('n.credentials_id', '=', filter.credentialsId).execute();
}

/** Whether two sources register alike (a change elsewhere in the row does not concern registration). */
export function sameSource(a: RegistrationSource, b: RegistrationSource): boolean {
  return (
    a.phoneNumber === b.phoneNumber &&
    a.credentialsId === b.credentialsId &&
    a.server === b.server &&
    a.transport === b.transport &&
    a.domain === b.domain &&
    a.authUser === b.authUser &&
    a.authPasswordEnc === b.authPasswordEnc
  );
}
