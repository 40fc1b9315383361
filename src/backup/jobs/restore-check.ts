// The engine's own check of a restored file, before it replaces anything: a backup that decodes
// but is not a whole database (or dump) stops here.
import Database from 'better-sqlite3';
import type { BackupJob } from './config.js';
import { duckdbIntegrityCheck } from './duckdb.js';
import { listPostgresDump } from './postgres.js';
import { BackupRestoreError } from './restore-error.js';

export async function checkRestored(job: BackupJob, file: string): Promise<string> {
  switch (job.source.kind) {
    case 'sqlite':
      return sqliteIntegrity(file);
    case 'postgres': {
      const entries = await listPostgresDump(file).catch((e: Error) => {
        throw new BackupRestoreError('CheckFailed', `the restored file is not a readable pg_dump archive: ${e.message}`);
      });
      return `pg_restore --list ok (${entries} entries)`;
    }
    case 'dir':
      return 'tar'; // read in full, and refused entry by entry if unsafe, when it is extracted
    case 'duckdb': {
      const check = await duckdbIntegrityCheck(file);
      if (!check.ok) throw new BackupRestoreError('CheckFailed', `the restored database fails the check: ${check.detail}`);
      return `duckdb: every value read, ${check.detail.split(':')[0]}`;
    }
    default:
      return 'none (a plain file)';
  }
}

/**
 * PRAGMA integrity_check on a read-write connection that writes nothing (query_only): a
 * read-only connection to a WAL-mode database (what the online backup of a WAL database is)
 * leaves its -wal and -shm files behind, since only a writer may remove them, and they would be
 * renamed away from the restored file.
 */
function sqliteIntegrity(file: string): string {
  const db = new Database(file, { fileMustExist: true });
  try {
    db.pragma('query_only = ON');
    const rows = db.pragma('integrity_check') as Array<{ integrity_check: string }>;
    const result = rows.map((r) => r.integrity_check).join('; ');
    if (result !== 'ok') throw new BackupRestoreError('CheckFailed', `the restored database fails SQLite's integrity check: ${result.slice(0, 300)}`);
    return 'sqlite integrity_check ok';
  } finally {
    db.close();
  }
}
