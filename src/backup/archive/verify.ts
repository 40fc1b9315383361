/**
 * Verifying archives. Default: HEAD each archive and its manifest and compare size and ETag with
 * the catalog, downloading nothing (safe and cheap on Glacier classes). `full`: download,
 * decrypt if needed, re-hash the stored object and every file in the tar against the manifest.
 */
import { readFile } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ArchiveRow, Catalog } from '../../catalog/index.js';
import { decryptStream, gunzipStream, hashingStream, listTar } from '../../codec/index.js';
import { isStorageError, type Storage } from '../../storage/index.js';
import type { ArchiveConfig } from './config.js';
import type { EventSink } from './events.js';
import { progressCounter, readManifest } from './manifest-io.js';

export interface VerifyOptions {
  sessionId?: string;
  full?: boolean;
  signal?: AbortSignal;
  onEvent?: EventSink;
}

export interface VerifyEntry {
  sessionId: string;
  key: string;
  ok: boolean;
  problems: string[];
  mode: 'head' | 'full';
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
    if (rows.length === 0) throw new Error(`no archived session "${opts.sessionId}" in the catalog for ${storage.url}; "offsite archive status" lists what is archived`);
  }
  const started = Date.now();
  const opId = catalog.startOperation('verify', { destination: storage.url, full: Boolean(opts.full), sessions: rows.length });
  emit({ type: 'run-start', op: 'verify', sessions: rows.length, bytes: rows.reduce((n, r) => n + (opts.full ? r.size ?? 0 : 0), 0) });
  const entries: VerifyEntry[] = [];
  for (const row of rows) {
    opts.signal?.throwIfAborted();
    emit({ type: 'session-start', sessionId: row.sessionId, year: row.year, key: row.key, bytes: opts.full ? row.size ?? 0 : 0, files: row.fileCount ?? 0 });
    const problems = opts.full ? await verifyFull(config, storage, row, emit, opts.signal) : await verifyHead(storage, row);
    const entry: VerifyEntry = { sessionId: row.sessionId, key: row.key, ok: problems.length === 0, problems, mode: opts.full ? 'full' : 'head' };
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

async function verifyHead(storage: Storage, row: ArchiveRow): Promise<string[]> {
  const problems: string[] = [];
  try {
    const head = await storage.head(row.key);
    if (head.size !== row.size) problems.push(`size ${head.size} in the store, ${row.size} in the catalog`);
    if (row.etag && head.etag !== row.etag) problems.push(`ETag ${head.etag} in the store, ${row.etag} in the catalog (the object was replaced)`);
  } catch (e) {
    problems.push(isStorageError(e, 'NotFound') ? `archive ${row.key} is missing from the store` : (e as Error).message);
  }
  try {
    await storage.head(row.manifestKey);
  } catch (e) {
    problems.push(isStorageError(e, 'NotFound') ? `manifest ${row.manifestKey} is missing` : (e as Error).message);
  }
  return problems;
}

async function verifyFull(config: ArchiveConfig, storage: Storage, row: ArchiveRow, emit: EventSink, signal?: AbortSignal): Promise<string[]> {
  const problems: string[] = [];
  let manifest;
  try {
    manifest = await readManifest(storage, row.manifestKey);
  } catch (e) {
    return [`manifest ${row.manifestKey}: ${(e as Error).message}`];
  }
  try {
    const got = await storage.get(row.key, signal ? { signal } : {});
    const stored = hashingStream({ md5: false });
    const counter = progressCounter((done) => emit({ type: 'progress', sessionId: row.sessionId, done, total: got.info.size }));
    const stages: NodeJS.ReadWriteStream[] = [counter, stored];
    if (manifest.encryption) stages.push(decryptStream(await decryptionKeys(config)));
    if (manifest.compression === 'gzip') stages.push(gunzipStream());
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
    if (digest.sha256 !== manifest.object.sha256) problems.push(`stored object SHA-256 ${digest.sha256} differs from the manifest's ${manifest.object.sha256}`);
    if (digest.bytes !== manifest.object.size) problems.push(`stored object is ${digest.bytes} bytes, the manifest says ${manifest.object.size}`);
    const entries = await listing.entries.catch((e: Error) => {
      problems.push(`the archive cannot be read as tar: ${e.message}`);
      return [];
    });
    const found = new Map(entries.map((f) => [f.path, f]));
    for (const f of problems.length ? [] : manifest.files) {
      if (f.type !== 'file') continue;
      const g = found.get(f.path);
      if (!g) problems.push(`${f.path} is missing from the archive`);
      else if (g.sha256 !== f.sha256 || g.size !== f.size) problems.push(`${f.path} differs from the manifest`);
      if (problems.length > 10) break;
    }
  } catch (e) {
    problems.push(`cannot read the archive back: ${(e as Error).message}`);
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
