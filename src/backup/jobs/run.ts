/**
 * One run of a backup job: a consistent snapshot of the source into the job's local directory
 * (compressed and encrypted there if configured), its SHA-256 in a `NAME.sha256` file beside it
 * (`sha256sum -c` reads it), then the upload. Local first: the local copy is complete before
 * the bucket is touched, and a failed upload leaves it in place (listed as `local`). An object
 * counts as a backup only once the store has all of it: a put that is aborted (SIGTERM) or fails
 * leaves no object behind, and the stored size and SHA-256 metadata are checked with a HEAD.
 * One run per job at a time, across processes (a lock file in the local directory).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import lockfile from 'proper-lockfile';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { Catalog } from '../../catalog/index.js';
import { encryptStream, gzipStream, hashingStream } from '../../codec/index.js';
import type { Storage } from '../../storage/index.js';
import type { BackupJob } from './config.js';
import { JobConfigError } from './config.js';
import { snapshotSource, sourceExtension } from './sources.js';

export const SHA256_METADATA = 'offsite-sha256';
/** Temporary files in a job's local directory; a run removes any it finds (see removeLeftovers). */
export const TEMP_PREFIX = '.offsite-tmp-';

export interface BackupRunOptions {
  catalog?: Catalog;
  /** The job's bucket; undefined = local copy only (no destination, or uploads switched off). */
  storage?: Storage;
  signal?: AbortSignal;
  /** The run's clock (tests). */
  now?: Date;
  /** DuckDB jobs in an app that has the database open: its connection (the copy runs through it). */
  duckdbConnection?: DuckDBConnection;
}

export interface BackupRunResult {
  job: string;
  /** File name, the same locally and in the bucket. */
  name: string;
  localPath: string;
  size: number;
  sha256: string;
  /** True once the store confirmed the whole object. */
  uploaded: boolean;
  /** Why the upload failed (the local copy is kept). */
  uploadError?: string;
  seconds: number;
  requests: Record<string, number>;
}

export class BackupRunError extends Error {
  override name = 'BackupRunError';
  constructor(
    readonly code: 'Busy' | 'SnapshotFailed' | 'UploadFailed',
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
  const when = opts.now ?? new Date();
  const name = backupName(job, when);
  await mkdir(job.localDir, { recursive: true });
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(job.localDir, { lockfilePath: path.join(job.localDir, '.offsite-job.lock'), stale: 60_000, update: 10_000, retries: 0 });
  } catch (cause) {
    throw new BackupRunError('Busy', `job ${job.name} is already running (lock in ${job.localDir}); this run was skipped`, { cause });
  }
  const requestsBefore = { ...(opts.storage?.stats().requests ?? {}) };
  const opId = opts.catalog?.startOperation('backup', { job: job.name, name, destination: opts.storage?.url ?? null });
  let result: BackupRunResult | undefined;
  let failure: Error | undefined;
  try {
    await removeLeftovers(job.localDir);
    const localPath = path.join(job.localDir, name);
    const { size, sha256 } = await makeLocalCopy(job, localPath, opts);
    result = { job: job.name, name, localPath, size, sha256, uploaded: false, seconds: 0, requests: {} };
    if (opts.storage) {
      try {
        await uploadBackup(opts.storage, job, name, localPath, sha256, size, opts.signal);
        result.uploaded = true;
        if (!job.keepLocal) await rm(localPath, { force: true }).then(() => rm(`${localPath}.sha256`, { force: true }));
      } catch (e) {
        if (opts.signal?.aborted) throw e;
        result.uploadError = (e as Error).message;
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

/** Snapshot → (gzip) → (age) → local file, hashed on the way; atomically renamed into place. */
async function makeLocalCopy(job: BackupJob, localPath: string, opts: BackupRunOptions): Promise<{ size: number; sha256: string }> {
  const { signal } = opts;
  const snapshot = path.join(job.localDir, `${TEMP_PREFIX}${path.basename(localPath)}.snapshot`);
  const partial = path.join(job.localDir, `${TEMP_PREFIX}${path.basename(localPath)}`);
  try {
    await snapshotSource(job.source, snapshot, { ...(signal ? { signal } : {}), ...(opts.duckdbConnection ? { duckdbConnection: opts.duckdbConnection } : {}) });
    const hash = hashingStream({ md5: false });
    const stages: NodeJS.ReadWriteStream[] = [];
    if (job.compress === 'gzip') stages.push(gzipStream());
    if (job.recipients.length) stages.push(encryptStream({ recipients: job.recipients }));
    await pipeline([createReadStream(snapshot), ...stages, hash, createWriteStream(partial)], signal ? { signal } : {});
    await fsyncFile(partial);
    const { sha256, bytes } = hash.digest();
    await rename(partial, localPath);
    await writeFile(`${localPath}.sha256`, `${sha256}  ${path.basename(localPath)}\n`);
    return { size: bytes, sha256 };
  } catch (e) {
    if (signal?.aborted) throw e;
    throw new BackupRunError('SnapshotFailed', `job ${job.name}: ${(e as Error).message}`, { cause: e });
  } finally {
    await rm(snapshot, { force: true });
    await rm(partial, { force: true });
  }
}

async function uploadBackup(storage: Storage, job: BackupJob, name: string, localPath: string, sha256: string, size: number, signal: AbortSignal | undefined): Promise<void> {
  const put = await storage.put(name, createReadStream(localPath), {
    sizeHint: size,
    contentType: 'application/octet-stream',
    metadata: { [SHA256_METADATA]: sha256, 'offsite-job': job.name },
    ...(signal ? { signal } : {}),
  });
  const head = await storage.head(name);
  if (put.size !== size || head.size !== size || head.metadata[SHA256_METADATA] !== sha256) {
    throw new BackupRunError('UploadFailed', `the stored ${name} does not match the local copy (size ${head.size} of ${size}); it will be uploaded again by the next run`);
  }
}

async function fsyncFile(file: string): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Temp files of a run that was killed (only one run per job holds the lock). */
async function removeLeftovers(dir: string): Promise<void> {
  for (const f of await readdir(dir)) if (f.startsWith(TEMP_PREFIX)) await rm(path.join(dir, f), { force: true });
}

function diffRequests(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) > 0) out[k] = v - (before[k] ?? 0);
  return out;
}

