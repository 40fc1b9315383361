/**
 * Restore one backup of a job. What the backup must hold comes from somewhere an attacker who
 * can write the bucket cannot reach: the catalog's record of it (written when the backup was
 * made), else, for a restore from the bucket alone, the object's metadata only when the user's
 * manifest key authenticates it (record.ts). Without either, nothing is restored unless the
 * user asks for an unverified restore; a backup proven altered (SHA-256 or size mismatch, a
 * forged MAC, a job that encrypts whose object is not age-encrypted) is refused always.
 *
 * The local copy is used when it matches (hashed while it is decoded: one read); a missing or
 * damaged one is downloaded from the bucket, checked, and kept as the local copy (unless the
 * job has keep_local = false), so the backup is listed as `both` afterwards. Then decrypted and
 * decompressed into a private temporary file (0600) beside the target, checked (SQLite: PRAGMA
 * integrity_check; DuckDB: every value read; pg_dump: pg_restore --list), and renamed into place.
 * An existing target is replaced only with `force`.
 */
import { createReadStream } from 'node:fs';
import { open, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Catalog, Compression } from '../../catalog/index.js';
import { decryptStream, describeMacCheck, gunzipStream, hashFile, hashingStream, loadManifestKey, unpackTar, type ManifestKey } from '../../codec/index.js';
import { mkdirPrivate, renameDurable, writePrivateFile } from '../../files/index.js';
import type { GetResult, Storage } from '../../storage/index.js';
import type { BackupJob } from './config.js';
import { describePostgresTarget, restorePostgres } from './postgres.js';
import { checkRestored } from './restore-check.js';
import { BackupRestoreError } from './restore-error.js';
import { checkObjectFacts, factsOfRecord } from './record.js';
import { RESTORE_TEMP_PREFIX } from './run.js';
import { byteLimit, pipeToNewPrivateFile } from './write.js';

export { BackupRestoreError } from './restore-error.js';

export interface BackupRestoreOptions {
  /** Where the restored file goes (for a PostgreSQL job: the dump file). Give this or `into`. */
  to?: string;
  /**
   * PostgreSQL jobs: the database to restore into (a URL; '' for the PG* variables). It is
   * created when missing; an existing one is restored over only with `force` (pg_restore --clean).
   */
  into?: string;
  storage?: Storage;
  /** The catalog the job's runs recorded their backups in: the expected SHA-256 comes from it. */
  catalog?: Catalog;
  /**
   * For a backup the catalog does not know: the key whose MAC in the object's metadata proves
   * that Offsite wrote it. Default: the user's manifest key file, if there is one (never
   * created here); null: none.
   */
  manifestKey?: ManifestKey | null;
  /**
   * Restore even when nothing proves what the backup must hold (no catalog record, and no MAC
   * or none this key can check). A backup proven altered is refused all the same.
   */
  unverified?: boolean;
  force?: boolean;
  /** age identities, for backups encrypted to recipients. */
  identities?: string[];
  signal?: AbortSignal;
}

/** What the backup's SHA-256 was checked against. */
export type RestoreVerification = 'catalog' | 'manifest-key' | 'sha256-file' | 'unverified';

export interface BackupRestoreResult {
  name: string;
  /** The file written, or the database restored into (password hidden). */
  to: string;
  /** Where the backup was read from. */
  from: 'local' | 's3';
  sha256: string;
  /** Bytes of the restored file (decrypted and decompressed). */
  bytes: number;
  check: string;
  verifiedBy: RestoreVerification;
  /** The download was kept as the job's local copy (listed as `both` from now on). */
  keptLocal: boolean;
}

/** What the backup file must be, and how to decode it. `sha256` undefined: an unverified restore. */
interface Expected {
  sha256: string | undefined;
  size: number | undefined;
  encrypted: boolean;
  compression: Compression;
  by: RestoreVerification;
}

