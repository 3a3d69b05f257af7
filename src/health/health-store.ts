/** The last probe round of each trunk with health checks, kept where every instance's API reads it. */
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { TrunkHealth } from './schemas.ts';

export async function writeTrunkHealth(db: Kysely<Database>, credentialsId: string, health: TrunkHealth): Promise<void> {
  const json = JSON.stringify(health);
  await db
    .insertInto('trunk_health')
    .values({ credentials_id: credentialsId, health: json })
    .onConflict((oc) => oc.column('credentials_id').doUpdateSet({ health: json }))
    .execute();
}

export async function deleteTrunkHealth(db: Kysely<Database>, credentialsId: string): Promise<void> {
  await db.deleteFrom('trunk_health').where('credentials_id', '=', credentialsId).execute();
}

/** The stored health of these credentials; those never probed are absent. */
export async function readTrunkHealth(db: Kysely<Database>, credentialsIds: readonly string[]): Promise<Map<string, TrunkHealth>> {
  if (credentialsIds.length === 0) return new Map();
  const rows = await db.selectFrom('trunk_health').selectAll().where('credentials_id', 'in', credentialsIds).execute();
  return new Map(rows.map((row) => [row.credentials_id, JSON.parse(row.health) as TrunkHealth]));
}
