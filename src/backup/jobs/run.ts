/**
 * One run of a backup job: a consistent snapshot of the source into the job's local directory
 * (compressed and encrypted there if configured), its SHA-256 in a `NAME.sha256` file beside it
 * (`sha256sum -c` reads it) and in the catalog's record of the backup, then the upload. Local
 * first: the local copy is complete before the bucket is touched, and a failed upload leaves it
 * in place (listed as `local`). An object counts as a backup only once the store has all of it:
 * a put that is aborted (SIGTERM) or fails leaves no object behind, and the stored size and
 * metadata (SHA-256, and the manifest key's MAC over the backup's facts, see record.ts) are
 * checked with a HEAD. Everything written is private (0600 files, 0700 directories) whatever
 * the umask. One run per job at a time, across processes (a lock file in the local directory).
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { chmod, lstat, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import lockfile from 'proper-lockfile';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { Catalog } from '../../catalog/index.js';
import { encryptStream, gzipStream, hashFile, hashingStream, loadManifestKey, type Digest, type ManifestKey } from '../../codec/index.js';
import { fsyncFile, mkdirPrivate, PRIVATE_FILE_MODE, renameDurable, writePrivateFile } from '../../files/index.js';
import type { Storage } from '../../storage/index.js';
import type { BackupJob } from './config.js';
import { JobConfigError } from './config.js';
import { backupMetadata, factsOfJob, MAC_METADATA, SHA256_METADATA, type BackupFacts } from './record.js';
import { snapshotSource, sourceExtension } from './sources.js';
import { pipeToNewPrivateFile } from './write.js';

export { SHA256_METADATA } from './record.js';
/** Temporary files in a job's local directory; a run removes any it finds (see removeLeftovers). */
export const TEMP_PREFIX = '.offsite-tmp-';
/**
 * Temporary files of a restore (`.offsite-restore-PID-...`): a restore runs without the job's
 * lock, so a run removes only those whose process is gone.
 */
export const RESTORE_TEMP_PREFIX = '.offsite-restore-';
/**
 * A snapshot that a host made for a run in its child (stageHostSnapshot), named
 * `PREFIX<host pid>-<random>`: left over only if that host died before the child took it.
 */
export const HOST_SNAPSHOT_PREFIX = '.offsite-host-snapshot-';

export interface BackupRunOptions {
  catalog?: Catalog;
  /** The job's bucket; undefined = local copy only (no destination, or uploads switched off). */
  storage?: Storage;
  /**
   * Signs the backup's facts in the object's metadata, so that a restore from the bucket alone
   * tells this backup from a forged one. Default: the user's manifest key
   * (~/.config/offsite/manifest.key or $OFFSITE_MANIFEST_KEY_FILE), created on first use (then
   * `manifestKeyCreated` says where). Only loaded when there is a bucket.
   */
  manifestKey?: ManifestKey;
  signal?: AbortSignal;
  /** The run's clock (tests). */
  now?: Date;
  /** DuckDB jobs in an app that has the database open: its connection (the copy runs through it). */
  duckdbConnection?: DuckDBConnection;
  /**
   * The run's snapshot, made already by the caller (stageHostSnapshot: the DuckDB copy through a
   * host's connection, for a run in a child): a file in the job's local directory, moved into
   * place instead of a new snapshot being made.
   */
  snapshotFile?: string;
  /**
   * Called as the run moves: 'snapshot' while the local copy is written (bytes of the snapshot
   * read into it, of its size), 'upload' while the object is sent (bytes handed to the store, of
   * the backup's size). Unthrottled: callers that show it rate-limit it themselves.
   */
  onProgress?: (progress: BackupProgress) => void;
}

export interface BackupProgress {
  phase: 'snapshot' | 'upload';
  bytesDone: number;
  /** Undefined until known. */
  bytesTotal: number | undefined;
}

export interface BackupRunResult {
  job: string;
  /** File name, the same locally and in the bucket. */
  name: string;
  localPath: string;
  size: number;
  sha256: string;
  encrypted: boolean;
  compression: 'none' | 'gzip';
  /** True once the store confirmed the whole object. */
  uploaded: boolean;
  /** Why the upload failed (the local copy is kept). */
  uploadError?: string;
  /** That failure's stable code (InvalidCredentials, Transient, NoSuchBucket, ...; UploadFailed when it has none). */
  uploadErrorCode?: string;
  /** This run created the manifest key, in this file: the user should keep a copy of it. */
  manifestKeyCreated?: string;
  seconds: number;
  requests: Record<string, number>;
}

