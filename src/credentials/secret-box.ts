import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Kysely } from 'kysely';
import { ConfigError } from '../common/errors.ts';
import type { Config } from '../config.ts';
import type { Database } from '../db/schema.ts';

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * AES-256-GCM for SIP passwords at rest. The record id is bound in as associated data, so a
 * ciphertext copied onto another row does not decrypt.
 */
export class SecretBox {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    this.#key = key;
    if (key.length !== 32) throw new Error('the secret key must be 32 bytes');
  }

  seal(plaintext: string, recordId: string): string {
    const iv = crypto.randomBytes(IV_BYTES);
    const cipher = crypto.createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(Buffer.from(recordId));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return `${VERSION}:${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64')}`;
  }

  open(sealed: string, recordId: string): string {
    const [version, payload] = sealed.split(':', 2);
    if (version !== VERSION || payload === undefined) throw new Error('unknown sealed secret format');
    const raw = Buffer.from(payload, 'base64');
    const decipher = crypto.createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(recordId));
    decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
  }
}

export interface SecretKey {
  key: Buffer;
  /** Where it came from, as an operator would look for it: the variable, or the key file. */
  source: string;
}

/**
 * The configured key, or (SQLite only) the key kept beside the database file, created with
 * owner-only permissions on first use (the database's folder exists by then).
 */
export function resolveSecretKey(config: Config): SecretKey {
  if (config.secretKey) return { key: config.secretKey, source: 'DIALPLANE_SECRET_KEY' };
  if (config.database.kind !== 'sqlite') throw new ConfigError('DIALPLANE_SECRET_KEY is required with PostgreSQL');
  const file = path.join(path.dirname(config.database.file), 'secret.key');
  const source = `the key file ${file} (DIALPLANE_SECRET_KEY unset)`;
  try {
    const hex = fs.readFileSync(file, 'utf8').trim();
    if (!/^[0-9a-f]{64}$/i.test(hex)) throw new ConfigError(`${file} does not hold 64 hex characters; restore it, or set DIALPLANE_SECRET_KEY`);
    return { key: Buffer.from(hex, 'hex'), source };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const key = crypto.randomBytes(32);
  try {
    fs.writeFileSync(file, `${key.toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
    return { key, source };
  } catch (error) {
    // Another process created it first: use theirs.
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return resolveSecretKey(config);
    throw error;
  }
}

const KEY_CHECK = 'secret_key_check';

/**
 * Refuses, at start, a secret key that cannot open what this database holds sealed (a key
 * replaced or mistyped would otherwise show only as failed outbound calls and registrations).
 * A small value sealed with the key is kept in `settings`; a database from before it was kept
 * is checked against a stored password, if it has one.
 */
export async function checkSecretKey(db: Kysely<Database>, secret: SecretKey): Promise<void> {
  const box = new SecretBox(secret.key);
  const opens = (sealed: string, recordId: string) => {
    try {
      box.open(sealed, recordId);
      return true;
    } catch {
      return false;
    }
  };
  const refuse = () =>
    new ConfigError(`${secret.source} is not the key this database's SIP passwords were sealed with; use the key it was set up with`);
  let check = await db.selectFrom('settings').select('value').where('name', '=', KEY_CHECK).executeTakeFirst();
  if (check === undefined) {
    const sealed = await db
      .selectFrom('sip_credentials')
      .select(['id', 'auth_password_enc'])
      .where('auth_password_enc', 'is not', null)
      .limit(1)
      .executeTakeFirst();
    if (sealed && !opens(sealed.auth_password_enc!, sealed.id)) throw refuse();
    await db
      .insertInto('settings')
      .values({ name: KEY_CHECK, value: box.seal(KEY_CHECK, KEY_CHECK) })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
    // Another instance may have written its own first: the one kept is the one to agree with.
    check = await db.selectFrom('settings').select('value').where('name', '=', KEY_CHECK).executeTakeFirstOrThrow();
  }
  if (!opens(check.value, KEY_CHECK)) throw refuse();
}
