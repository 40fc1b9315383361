/**
 * Verifying archives against the catalog. Default: HEAD each archive and compare its size and
 * ETag with the catalog, and read its manifest (small, in STANDARD) to check it is still the
 * one recorded or authenticated (trust.ts); the archive itself is not downloaded (safe and
 * cheap on Glacier classes). `full`: download, decrypt as the catalog says, compare the
 * object's SHA-256 and size with the catalog, and every file in the tar with the manifest.
 */
import { readFile } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ArchiveRow, Catalog } from '../../catalog/index.js';
import { decryptStream, gunzipStream, hashingStream, listTar } from '../../codec/index.js';
import { isStorageError, type Storage } from '../../storage/index.js';
import { isEncrypted, type ArchiveConfig } from './config.js';
import type { EventSink } from './events.js';
import { ArchiveError } from './errors.js';
import { loadArchiveManifestKey } from './keys.js';
import { progressCounter } from './manifest-io.js';
import { assessArchive, type ArchiveTrust, type TrustOptions } from './trust.js';

export interface VerifyOptions {
  sessionId?: string;
  full?: boolean;
  /** Accept catalog rows rebuilt from manifests without a MAC (reported as unauthenticated). */
  trustUnsignedManifests?: boolean;
  signal?: AbortSignal;
  onEvent?: EventSink;
}

export interface VerifyEntry {
  sessionId: string;
  key: string;
  ok: boolean;
  problems: string[];
  mode: 'head' | 'full';
  /** What vouched for the archive's facts; undefined when they could not be believed. */
  manifest?: ArchiveTrust['basis'];
}

export interface VerifyResult {
  ok: boolean;
  checked: number;
  failed: VerifyEntry[];
  entries: VerifyEntry[];
}

export async function verifyArchives(config: ArchiveConfig, storage: Storage, catalog: Catalog, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const emit: EventSink = opts.onEvent ?? (() => undefined);
  let rows = catalog.listArchives({ destination: storage.url, status: 'done' });
  if (opts.sessionId !== undefined) {
    rows = rows.filter((r) => r.sessionId === opts.sessionId);
    if (rows.length === 0) throw new ArchiveError('SessionNotArchived', `no archived session "${opts.sessionId}" in the catalog for ${storage.url}; "offsite archive status" lists what is archived`);
  }
  const trustOptions: TrustOptions = { manifestKey: await loadArchiveManifestKey(config), trustUnsigned: Boolean(opts.trustUnsignedManifests), configEncrypted: isEncrypted(config) };
  const started = Date.now();
  const opId = catalog.startOperation('verify', { destination: storage.url, full: Boolean(opts.full), sessions: rows.length });
  emit({ type: 'run-start', op: 'verify', sessions: rows.length, bytes: rows.reduce((n, r) => n + (opts.full ? r.size ?? 0 : 0), 0) });
  const entries: VerifyEntry[] = [];
  for (const row of rows) {
    opts.signal?.throwIfAborted();
    emit({ type: 'session-start', sessionId: row.sessionId, year: row.year, key: row.key, bytes: opts.full ? row.size ?? 0 : 0, files: row.fileCount ?? 0 });
    const problems: string[] = [];
    let trust: ArchiveTrust | undefined;
    try {
      trust = await assessArchive(storage, row, trustOptions);
      for (const message of trust.warnings.filter((w) => !trust!.manifestProblem || !w.startsWith(trust!.manifestProblem))) emit({ type: 'notice', sessionId: row.sessionId, message });
      if (trust.manifestProblem) problems.push(trust.manifestProblem);
    } catch (e) {
      // The row's facts cannot be believed: nothing to compare the archive with.
      problems.push((e as Error).message);
    }
    if (trust) problems.push(...(opts.full ? await verifyFull(config, storage, row, trust, emit, opts.signal) : await verifyHead(storage, row)));
    const entry: VerifyEntry = { sessionId: row.sessionId, key: row.key, ok: problems.length === 0, problems, mode: opts.full ? 'full' : 'head', ...(trust ? { manifest: trust.basis } : {}) };
    entries.push(entry);
    catalog.recordVerify(row.id, entry.ok, entry.ok ? `${entry.mode} ok` : problems.join('; '));
    if (entry.ok) emit({ type: 'session-done', sessionId: row.sessionId, key: row.key, size: row.size ?? 0, sha256: row.sha256 ?? '', seconds: 0 });
    else emit({ type: 'session-failed', sessionId: row.sessionId, error: problems.join('; ') });
  }
  const failed = entries.filter((e) => !e.ok);
  const seconds = (Date.now() - started) / 1000;
  catalog.finishOperation(opId, { status: failed.length ? 'failed' : 'ok', bytes: 0, seconds, ...(failed.length ? { error: `${failed.length} archive(s) failed verification` } : {}) });
  emit({ type: 'run-done', op: 'verify', ok: entries.length - failed.length, skipped: 0, failed: failed.length, bytes: 0, seconds });
  return { ok: failed.length === 0, checked: entries.length, failed, entries };
}