/**
 * A run that made no backup. `code` is the cause's own code when it has one (AuthFailed,
 * SourceMissing, ...), so that the exit code says why; SnapshotFailed otherwise.
 */
export class BackupRunError extends Error {
  override name = 'BackupRunError';
  constructor(
    readonly code: 'Busy' | 'SnapshotFailed' | 'UploadFailed' | (string & {}),
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** "20261123T140501Z": sorts as text, no characters that need quoting anywhere. */
export function backupTimestamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

export function backupName(job: BackupJob, when: Date): string {
  const name = job.keyTemplate.replaceAll('{job}', job.name).replaceAll('{timestamp}', backupTimestamp(when)).replaceAll('{ext}', sourceExtension(job.source));
  if (name.includes('/') || name.startsWith('.') || name === '') {
    throw new JobConfigError(`job ${job.name}: key_template must give a file name (no "/", not starting with "."), got "${name}"; put folders in the destination's prefix`);
  }
  return `${name}${job.compress === 'gzip' ? '.gz' : ''}${job.recipients.length ? '.age' : ''}`;
}

export async function runBackupJob(job: BackupJob, opts: BackupRunOptions = {}): Promise<BackupRunResult> {
  const started = Date.now();
  await mkdirPrivate(job.localDir);
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(job.localDir, { lockfilePath: path.join(job.localDir, '.offsite-job.lock'), stale: 60_000, update: 10_000, retries: 0 });
  } catch (cause) {
    throw new BackupRunError('Busy', `job ${job.name} is already running (lock in ${job.localDir}); this run was skipped`, { cause });
  }
  let name: string;
  try {
    name = await unusedBackupName(job, opts.now, opts.catalog);
  } catch (e) {
    await release().catch(() => undefined);
    throw e;
  }
  const requestsBefore = { ...(opts.storage?.stats().requests ?? {}) };
  const opId = opts.catalog?.startOperation('backup', { job: job.name, name, destination: opts.storage?.url ?? null });
  let result: BackupRunResult | undefined;
  let failure: Error | undefined;
  try {
    await removeLeftovers(job.localDir);
    const localPath = path.join(job.localDir, name);
    const { size, sha256 } = await makeLocalCopy(job, localPath, opts);
    const facts = factsOfJob(job, name, size, sha256);
    opts.catalog?.recordBackup(facts);
    result = { job: job.name, name, localPath, size, sha256, encrypted: facts.encrypted, compression: facts.compression, uploaded: false, seconds: 0, requests: {} };
    if (opts.storage) {
      try {
        let key = opts.manifestKey;
        if (!key) {
          const loaded = (await loadManifestKey({ create: true }))!;
          key = loaded.key;
          if (loaded.created) result.manifestKeyCreated = key.file;
        }
        await uploadBackup(opts.storage, facts, localPath, key, opts.signal, opts.onProgress);
        opts.catalog?.markBackupUploaded(job.name, name, opts.storage.url);
        result.uploaded = true;
        if (!job.keepLocal) await rm(localPath, { force: true }).then(() => rm(`${localPath}.sha256`, { force: true }));
      } catch (e) {
        if (opts.signal?.aborted) throw e;
        result.uploadError = (e as Error).message;
        result.uploadErrorCode = codeOf(e) ?? 'UploadFailed';
      }
    }
    return result;
  } catch (e) {
    failure = e as Error;
    throw e;
  } finally {
    const requests = diffRequests(requestsBefore, opts.storage?.stats().requests ?? {});
    const seconds = (Date.now() - started) / 1000;
    if (result) Object.assign(result, { seconds, requests });
    if (opId !== undefined) {
      const error = failure?.message ?? result?.uploadError;
      opts.catalog!.finishOperation(opId, {
        status: failure ? (opts.signal?.aborted ? 'interrupted' : 'failed') : result?.uploadError ? 'failed' : 'ok',
        bytes: result?.uploaded ? result.size : 0,
        seconds,
        requests,
        ...(error ? { error } : {}),
      });
    }
    await release().catch(() => undefined);
  }
}

/**
 * The run's name: its start time, to the second, unless a backup of this job already has that
 * name (two runs can start within one second: a timer fires a little early, or the run before
 * was slow to begin). Then it waits for the next second rather than replace that backup, here
 * or under the same key in the bucket. Called under the job's lock, so no other run takes it.
 */
async function unusedBackupName(job: BackupJob, now: Date | undefined, catalog: Catalog | undefined): Promise<string> {
  let at = now ?? new Date();
  for (;;) {
    const name = backupName(job, at);
    const taken = existsSync(path.join(job.localDir, name)) || catalog?.getBackup(job.name, name) !== undefined;
    if (!taken) return name;
    const nextSecond = Math.floor(at.getTime() / 1000) * 1000 + 1000;
    // A given time (tests, replays) moves on at once; the clock is waited for.
    if (!now) await sleep(Math.max(0, nextSecond - Date.now()));
    at = new Date(now ? nextSecond : Math.max(nextSecond, Date.now()));
  }
}

/**
 * Snapshot → (gzip) → (age) → local file, hashed on the way; atomically renamed into place.
 * The snapshot is made in a private directory of its own: each source's engine (SQLite, DuckDB,
 * pg_dump, copyFile) creates its file with a mode of its choosing, and none of those may be
 * readable by other users even for a moment.
 */
async function makeLocalCopy(job: BackupJob, localPath: string, opts: BackupRunOptions): Promise<{ size: number; sha256: string }> {
  const { signal } = opts;
  const work = path.join(job.localDir, `${TEMP_PREFIX}${path.basename(localPath)}.d`);
  const snapshot = path.join(work, 'snapshot');
  const partial = path.join(job.localDir, `${TEMP_PREFIX}${path.basename(localPath)}`);
  try {
    await mkdirPrivate(work);
    const report = opts.onProgress;
    report?.({ phase: 'snapshot', bytesDone: 0, bytesTotal: undefined });
    if (opts.snapshotFile) await takeStagedSnapshot(job, opts.snapshotFile, snapshot);
    else await snapshotSource(job.source, snapshot, { ...(signal ? { signal } : {}), ...(opts.duckdbConnection ? { duckdbConnection: opts.duckdbConnection } : {}) });
    const snapshotBytes = (await stat(snapshot)).size;
    const codecs: NodeJS.ReadWriteStream[] = [];
    if (job.compress === 'gzip') codecs.push(gzipStream());
    if (job.recipients.length) codecs.push(encryptStream({ recipients: job.recipients }));
    let digest: Digest;
    if (codecs.length === 0) {
      // Nothing to transform: the snapshot is the backup. Hashed where it lies and moved into
      // place rather than copied (for a 1 GiB database, 2 GiB less to read and write). Its
      // engine chose its mode; it becomes private before it leaves the private work directory.
      // The fsync writes it back while it is hashed (from the page cache).
      await chmod(snapshot, PRIVATE_FILE_MODE);
      const onBytes = report ? (bytesDone: number) => report({ phase: 'snapshot', bytesDone, bytesTotal: snapshotBytes }) : undefined;
      [digest] = await Promise.all([hashFile(snapshot, { ...(signal ? { signal } : {}), ...(onBytes ? { onBytes } : {}) }), fsyncFile(snapshot)]);
      await renameDurable(snapshot, localPath);
    } else {
      const hash = hashingStream({ md5: false });
      const counting = report ? [countingStream(snapshotBytes, report)] : [];
      await pipeToNewPrivateFile(partial, [createReadStream(snapshot), ...counting, ...codecs, hash], signal);
      await renameDurable(partial, localPath);
      digest = hash.digest();
    }
    const { sha256, bytes } = digest;
    await writePrivateFile(`${localPath}.sha256`, `${sha256}  ${path.basename(localPath)}\n`);
    return { size: bytes, sha256 };
  } catch (e) {
    throw snapshotFailure(job, e, signal);
  } finally {
    await rm(work, { recursive: true, force: true });
    await rm(partial, { force: true });
  }
}

async function uploadBackup(
  storage: Storage,
  facts: BackupFacts,
  localPath: string,
  key: ManifestKey,
  signal: AbortSignal | undefined,
  report: BackupRunOptions['onProgress'],
): Promise<void> {
  const metadata = backupMetadata(facts, key);
  report?.({ phase: 'upload', bytesDone: 0, bytesTotal: facts.size });
  const put = await storage.put(facts.name, createReadStream(localPath), {
    sizeHint: facts.size,
    contentType: 'application/octet-stream',
    metadata,
    ...(signal ? { signal } : {}),
    ...(report ? { onProgress: (bytesSent: number) => report({ phase: 'upload', bytesDone: bytesSent, bytesTotal: facts.size }) } : {}),
  });
  const head = await storage.head(facts.name);
  if (put.size !== facts.size || head.size !== facts.size || head.metadata[SHA256_METADATA] !== facts.sha256 || head.metadata[MAC_METADATA] !== metadata[MAC_METADATA]) {
    throw new BackupRunError('UploadFailed', `the stored ${facts.name} does not match the local copy (size ${head.size} of ${facts.size}); it will be uploaded again by the next run`);
  }
}

/** Passes bytes through, reporting the running count of the snapshot read into the local copy. */
function countingStream(total: number, report: NonNullable<BackupRunOptions['onProgress']>): Transform {
  let done = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      done += chunk.length;
      report({ phase: 'snapshot', bytesDone: done, bytesTotal: total });
      callback(null, chunk);
    },
  });
}

