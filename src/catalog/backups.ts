// Backups made by backup jobs: the facts restore checks a copy against. One row per (job, name):
// a job whose key_template gives a fixed name replaces its row with every run, as it replaces
// the file and the object.
import type { Database } from 'better-sqlite3';
import { checkCount, checkDestination, checkSha256, nowIso } from './checks.js';
import { CatalogError } from './errors.js';
import type { BackupRecord, Catalog, Compression } from './types.js';

const BACKUP_COLUMNS = `id, job, name, destination, size, sha256, encrypted, compression, created_at AS createdAt, uploaded_at AS uploadedAt`;

type StoredBackupRow = Omit<BackupRecord, 'encrypted'> & { encrypted: number };

function fromRow(row: StoredBackupRow | undefined): BackupRecord | undefined {
  return row && { ...row, encrypted: row.encrypted === 1, compression: row.compression as Compression };
}

export function backupMethods(db: Database): Pick<Catalog, 'recordBackup' | 'markBackupUploaded' | 'getBackup' | 'forgetBackup'> {
  // A new local copy under a name already recorded is another file: what was known of the old
  // one (its upload) no longer holds.
  const upsert = db.prepare<[Record<string, unknown>], StoredBackupRow>(`
    INSERT INTO backups (job, name, destination, size, sha256, encrypted, compression, created_at, uploaded_at)
    VALUES (@job, @name, NULL, @size, @sha256, @encrypted, @compression, @now, NULL)
    ON CONFLICT (job, name) DO UPDATE SET
      destination = NULL, size = excluded.size, sha256 = excluded.sha256, encrypted = excluded.encrypted,
      compression = excluded.compression, created_at = excluded.created_at, uploaded_at = NULL
    RETURNING ${BACKUP_COLUMNS}`);
  const uploaded = db.prepare<[string, string, string, string]>(`UPDATE backups SET destination = ?, uploaded_at = ? WHERE job = ? AND name = ?`);
  const get = db.prepare<[string, string], StoredBackupRow>(`SELECT ${BACKUP_COLUMNS} FROM backups WHERE job = ? AND name = ?`);
  const forget = db.prepare<[string, string]>(`DELETE FROM backups WHERE job = ? AND name = ?`);

  return {
    recordBackup(input) {
      checkSha256(input.sha256);
      checkCount('size', input.size);
      if (input.compression !== 'none' && input.compression !== 'gzip') throw new CatalogError('InvalidInput', `compression must be none or gzip, got "${String(input.compression)}"`);
      return fromRow(upsert.get({ ...input, encrypted: input.encrypted ? 1 : 0, now: nowIso() }))!;
    },
    markBackupUploaded(job, name, destination) {
      checkDestination(destination);
      if (uploaded.run(destination, nowIso(), job, name).changes === 0) throw new CatalogError('NotFound', `no backup ${name} of job ${job} in the catalog`);
    },
    getBackup(job, name) {
      return fromRow(get.get(job, name));
    },
    forgetBackup(job, name) {
      forget.run(job, name);
    },
  };
}
