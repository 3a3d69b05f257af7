import type { Selectable } from 'kysely';
import type { PhoneNumbersTable } from '../db/schema.ts';

/** A number row with its credentials' provider, which a number inherits. */
export type NumberRow = Selectable<PhoneNumbersTable> & { provider_id: string | null };