/** An abort as it is; any other failure to make the snapshot as the run's error, named after the job. */
function snapshotFailure(job: BackupJob, e: unknown, signal: AbortSignal | undefined): unknown {
  if (signal?.aborted) return e;
  return new BackupRunError(codeOf(e) ?? 'SnapshotFailed', `job ${job.name}: ${(e as Error).message}`, { cause: e });
}

/**
 * The snapshot of a run that will happen in a child process, made here, in the host: for a
 * DuckDB job through the app's own connection, which cannot leave the host. The copy runs on
 * DuckDB's threads (libuv's pool), not on the host's event loop; the child then hashes, encodes,
 * uploads and records it (runBackupJob with `snapshotFile`). The file is the caller's to remove
 * if the run never took it.
 */
export async function stageHostSnapshot(job: BackupJob, connection: DuckDBConnection, signal?: AbortSignal): Promise<string> {
  await mkdirPrivate(job.localDir);
  const file = path.join(job.localDir, `${HOST_SNAPSHOT_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}${sourceExtension(job.source)}`);
  try {
    await snapshotSource(job.source, file, { duckdbConnection: connection, ...(signal ? { signal } : {}) });
  } catch (e) {
    await rm(file, { force: true });
    throw snapshotFailure(job, e, signal);
  }
  return file;
}

