import { conflict } from '../common/errors.ts';

/**
 * Recognizes a unique-constraint violation from either driver and names the constraint, so the
 * rules can turn the database's verdict into the right 409 instead of checking first.
 */
const sqliteColumnsToConstraint: Record<string, string> = {
  'phone_numbers.phone_number': 'phone_numbers_inbound_unique',
  'phone_numbers.org_id, phone_numbers.phone_number, phone_numbers.credentials_id': 'phone_numbers_org_number_credentials_unique',
  'orgs.name': 'orgs_name_key',
};

export function uniqueViolation(error: unknown): string | null {
  if (typeof error !== 'object' || error === null) return null;
  const e = error as { code?: unknown; constraint?: unknown; message?: unknown };
  if (e.code === '23505') return typeof e.constraint === 'string' ? e.constraint : 'unknown';
  if (e.code === 'SQLITE_CONSTRAINT_UNIQUE' || e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    const match = /UNIQUE constraint failed: (.+)$/.exec(String(e.message));
    const columns = match?.[1]?.trim() ?? '';
    return sqliteColumnsToConstraint[columns] ?? columns;
  }
  return null;
}

export function foreignKeyViolation(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const code = (error as { code?: unknown }).code;
  return code === '23503' || code === 'SQLITE_CONSTRAINT_FOREIGNKEY';
}

/**
 * Runs a delete again when the database refused it because a concurrent request had just made
 * something refer to what it deletes (a link, a number): the next run sees that reference and
 * answers 409, or with force removes it too.
 */
export async function retryOnNewReference(work: () => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (!foreignKeyViolation(error)) throw error;
      if (attempt === 3) throw conflict('It kept changing while being deleted; try again');
    }
  }
}
