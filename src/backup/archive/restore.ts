/**
 * Restoring a session: stream the archive down, decrypt and gunzip if needed, untar safely into
 * the target (entries escaping it are refused) and check every file against the manifest. An
 * archive in a Glacier class is first restored by the store: the request is recorded in the
 * catalog as pending; with `wait`, the store is polled until the object is readable.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream';
import type { Catalog } from '../../catalog/index.js';
import { decryptStream, gunzipStream, unpackTar } from '../../codec/index.js';
import { ARCHIVE_STORAGE_CLASSES, type ObjectInfo, type Storage } from '../../storage/index.js';
import type { ArchiveConfig } from './config.js';
import type { EventSink } from './events.js';
import { progressCounter, readManifest } from './manifest-io.js';
import { decryptionKeys } from './verify.js';

export interface RestoreOptions {
  sessionId: string;
  /** Target directory (default: ./restored); the session lands in TARGET/SESSION_ID/. */
  to?: string;
  tier?: 'Standard' | 'Bulk' | 'Expedited';
  days?: number;
  /** Poll until an archived object is readable, then fetch it. */
  wait?: boolean;
  /** Seconds between polls with `wait` (default 60). */
  pollSeconds?: number;
  /** Give up waiting after this many seconds (default: 48 h). */
  maxWaitSeconds?: number;
  signal?: AbortSignal;
  onEvent?: EventSink;
}

export type RestoreOutcome =
  | { status: 'restored'; sessionId: string; key: string; to: string; files: number; bytes: number }
  | { status: 'pending'; sessionId: string; key: string; detail: string };

export async function restoreSession(config: ArchiveConfig, storage: Storage, catalog: Catalog, opts: RestoreOptions): Promise<RestoreOutcome> {
  const emit: EventSink = opts.onEvent ?? (() => undefined);
  const row = catalog.findArchivesBySession(opts.sessionId).find((r) => r.destination === storage.url && r.status === 'done');
  if (!row) throw new Error(`no archived session "${opts.sessionId}" in the catalog for ${storage.url}; run "offsite archive catalog rebuild" if the catalog is new`);
  const manifest = await readManifest(storage, row.manifestKey);

  let head = await storage.head(row.key);
  if (ARCHIVE_STORAGE_CLASSES.has(head.storageClass) && !isRestored(head)) {
    if (!storage.restoreArchived) throw new Error(`${row.key} is in ${head.storageClass} and this storage cannot restore archived objects`);
    if (!head.restore?.ongoing) {
      const tier = opts.tier ?? 'Standard';
      const days = opts.days ?? 7;
      const answer = await storage.restoreArchived(row.key, { days, tier });
      if (!catalog.pendingRestores(storage.url).some((r) => r.key === row.key)) catalog.recordRestoreRequest({ sessionId: row.sessionId, key: row.key, destination: storage.url, tier, days });
      emit({ type: 'restore-pending', sessionId: row.sessionId, key: row.key, detail: `restore ${answer} (${tier}, kept ${days} days)` });
    }
    if (!opts.wait) {
      return { status: 'pending', sessionId: row.sessionId, key: row.key, detail: `${head.storageClass} restore in progress; run the same command again later, or add --wait` };
    }
    const deadline = Date.now() + (opts.maxWaitSeconds ?? 48 * 3600) * 1000;
    while (!isRestored(head)) {
      if (Date.now() > deadline) throw new Error(`gave up waiting for the restore of ${row.key}; it is still in progress, run again later`);
      await sleep((opts.pollSeconds ?? 60) * 1000, opts.signal);
      head = await storage.head(row.key);
    }
  }
  for (const pending of catalog.pendingRestores(storage.url).filter((r) => r.key === row.key)) catalog.markRestoreReady(pending.id);

  const target = path.resolve(opts.to ?? 'restored');
  await mkdir(target, { recursive: true });
  emit({ type: 'session-start', sessionId: row.sessionId, year: row.year, key: row.key, bytes: head.size, files: manifest.files.length });
  const got = await storage.get(row.key, opts.signal ? { signal: opts.signal } : {});
  const stages: NodeJS.ReadWriteStream[] = [progressCounter((done) => emit({ type: 'progress', sessionId: row.sessionId, done, total: head.size }))];
  if (manifest.encryption) stages.push(decryptStream(await decryptionKeys(config)));
  if (manifest.compression === 'gzip') stages.push(gunzipStream());
  const source = pipeline(got.body, ...(stages as [NodeJS.ReadWriteStream]), () => undefined) as unknown as NodeJS.ReadableStream;
  const report = await unpackTar(source as import('node:stream').Readable, target, { expected: manifest.files, ...(opts.signal ? { signal: opts.signal } : {}) });
  for (const pending of catalog.pendingRestores(storage.url).filter((r) => r.key === row.key)) catalog.markRestoreDone(pending.id);
  emit({ type: 'session-done', sessionId: row.sessionId, key: row.key, size: head.size, sha256: manifest.object.sha256, seconds: 0 });
  return { status: 'restored', sessionId: row.sessionId, key: row.key, to: path.join(target, row.sessionId), files: report.files, bytes: report.bytes };
}

/** A restored copy is readable: the store reports a restore that is no longer ongoing. */
function isRestored(info: ObjectInfo): boolean {
  return info.restore !== undefined && !info.restore.ongoing;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(signal.reason as Error);
    });
  });
}