/** A staged snapshot moved into the run's work directory: only a regular file of ours, in the job's directory. */
async function takeStagedSnapshot(job: BackupJob, staged: string, snapshot: string): Promise<void> {
  const name = path.basename(staged);
  if (path.resolve(path.dirname(staged)) !== path.resolve(job.localDir) || !name.startsWith(HOST_SNAPSHOT_PREFIX)) {
    throw new Error(`a staged snapshot must be a ${HOST_SNAPSHOT_PREFIX}* file in ${job.localDir}, not ${staged}`);
  }
  const st = await lstat(staged);
  if (!st.isFile()) throw new Error(`the staged snapshot ${staged} is not a regular file`);
  await rename(staged, snapshot);
}

/**
 * Temp files (and snapshot directories) of a run that was killed (only one run per job holds the
 * lock), and the files of restores and hosts' staged snapshots whose process is gone.
 */
async function removeLeftovers(dir: string): Promise<void> {
  for (const f of await readdir(dir)) {
    const prefix = [RESTORE_TEMP_PREFIX, HOST_SNAPSHOT_PREFIX].find((p) => f.startsWith(p));
    const ownerPid = prefix ? Number(/^(\d+)-/.exec(f.slice(prefix.length))?.[1]) : undefined;
    const dead = ownerPid !== undefined && Number.isSafeInteger(ownerPid) && ownerPid > 0 && !processAlive(ownerPid);
    if (f.startsWith(TEMP_PREFIX) || dead) await rm(path.join(dir, f), { recursive: true, force: true });
  }
}

/** Signal 0 checks that a process exists; EPERM means it exists but is not ours. */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The cause's code if it is one of Offsite's (AuthFailed, InvalidCredentials), not Node's or SQLite's (ENOENT, SQLITE_FULL). */
function codeOf(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[A-Z][a-z][A-Za-z]*$/.test(code) ? code : undefined;
}

function diffRequests(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) > 0) out[k] = v - (before[k] ?? 0);
  return out;
}