export async function restoreBackup(job: BackupJob, name: string, opts: BackupRestoreOptions): Promise<BackupRestoreResult> {
  if (name.includes('/') || name.startsWith('.')) throw new BackupRestoreError('NotFound', `"${name}" is not a backup name; "offsite backups ${job.name}" lists them`);
  if ((opts.to === undefined) === (opts.into === undefined)) throw new BackupRestoreError('InvalidTarget', 'give either a file to restore to (--to PATH) or, for a PostgreSQL job, a database to restore into (--into URL)');
  if (opts.into !== undefined && job.source.kind !== 'postgres') {
    throw new BackupRestoreError('InvalidTarget', `--into restores into a PostgreSQL database, and job ${job.name} backs up a ${job.source.kind} source; use --to PATH`);
  }
  // Restoring into a database: the decoded dump goes to a temp file in the job's directory first.
  const target = opts.to !== undefined ? path.resolve(opts.to) : undefined;
  if (target && !opts.force && (await stat(target).catch(() => undefined))) {
    throw new BackupRestoreError('TargetExists', `${target} exists; restore elsewhere, or pass --force to replace it`);
  }
  const record = opts.catalog?.getBackup(job.name, name);
  // A job that encrypts is only ever restored through decryption, whatever a name or an object says.
  const mustDecrypt = job.recipients.length > 0 || record?.encrypted === true;
  if ((mustDecrypt || name.endsWith('.age')) && !opts.identities?.length) {
    throw new BackupRestoreError('NeedsIdentity', `${name} is encrypted: give the age identity file (--identity FILE)`);
  }
  await mkdirPrivate(job.localDir);
  const temp = target
    ? path.join(path.dirname(target), `${RESTORE_TEMP_PREFIX}${process.pid}-${path.basename(target)}`)
    : path.join(job.localDir, `${RESTORE_TEMP_PREFIX}${process.pid}-${name}.decoded`);
  await rm(temp, { force: true }); // one of a dead restore whose pid we now have (never followed: it is created O_EXCL)
  const ctx: RestoreContext = { job, name, opts, mustDecrypt, temp };
  let fetched: Fetched | undefined;
  try {
    const local = await fromLocalCopy(ctx, record);
    fetched = local.fetched ?? (await fromBucket(ctx, record, local.damaged));
    const check = await checkRestored(job, temp);
    const bytes = (await stat(temp)).size;
    const done = { name, from: fetched.from, sha256: fetched.sha256, bytes, verifiedBy: fetched.by, keptLocal: fetched.keptLocal };
    if (job.source.kind === 'dir' && target) {
      // A directory backup is extracted (safely: nothing outside `target`) rather than renamed.
      await mkdirPrivate(target);
      const report = await unpackTar(createReadStream(temp), target, opts.signal ? { signal: opts.signal } : {});
      return { ...done, to: target, check: `${check}: ${report.files} files extracted` };
    }
    if (opts.into !== undefined) {
      const database = opts.into ? { url: opts.into } : {};
      await restorePostgres(database, temp, { createDatabase: true, clean: opts.force ?? false, ...(opts.signal ? { signal: opts.signal } : {}) });
      return { ...done, to: describePostgresTarget(database), check: `${check}; pg_restore ok` };
    }
    // DuckDB would replay a WAL left beside the file it replaces into the restored database.
    if (job.source.kind === 'duckdb') await rm(`${target!}.wal`, { force: true });
    await renameDurable(temp, target!);
    return { ...done, to: target!, check };
  } finally {
    await rm(temp, { force: true });
    if (fetched?.download) await rm(fetched.download, { force: true });
  }
}

interface RestoreContext {
  job: BackupJob;
  name: string;
  opts: BackupRestoreOptions;
  mustDecrypt: boolean;
  /** Where the decoded backup is written. */
  temp: string;
}

/** A backup file read, checked and decoded into ctx.temp. */
interface Fetched {
  from: 'local' | 's3';
  sha256: string;
  by: RestoreVerification;
  keptLocal: boolean;
  /** A downloaded file to remove afterwards (not kept as the local copy). */
  download?: string;
}

/**
 * The local copy, when it matches what the catalog (else its .sha256 file) says, hashed while it
 * is decoded. `damaged`: there is one, and it does not match.
 */
async function fromLocalCopy(ctx: RestoreContext, record: ReturnType<Catalog['getBackup']>): Promise<{ fetched?: Fetched; damaged: boolean }> {
  const { job, name, opts } = ctx;
  const localPath = path.join(job.localDir, name);
  const st = await stat(localPath).catch(() => undefined);
  if (!st?.isFile()) return { damaged: false };
  let expected: Expected | undefined;
  if (record) expected = { ...factsOfRecord(record), by: 'catalog' };
  else {
    const sidecar = await readFile(`${localPath}.sha256`, 'utf8').then((t) => t.split(/\s/)[0], () => undefined);
    if (sidecar) expected = { ...namedExpected(ctx), sha256: sidecar, by: 'sha256-file' };
    // Nothing says what it should hold: the bucket may (a MAC); else only an unverified restore.
    else if (opts.storage || !opts.unverified) return { damaged: false };
    else expected = namedExpected(ctx);
  }
  const outcome = await decodeChecked(ctx, localPath, expected);
  if (outcome === 'mismatch') return { damaged: true };
  return { fetched: { from: 'local', sha256: outcome, by: expected.by, keptLocal: false }, damaged: false };
}

