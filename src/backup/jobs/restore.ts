/**
 * Restore one backup of a job: from the local copy when there is one and its SHA-256 still
 * matches, otherwise downloaded from the bucket first (into the job's local directory, checked
 * against the SHA-256 stored with the object). Then decrypted and decompressed into a temporary
 * file beside the target, checked (SQLite: PRAGMA integrity_check), and renamed into place. An
 * existing target is replaced only with `force`.
 */
import Database from 'better-sqlite3';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { decryptStream, gunzipStream, hashingStream, unpackTar } from '../../codec/index.js';
import type { Storage } from '../../storage/index.js';
import type { BackupJob } from './config.js';
import { duckdbIntegrityCheck } from './duckdb.js';
import { describePostgresTarget, listPostgresDump, restorePostgres } from './postgres.js';
import { SHA256_METADATA, TEMP_PREFIX } from './run.js';

export class BackupRestoreError extends Error {
  override name = 'BackupRestoreError';
  constructor(
    readonly code: 'NotFound' | 'Corrupted' | 'TargetExists' | 'NeedsIdentity' | 'CheckFailed' | 'InvalidTarget',
    message: string,
  ) {
    super(message);
  }
}

export interface BackupRestoreOptions {
  /** Where the restored file goes (for a PostgreSQL job: the dump file). Give this or `into`. */
  to?: string;
  /**
   * PostgreSQL jobs: the database to restore into (a URL; '' for the PG* variables). It is
   * created when missing; an existing one is restored over only with `force` (pg_restore --clean).
   */
  into?: string;
  storage?: Storage;
  force?: boolean;
  /** age identities, for backups encrypted to recipients. */
  identities?: string[];
  signal?: AbortSignal;
}

export interface BackupRestoreResult {
  name: string;
  /** The file written, or the database restored into (password hidden). */
  to: string;
  /** Where the backup was read from. */
  from: 'local' | 's3';
  sha256: string;
  bytes: number;
  check: string;
}

export async function restoreBackup(job: BackupJob, name: string, opts: BackupRestoreOptions): Promise<BackupRestoreResult> {
  if (name.includes('/') || name.startsWith('.')) throw new BackupRestoreError('NotFound', `"${name}" is not a backup name; "offsite backups ${job.name}" lists them`);
  if ((opts.to === undefined) === (opts.into === undefined)) throw new BackupRestoreError('InvalidTarget', 'give either a file to restore to (--to PATH) or, for a PostgreSQL job, a database to restore into (--into URL)');
  if (opts.into !== undefined && job.source.kind !== 'postgres') {
    throw new BackupRestoreError('InvalidTarget', `--into restores into a PostgreSQL database, and job ${job.name} backs up a ${job.source.kind} source; use --to PATH`);
  }
  // Restoring into a database: the decoded dump goes to a temp file in the job's directory first.
  const target = opts.to !== undefined ? path.resolve(opts.to) : path.join(job.localDir, `${TEMP_PREFIX}restore-${name}`);
  if (opts.to !== undefined && !opts.force && (await stat(target).catch(() => undefined))) {
    throw new BackupRestoreError('TargetExists', `${target} exists; restore elsewhere, or pass --force to replace it`);
  }
  if (name.endsWith('.age') && !opts.identities?.length) {
    throw new BackupRestoreError('NeedsIdentity', `${name} is encrypted: give the age identity file (--identity FILE)`);
  }
  await mkdir(job.localDir, { recursive: true });
  const localPath = path.join(job.localDir, name);
  let source: string;
  let from: 'local' | 's3';
  let sha256: string;
  let downloaded: string | undefined;
  const localSha = await readFile(`${localPath}.sha256`, 'utf8').then((t) => t.split(/\s/)[0], () => undefined);
  if (localSha && (await sha256OfFile(localPath)) === localSha) {
    source = localPath;
    from = 'local';
    sha256 = localSha;
  } else {
    if (!opts.storage) throw new BackupRestoreError('NotFound', `no intact local copy of ${name} in ${job.localDir}, and job ${job.name} has no bucket to fetch it from`);
    const got = await opts.storage.get(name, opts.signal ? { signal: opts.signal } : {}).catch((e: { code?: string; message: string }) => {
      if (e.code === 'NotFound') throw new BackupRestoreError('NotFound', `no backup ${name} locally or in ${opts.storage!.url}; "offsite backups ${job.name}" lists them`);
      throw e;
    });
    const expected = got.info.metadata[SHA256_METADATA];
    downloaded = path.join(job.localDir, `${TEMP_PREFIX}download-${name}`);
    const hash = hashingStream({ md5: false });
    await pipeline([got.body, hash, createWriteStream(downloaded)], opts.signal ? { signal: opts.signal } : {});
    sha256 = hash.digest().sha256;
    if (expected && expected !== sha256) {
      await rm(downloaded, { force: true });
      throw new BackupRestoreError('Corrupted', `the stored ${name} does not match its SHA-256 (${sha256} instead of ${expected}); restore another backup`);
    }
    source = downloaded;
    from = 's3';
  }
  const temp = path.join(path.dirname(target), `.offsite-restore-${process.pid}-${path.basename(target)}`);
  try {
    const stages: NodeJS.ReadWriteStream[] = [];
    if (name.endsWith('.age')) stages.push(decryptStream({ identities: opts.identities! }));
    if (/\.gz(\.age)?$/.test(name)) stages.push(gunzipStream());
    await pipeline([createReadStream(source), ...stages, createWriteStream(temp)], opts.signal ? { signal: opts.signal } : {});
    const check = await checkRestored(job, temp);
    const bytes = (await stat(temp)).size;
    if (job.source.kind === 'dir') {
      // A directory backup is extracted (safely: nothing outside `target`) rather than renamed.
      const report = await unpackTar(createReadStream(temp), target, opts.signal ? { signal: opts.signal } : {});
      return { name, to: target, from, sha256, bytes, check: `${check}: ${report.files} files extracted` };
    }
    if (opts.into !== undefined) {
      const database = opts.into ? { url: opts.into } : {};
      await restorePostgres(database, temp, { createDatabase: true, clean: opts.force ?? false, ...(opts.signal ? { signal: opts.signal } : {}) });
      return { name, to: describePostgresTarget(database), from, sha256, bytes, check: `${check}; pg_restore ok` };
    }
    // DuckDB would replay a WAL left beside the file it replaces into the restored database.
    if (job.source.kind === 'duckdb') await rm(`${target}.wal`, { force: true });
    await rename(temp, target);
    return { name, to: target, from, sha256, bytes, check };
  } finally {
    await rm(temp, { force: true });
    if (downloaded) await rm(downloaded, { force: true });
  }
}

async function checkRestored(job: BackupJob, file: string): Promise<string> {
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

function sqliteIntegrity(file: string): string {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const rows = db.pragma('integrity_check') as Array<{ integrity_check: string }>;
    const result = rows.map((r) => r.integrity_check).join('; ');
    if (result !== 'ok') throw new BackupRestoreError('CheckFailed', `the restored database fails SQLite's integrity check: ${result.slice(0, 300)}`);
    return 'sqlite integrity_check ok';
  } finally {
    db.close();
  }
}

async function sha256OfFile(file: string): Promise<string | undefined> {
  try {
    const hash = hashingStream({ md5: false });
    hash.resume(); // only the digest is wanted: let the bytes flow through and away
    await pipeline(createReadStream(file), hash);
    return hash.digest().sha256;
  } catch {
    return undefined;
  }
}