/** HEAD against the catalog; `worthReading` is false when a download could not match anyway. */
async function checkHead(storage: Storage, row: ArchiveRow): Promise<{ problems: string[]; worthReading: boolean }> {
  const problems: string[] = [];
  try {
    const head = await storage.head(row.key);
    if (head.size !== row.size) problems.push(`size ${head.size} in the store, ${row.size} in the catalog (the object was replaced or damaged)`);
    if (row.etag && head.etag !== row.etag) problems.push(`ETag ${head.etag} in the store, ${row.etag} in the catalog (the object was replaced)`);
    return { problems, worthReading: head.size === row.size };
  } catch (e) {
    problems.push(isStorageError(e, 'NotFound') ? `archive ${row.key} is missing from the store` : (e as Error).message);
    return { problems, worthReading: false };
  }
}

async function verifyHead(storage: Storage, row: ArchiveRow): Promise<string[]> {
  return (await checkHead(storage, row)).problems;
}

async function verifyFull(config: ArchiveConfig, storage: Storage, row: ArchiveRow, trust: ArchiveTrust, emit: EventSink, signal?: AbortSignal): Promise<string[]> {
  const { problems, worthReading } = await checkHead(storage, row);
  // Another size says it all (and such an object cannot match the catalog's hash): no download.
  if (!worthReading) return problems;
  try {
    // Decrypted as the catalog recorded the upload: the bucket cannot switch decryption off.
    const keys = row.encrypted ? await decryptionKeys(config) : undefined;
    const got = await storage.get(row.key, signal ? { signal } : {});
    const stored = hashingStream({ md5: false });
    const counter = progressCounter((done) => emit({ type: 'progress', sessionId: row.sessionId, done, total: got.info.size }));
    const stages: NodeJS.ReadWriteStream[] = [counter, stored];
    if (keys) stages.push(decryptStream(keys));
    if (row.compression === 'gzip') stages.push(gunzipStream());
    const listing = listTar();
    // The tar listing may give up on a damaged archive; the download goes on to the end anyway,
    // so the stored object's SHA-256 is always compared (the clearest report of corruption).
    let listingFailed: Error | undefined;
    listing.sink.on('error', (e: Error) => (listingFailed ??= e));
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        if (listingFailed || listing.sink.destroyed) return cb();
        if (listing.sink.write(chunk)) return cb();
        // Wait for room, or for the listing to fail (then the rest is only hashed).
        const release = () => {
          listing.sink.off('drain', release);
          listing.sink.off('close', release);
          cb();
        };
        listing.sink.once('drain', release);
        listing.sink.once('close', release);
      },
      final(cb) {
        if (!listingFailed) listing.sink.end();
        cb();
      },
    });
    await pipeline([got.body, ...stages, sink] as unknown as [NodeJS.ReadableStream, NodeJS.WritableStream]);
    const digest = stored.digest();
    if (digest.sha256 !== row.sha256) problems.push(`stored object SHA-256 ${digest.sha256} differs from the ${row.sha256} the catalog recorded at upload (the object was replaced or damaged)`);
    if (digest.bytes !== row.size) problems.push(`stored object is ${digest.bytes} bytes, the catalog recorded ${row.size}`);
    const entries = await listing.entries.catch((e: Error) => {
      problems.push(`the archive cannot be read as tar: ${e.message}`);
      return [];
    });
    const found = new Map(entries.map((f) => [f.path, f]));
    for (const f of problems.length || !trust.files ? [] : trust.files) {
      if (f.type !== 'file') continue;
      const g = found.get(f.path);
      if (!g) problems.push(`${f.path} is missing from the archive`);
      else if (g.sha256 !== f.sha256 || g.size !== f.size) problems.push(`${f.path} differs from the manifest`);
      if (problems.length > 10) break;
    }
  } catch (e) {
    problems.push(`cannot read the archive back as it was uploaded: ${(e as Error).message}`);
  }
  return problems;
}

/** Decryption keys: the identity file of the config, or the passphrase from the environment. */
export async function decryptionKeys(config: ArchiveConfig): Promise<{ identities?: string[]; passphrase?: string }> {
  if (config.identityFile) {
    const text = await readFile(config.identityFile, 'utf8').catch((e: Error) => {
      throw new Error(`cannot read the age identity file ${config.identityFile}: ${e.message}`);
    });
    const identities = text.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('AGE-SECRET-KEY-'));
    if (identities.length === 0) throw new Error(`${config.identityFile} holds no age identity (a line starting AGE-SECRET-KEY-)`);
    return { identities };
  }
  if (config.passphrase) return { passphrase: config.passphrase };
  throw new Error('the archive is encrypted: set encryption.identity_file (or OFFSITE_ARCHIVE_IDENTITY_FILE) or OFFSITE_ARCHIVE_PASSPHRASE to decrypt it');
}