/** The object in the bucket, checked against the catalog or its authenticated metadata. */
async function fromBucket(ctx: RestoreContext, record: ReturnType<Catalog['getBackup']>, localDamaged: boolean): Promise<Fetched> {
  const { job, name, opts } = ctx;
  const storage = opts.storage;
  if (!storage) {
    throw localDamaged
      ? new BackupRestoreError('Corrupted', `the local copy of ${name} in ${job.localDir} does not match its SHA-256, and job ${job.name} has no bucket to fetch another from; restore another backup`)
      : new BackupRestoreError('NotFound', `no local copy of ${name} in ${job.localDir} that can be checked, and job ${job.name} has no bucket to fetch it from`);
  }
  const got = await storage.get(name, opts.signal ? { signal: opts.signal } : {}).catch((e: { code?: string; message: string }) => {
    if (e.code === 'NotFound') throw new BackupRestoreError('NotFound', `no backup ${name} ${localDamaged ? '(the local copy is damaged)' : 'locally'} or in ${storage.url}; "offsite backups ${job.name}" lists them`);
    throw e;
  });
  let download: string | undefined;
  try {
    const expected = await expectedOfObject(ctx, record, got);
    if (expected.size !== undefined && got.info.size !== expected.size) {
      throw new BackupRestoreError('Corrupted', `the stored ${name} is ${got.info.size} bytes, and the backup Offsite made was ${expected.size}: it was replaced or damaged in the bucket; nothing was restored`);
    }
    // Downloaded and checked before anything decodes it: unverified bytes never reach gunzip,
    // age, SQLite or pg_restore.
    download = path.join(job.localDir, `${RESTORE_TEMP_PREFIX}${process.pid}-download-${name}`);
    const hash = hashingStream({ md5: false });
    const limit = expected.size ?? Number.MAX_SAFE_INTEGER;
    const tooLong = () => new BackupRestoreError('Corrupted', `the stored ${name} is longer than the backup Offsite made (${limit} bytes); nothing was restored`);
    await pipeToNewPrivateFile(download, [got.body, byteLimit(limit, tooLong), hash], opts.signal);
    const sha256 = hash.digest().sha256;
    if (expected.sha256 !== undefined && sha256 !== expected.sha256) {
      throw new BackupRestoreError('Corrupted', `the stored ${name} does not match its SHA-256 (${sha256} instead of ${expected.sha256}, from ${describeSource(expected.by)}): it was replaced or damaged in the bucket; nothing was restored`);
    }
    const decrypt = ctx.mustDecrypt || expected.encrypted;
    if (decrypt) await requireAge(download, ctx);
    let source = download;
    let keptLocal = false;
    if (expected.by !== 'unverified' && job.keepLocal) {
      // Keep what was fetched as the local copy (what the docs promise, and what the listing shows).
      const localPath = path.join(job.localDir, name);
      await renameDurable(download, localPath);
      download = undefined;
      await writePrivateFile(`${localPath}.sha256`, `${sha256}  ${name}\n`);
      if (opts.catalog && !record) {
        opts.catalog.recordBackup({ job: job.name, name, size: got.info.size, sha256, encrypted: expected.encrypted, compression: expected.compression });
        opts.catalog.markBackupUploaded(job.name, name, storage.url);
      }
      source = localPath;
      keptLocal = true;
    }
    await pipeToNewPrivateFile(ctx.temp, [createReadStream(source), ...decodeStages(ctx, { ...expected, encrypted: decrypt })], opts.signal);
    return { from: 's3', sha256, by: expected.by, keptLocal, ...(download ? { download } : {}) };
  } catch (e) {
    got.body.destroy();
    if (download) await rm(download, { force: true });
    throw e;
  }
}

