/**
 * Deleting one backup of a job: its local copy (with the `.sha256` file beside it), its object
 * in the bucket, or both. A backup gone from both sides is forgotten by the catalog too (as
 * prune does); one still kept on a side keeps its record, so a later restore is still verified.
 */
import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Catalog } from '../../catalog/index.js';
import { objectExists, type Storage } from '../../storage/index.js';
import type { BackupJob } from './config.js';
import { backupNamePattern } from './list.js';
import { BackupRestoreError } from './restore-error.js';

export type DeleteWhere = 'local' | 's3' | 'both';

export interface DeleteBackupOptions {
  where: DeleteWhere;
  /** The job's bucket; needed for where = s3 (and both, when the object exists). */
  storage?: Storage;
  catalog?: Catalog;
  signal?: AbortSignal;
}

export interface DeleteBackupResult {
  /** What was there and is gone now. */
  local: boolean;
  s3: boolean;
  /** What is left afterwards. */
  remaining: { local: boolean; s3: boolean };
}

/**
 * NotFound (a BackupRestoreError, as restore's) when the name is not one of the job's backups,
 * or it is on none of the sides asked for.
 */
export async function deleteBackup(job: BackupJob, name: string, opts: DeleteBackupOptions): Promise<DeleteBackupResult> {
  if (name.includes('/') || name.startsWith('.') || !backupNamePattern(job).test(name)) {
    throw new BackupRestoreError('NotFound', `"${name}" is not a backup name of job ${job.name}`);
  }
  const localPath = path.join(job.localDir, name);
  const hasLocal = (await stat(localPath).catch(() => undefined))?.isFile() === true;
  let hasObject = false;
  if (opts.storage) {
    try {
      hasObject = await objectExists(opts.storage, name, opts.signal ? { signal: opts.signal } : {});
    } catch (e) {
      // A local delete does not need the bucket: unreachable, the object is assumed still there.
      if (opts.where !== 'local') throw e;
      hasObject = true;
    }
  }
  const wantLocal = opts.where !== 's3';
  const wantObject = opts.where !== 'local';
  if (opts.where === 's3' && !opts.storage) {
    throw new BackupRestoreError('NotFound', `job ${job.name} has no bucket (no destination, and no S3 settings): nothing to delete from S3`);
  }
  const result: DeleteBackupResult = { local: false, s3: false, remaining: { local: hasLocal, s3: hasObject } };
  if ((!wantLocal || !hasLocal) && (!wantObject || !hasObject)) {
    throw new BackupRestoreError('NotFound', `no backup ${name} of job ${job.name} ${opts.where === 'both' ? 'locally or in the bucket' : opts.where === 'local' ? 'in the local directory' : 'in the bucket'}`);
  }
  if (wantLocal && hasLocal) {
    await rm(localPath, { force: true });
    await rm(`${localPath}.sha256`, { force: true });
    result.local = true;
    result.remaining.local = false;
  }
  if (wantObject && hasObject && opts.storage) {
    await opts.storage.delete(name, opts.signal ? { signal: opts.signal } : {});
    result.s3 = true;
    result.remaining.s3 = false;
  }
  if (!result.remaining.local && !result.remaining.s3) opts.catalog?.forgetBackup(job.name, name);
  return result;
}
