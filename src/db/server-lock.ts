import fs from 'node:fs';
import SQLite from 'better-sqlite3';
import { OperatorError } from '../common/errors.ts';

/**
 * One server per SQLite file: the server answers reads from memory and follows only its own
 * writes, so a second server on the same file would route calls from a stale picture. The lock
 * is an exclusive SQLite transaction on a file beside the database, held for the server's life:
 * an OS-level lock (fcntl) that the kernel drops when the process dies, however it dies. CLI
 * commands, which only write organizations and keys, never take it.
 */
export function lockForServer(databaseFile: string): () => void {
  const lockFile = `${databaseFile}-server.lock`;
  fs.closeSync(fs.openSync(lockFile, 'a', 0o600));
  const lock = new SQLite(lockFile, { timeout: 0 });
  try {
    lock.exec('BEGIN EXCLUSIVE');
  } catch {
    lock.close();
    throw new OperatorError(
      `another dialplane server is running on ${databaseFile} (it holds ${lockFile}); stop it, or give this one its own DIALPLANE_DB`,
      1,
    );
  }
  return () => {
    lock.exec('ROLLBACK');
    lock.close();
  };
}