/** From the catalog's record; else from the object's metadata if the manifest key authenticates it. */
async function expectedOfObject(ctx: RestoreContext, record: ReturnType<Catalog['getBackup']>, got: GetResult): Promise<Expected> {
  const { job, name, opts } = ctx;
  if (record) return { ...factsOfRecord(record), by: 'catalog' };
  const key = opts.manifestKey === undefined ? (await loadManifestKey())?.key : (opts.manifestKey ?? undefined);
  const { facts, check } = checkObjectFacts(job, name, got.info, key);
  const what = `the object ${name} in ${opts.storage!.url}`;
  switch (check.status) {
    case 'authentic':
      return { ...facts, by: 'manifest-key' };
    case 'forged':
      throw new BackupRestoreError('Forged', `${describeMacCheck(check, what)}; nothing was restored: restore another backup`);
    default: {
      if (opts.unverified) return namedExpected(ctx);
      const why = `${describeMacCheck(check, what)}, and the catalog has no record of it`;
      throw new BackupRestoreError(
        check.status === 'no-key' ? 'NeedsManifestKey' : 'Unauthenticated',
        `${why}; nothing was restored. To restore it without that proof, pass --unverified`,
      );
    }
  }
}

/** What the name and the job say, for a backup nothing else describes (unverified, or checked by its .sha256 file). */
function namedExpected(ctx: RestoreContext): Expected {
  return {
    sha256: undefined,
    size: undefined,
    encrypted: ctx.mustDecrypt || ctx.name.endsWith('.age'),
    compression: /\.gz(\.age)?$/.test(ctx.name) ? 'gzip' : 'none',
    by: 'unverified',
  };
}

function describeSource(by: RestoreVerification): string {
  return by === 'catalog' ? 'the catalog' : by === 'manifest-key' ? 'its authenticated metadata' : by === 'sha256-file' ? 'its .sha256 file' : 'nowhere';
}

function decodeStages(ctx: RestoreContext, expected: Expected): NodeJS.ReadWriteStream[] {
  const stages: NodeJS.ReadWriteStream[] = [];
  if (ctx.mustDecrypt || expected.encrypted) {
    if (!ctx.opts.identities?.length) throw new BackupRestoreError('NeedsIdentity', `${ctx.name} is encrypted: give the age identity file (--identity FILE)`);
    stages.push(decryptStream({ identities: ctx.opts.identities }));
  }
  if (expected.compression === 'gzip') stages.push(gunzipStream());
  return stages;
}

/**
 * Decodes a local file into ctx.temp, hashing it on the way; resolves with its SHA-256, or
 * 'mismatch' when it is not what `expected` says (damaged). A decoding error of a file that does
 * match (a wrong identity, say) is thrown.
 */
async function decodeChecked(ctx: RestoreContext, file: string, expected: Expected): Promise<string | 'mismatch'> {
  const decrypt = ctx.mustDecrypt || expected.encrypted;
  if (decrypt && !(await isAgeFile(file))) return 'mismatch';
  const hash = hashingStream({ md5: false });
  const limit = expected.size ?? Number.MAX_SAFE_INTEGER;
  const tooLong = () => new BackupRestoreError('Corrupted', `${file} is longer than the backup recorded`);
  try {
    await pipeToNewPrivateFile(ctx.temp, [createReadStream(file), byteLimit(limit, tooLong), hash, ...decodeStages(ctx, expected)], ctx.opts.signal);
  } catch (e) {
    if (ctx.opts.signal?.aborted || e instanceof BackupRestoreError && e.code === 'NeedsIdentity') throw e;
    // Only on failure is the file read a second time, to tell damage from a genuine error.
    if (expected.sha256 !== undefined && (await sha256OfFile(file)) !== expected.sha256) return 'mismatch';
    throw e;
  }
  const sha256 = hash.digest().sha256;
  if (expected.sha256 !== undefined && sha256 !== expected.sha256) {
    await rm(ctx.temp, { force: true });
    return 'mismatch';
  }
  return sha256;
}

/** age's binary header, or its armored form. */
async function isAgeFile(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const { buffer, bytesRead } = await fh.read(Buffer.alloc(34), 0, 34, 0);
    const head = buffer.subarray(0, bytesRead).toString('latin1');
    return head.startsWith('age-encryption.org/v1\n') || head.startsWith('-----BEGIN AGE ENCRYPTED FILE-----');
  } finally {
    await fh.close();
  }
}

async function requireAge(file: string, ctx: RestoreContext): Promise<void> {
  if (await isAgeFile(file)) return;
  throw new BackupRestoreError(
    'Corrupted',
    `the stored ${ctx.name} is not age-encrypted, and backups of job ${ctx.job.name} are: Offsite did not write it; nothing was restored`,
  );
}

async function sha256OfFile(file: string): Promise<string | undefined> {
  try {
    return (await hashFile(file)).sha256;
  } catch {
    return undefined;
  }
}
