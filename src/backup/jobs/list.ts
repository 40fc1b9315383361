/**
 * A job's backups as the user sees them: the local directory and the bucket merged by name,
 * each marked `local`, `s3` or `both`. Names come from the job's key template, so only files
 * and objects that template could have made are listed (other files in the directory or the
 * prefix are left alone, by prune too).
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Catalog } from '../../catalog/index.js';
import type { Storage } from '../../storage/index.js';
import type { BackupJob } from './config.js';
import { sourceExtension } from './sources.js';

export type BackupLocation = 'local' | 's3' | 'both';

export interface BackupEntry {
  name: string;
  where: BackupLocation;
  /** When it was taken: from the name's timestamp, else the newest modification time seen. */
  takenAt: Date;
  size: number;
  /** From the local .sha256 file, if there is one. */
  localSha256?: string;
  localPath?: string;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Matches the names the job's template makes; group 1 is the timestamp, if the template has one. */
export function backupNamePattern(job: BackupJob): RegExp {
  const ext = sourceExtension(job.source);
  const parts = job.keyTemplate.split(/(\{job\}|\{timestamp\}|\{ext\})/);
  const body = parts
    .map((p) => (p === '{job}' ? escapeRegExp(job.name) : p === '{timestamp}' ? '(\\d{8}T\\d{6}Z)' : p === '{ext}' ? escapeRegExp(ext) : escapeRegExp(p)))
    .join('');
  return new RegExp(`^${body}(?:\\.gz)?(?:\\.age)?$`);
}

function timestampOf(name: string, pattern: RegExp): Date | undefined {
  const ts = pattern.exec(name)?.[1];
  if (!ts) return undefined;
  return new Date(`${ts.slice(0, 4)}-${ts.slice(4, 6)}-${ts.slice(6, 8)}T${ts.slice(9, 11)}:${ts.slice(11, 13)}:${ts.slice(13, 15)}Z`);
}

/** Newest first. `storage` undefined: local copies only. */
export async function listBackups(job: BackupJob, storage?: Storage, opts: { signal?: AbortSignal } = {}): Promise<BackupEntry[]> {
  const local = await listLocalBackups(job);
  const remote = storage ? await listBucketBackups(job, storage, opts) : [];
  return mergeBackupListings(job, local, remote);
}

/** A backup object in the job's bucket, as a LIST reports it. */
export interface BucketBackup {
  name: string;
  size: number;
  lastModified: Date;
}

/** The backups in the job's local directory (where 'local'), in no particular order. */
export async function listLocalBackups(job: BackupJob): Promise<BackupEntry[]> {
  const pattern = backupNamePattern(job);
  const out: BackupEntry[] = [];
  const local = await readdir(job.localDir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return [] as string[];
    throw e;
  });
  for (const name of local) {
    if (!pattern.test(name)) continue;
    const localPath = path.join(job.localDir, name);
    const st = await stat(localPath).catch(() => undefined);
    if (!st?.isFile()) continue;
    const sidecar = await readFile(`${localPath}.sha256`, 'utf8').catch(() => undefined);
    const localSha256 = sidecar?.split(/\s/)[0];
    out.push({ name, where: 'local', takenAt: timestampOf(name, pattern) ?? st.mtime, size: st.size, localPath, ...(localSha256 ? { localSha256 } : {}) });
  }
  return out;
}

/** The job's backup objects in its bucket: one LIST (paged) of the destination's prefix. */
export async function listBucketBackups(job: BackupJob, storage: Storage, opts: { signal?: AbortSignal } = {}): Promise<BucketBackup[]> {
  const pattern = backupNamePattern(job);
  const out: BucketBackup[] = [];
  for await (const e of storage.list(opts.signal ? { signal: opts.signal } : {})) {
    if (e.type === 'object' && pattern.test(e.key)) out.push({ name: e.key, size: e.size, lastModified: e.lastModified });
  }
  return out;
}

/** Local copies and bucket objects merged by name, each marked local, s3 or both; newest first. */
export function mergeBackupListings(job: BackupJob, local: readonly BackupEntry[], remote: Iterable<BucketBackup>): BackupEntry[] {
  const pattern = backupNamePattern(job);
  const byName = new Map<string, BackupEntry>(local.map((e) => [e.name, { ...e }]));
  for (const o of remote) {
    const seen = byName.get(o.name);
    if (seen) {
      seen.where = 'both';
      if (!timestampOf(o.name, pattern) && o.lastModified > seen.takenAt) seen.takenAt = o.lastModified;
    } else {
      byName.set(o.name, { name: o.name, where: 's3', takenAt: timestampOf(o.name, pattern) ?? o.lastModified, size: o.size });
    }
  }
  return [...byName.values()].sort((a, b) => b.takenAt.getTime() - a.takenAt.getTime() || (a.name < b.name ? 1 : -1));
}

/**
 * The backup `restore JOB latest` means: the newest one the catalog recorded, when it recorded
 * any of this job's, so that a newer name planted in the bucket (which no restore would accept)
 * cannot make "latest" fail; else the newest listed.
 */
export async function latestBackup(job: BackupJob, storage: Storage | undefined, catalog?: Pick<Catalog, 'getBackup'>): Promise<BackupEntry | undefined> {
  const entries = await listBackups(job, storage);
  return (catalog && entries.find((e) => catalog.getBackup(job.name, e.name) !== undefined)) || entries[0];
}
