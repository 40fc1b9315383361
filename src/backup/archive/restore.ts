/**
 * Restoring a session: stream the archive down, hash it, decrypt and gunzip as the catalog says
 * it was uploaded, untar safely (entries escaping the target are refused) into a private
 * staging directory beside the target, check the files against the manifest when the manifest
 * can be trusted (trust.ts), and move the session into place only once all of that passed and
 * the object's SHA-256 matched the catalog: a refused or failed restore leaves nothing new.
 * An archive in a Glacier class is first restored by the store: the request is recorded in the
 * catalog as pending; with `wait`, the store is polled until the object is readable.
 */
import path from 'node:path';
import { pipeline, type Readable } from 'node:stream';
import type { Catalog } from '../../catalog/index.js';
import { decryptStream, gunzipStream, hashingStream, unpackTar } from '../../codec/index.js';
import { ARCHIVE_STORAGE_CLASSES, type ObjectInfo, type Storage } from '../../storage/index.js';
import { isEncrypted, type ArchiveConfig } from './config.js';
import { ArchiveError } from './errors.js';
import type { EventSink } from './events.js';
import { loadArchiveManifestKey } from './keys.js';
import { progressCounter } from './manifest-io.js';
import { assertTargetFree, openStaging } from './staging.js';
import { assessArchive, type ArchiveTrust } from './trust.js';
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
  /** Accept a catalog row rebuilt from a manifest without a MAC (see trust.ts). */
  trustUnsignedManifests?: boolean;
  signal?: AbortSignal;
  onEvent?: EventSink;
}

export type RestoreOutcome =
  | {
      status: 'restored';
      sessionId: string;
      key: string;
      to: string;
      /** Entries other than directories (files, links), as `list-sessions` counts them. */
      files: number;
      bytes: number;
      /** What vouched for the archive: this catalog's upload, an authenticated manifest, or the user's --trust-unsigned-manifests. */
      manifest: ArchiveTrust['basis'];
      /** 'manifest': every file was checked against the manifest; 'object': the manifest was not usable, only the whole archive's SHA-256 was. */
      checked: 'manifest' | 'object';
      warnings: string[];
    }
  | { status: 'pending'; sessionId: string; key: string; detail: string };

export async function restoreSession(config: ArchiveConfig, storage: Storage, catalog: Catalog, opts: RestoreOptions): Promise<RestoreOutcome> {
  const emit: EventSink = opts.onEvent ?? (() => undefined);
  const row = catalog.findDoneArchive(storage.url, opts.sessionId);
  if (!row || row.sha256 === null || row.size === null) {
    throw new ArchiveError('SessionNotArchived', `no archived session "${opts.sessionId}" in the catalog for ${storage.url}; run "offsite archive catalog rebuild" if the catalog is new`);
  }
  // Every refusal that needs no download comes first, so it writes nothing.
  const trust = await assessArchive(storage, row, {
    manifestKey: await loadArchiveManifestKey(config),
    trustUnsigned: Boolean(opts.trustUnsignedManifests),
    configEncrypted: isEncrypted(config),
  });
  for (const message of trust.warnings) emit({ type: 'notice', sessionId: row.sessionId, message });
  const target = path.resolve(opts.to ?? 'restored');
  // Before a Glacier restore is paid for, too.
  await assertTargetFree(target, row.sessionId);

  let head = await storage.head(row.key);
  if (head.size !== row.size) {
    throw new ArchiveError(
      'ArchiveCorrupted',
      `${row.key} is ${head.size} bytes in the store, but the catalog recorded ${row.size} bytes at upload: the archive was replaced or damaged, nothing was restored`,
    );
  }
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

  // Decryption as the catalog recorded the upload, never as the bucket says: a manifest
  // claiming "not encrypted" cannot make Offsite untar what an attacker put there.
  const keys = row.encrypted ? await decryptionKeys(config) : undefined;
  const staging = await openStaging(target, row.sessionId);
  emit({ type: 'session-start', sessionId: row.sessionId, year: row.year, key: row.key, bytes: head.size, files: row.fileCount ?? 0 });
  try {
    const got = await storage.get(row.key, opts.signal ? { signal: opts.signal } : {});
    const hash = hashingStream({ md5: false });
    const stages: NodeJS.ReadWriteStream[] = [progressCounter((done) => emit({ type: 'progress', sessionId: row.sessionId, done, total: head.size })), hash];
    if (keys) stages.push(decryptStream(keys));
    if (row.compression === 'gzip') stages.push(gunzipStream());
    const source = pipeline(got.body, ...(stages as [NodeJS.ReadWriteStream]), () => undefined) as unknown as Readable;
    const report = await unpackTar(source, staging.dir, { ...(trust.files ? { expected: trust.files } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });
    // The extraction read the object to its end: the hash covers all of it.
    const digest = hash.digest();
    if (digest.sha256 !== row.sha256 || digest.bytes !== row.size) {
      throw new ArchiveError(
        'ArchiveCorrupted',
        `${row.key} has SHA-256 ${digest.sha256} (${digest.bytes} bytes), but the catalog recorded ${row.sha256} (${row.size} bytes) at upload: the archive was replaced or damaged, nothing was restored`,
      );
    }
    await staging.commit(row.sessionId);
    for (const pending of catalog.pendingRestores(storage.url).filter((r) => r.key === row.key)) catalog.markRestoreDone(pending.id);
    emit({ type: 'session-done', sessionId: row.sessionId, key: row.key, size: head.size, sha256: digest.sha256, seconds: 0 });
    return {
      status: 'restored',
      sessionId: row.sessionId,
      key: row.key,
      to: path.join(target, row.sessionId),
      files: report.files + report.symlinks,
      bytes: report.bytes,
      manifest: trust.basis,
      checked: trust.files ? 'manifest' : 'object',
      warnings: trust.warnings,
    };
  } catch (e) {
    await staging.discard().catch((cleanup: unknown) => {
      emit({ type: 'notice', sessionId: row.sessionId, message: `could not remove the staging directory ${staging.dir} (${(cleanup as Error).message}): remove it by hand` });
    });
    throw e;
  }
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
