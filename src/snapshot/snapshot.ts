/**
 * Snapshots of JSON-serialisable state, one call each: snapshot() / restore() / verifySnapshot()
 * / getMetadata() / snapshotExists() / deleteSnapshot() / listSnapshots(). Values are buffered
 * whole (they are in memory anyway); each snapshot is one object, so a write is atomic on every
 * store: a reader sees the previous snapshot or the new one, never a mix.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { isStorageError, type GetResult, type ObjectInfo, type Storage } from '../storage/index.js';
import { SnapshotError, SnapshotIntegrityError, SnapshotNotFoundError } from './errors.js';
import {
  assertSnapshotKey,
  assertSnapshotPrefix,
  buildUserMetadata,
  CONTENT_TYPE,
  decodeStored,
  encodeValue,
  objectKeyFor,
  parseUserMetadata,
  refuseStoredSize,
  snapshotKeyOf,
  toSnapshotMetadata,
  type DecodeResult,
  type RecordedSnapshot,
} from './format.js';
import { withSnapshotStorage } from './location.js';
import type {
  ListSnapshotsOptions,
  SnapshotCallOptions,
  SnapshotListEntry,
  SnapshotMetadata,
  SnapshotOptions,
  SnapshotVerification,
} from './types.js';

/**
 * Stores `value` as JSON, gzipped, at `<key>.json.gz`, replacing any snapshot at that key.
 * Everything is validated (key, JSON form, metadata size) before any storage is touched.
 */
export async function snapshot(value: unknown, key: string, opts: SnapshotOptions = {}): Promise<SnapshotMetadata> {
  assertSnapshotKey(key);
  opts.signal?.throwIfAborted();
  const encoded = await encodeValue(key, value);
  const createdAt = new Date().toISOString();
  const metadata = buildUserMetadata(key, encoded, createdAt, opts);
  return withSnapshotStorage(opts, async (storage) => {
    const put = await storage.put(objectKeyFor(key), encoded.stored, { metadata, contentType: CONTENT_TYPE, ...signalOf(opts) });
    const recorded = parseUserMetadata(key, storage.url, { key: put.key, size: put.size, etag: put.etag, lastModified: new Date(createdAt), storageClass: 'STANDARD', metadata });
    return toSnapshotMetadata(key, storage.url, recorded, { etag: put.etag, size: put.size, contentType: CONTENT_TYPE });
  });
}

/**
 * Downloads, gunzips and checks the snapshot at `key`, then returns its value. `T` is not checked
 * at run time: the value is whatever JSON.parse gives back.
 * Throws SnapshotNotFoundError (code 'NotFound') when there is none, SnapshotIntegrityError
 * (code 'SnapshotCorrupted') when the bytes fail the check: a corrupted value is never returned.
 */
export async function restore<T = unknown>(key: string, opts: SnapshotCallOptions = {}): Promise<T> {
  assertSnapshotKey(key);
  return withSnapshotStorage(opts, async (storage) => {
    const got = await openObject(storage, key, opts);
    let recorded: RecordedSnapshot;
    try {
      recorded = parseUserMetadata(key, storage.url, got.info);
    } catch (e) {
      got.body.destroy();
      throw e;
    }
    // The size first, from the response headers: a hostile object is refused unread.
    const refused = refuseStoredSize(got.info.size, recorded);
    if (refused !== undefined) {
      got.body.destroy();
      throw integrityError(key, storage.url, recorded, { reason: refused, sha256: undefined, storedSha256: undefined });
    }
    const stored = await readAtMost(got.body, got.info.size);
    const decoded = stored ? await decodeStored(stored, recorded) : overflowed(got.info.size);
    if (!decoded.ok) throw integrityError(key, storage.url, recorded, decoded);
    return decoded.value as T;
  });
}

/**
 * Downloads and checks the snapshot at `key` without returning its value. Corruption (including
 * an object without snapshot metadata) is reported as `ok: false`, not thrown; a missing
 * snapshot and storage failures are thrown as in restore().
 */
export async function verifySnapshot(key: string, opts: SnapshotCallOptions = {}): Promise<SnapshotVerification> {
  assertSnapshotKey(key);
  return withSnapshotStorage(opts, async (storage) => {
    const got = await openObject(storage, key, opts);
    const base = { key, objectKey: objectKeyFor(key), storedSize: got.info.size };
    let recorded: RecordedSnapshot;
    try {
      recorded = parseUserMetadata(key, storage.url, got.info);
    } catch (e) {
      // A newer format is not corruption: the caller needs a newer Offsite, not a new snapshot.
      if (!(e instanceof SnapshotError) || e.code !== 'NotASnapshot') {
        got.body.destroy();
        throw e;
      }
      const actualStoredSha256 = await sha256OfStream(got.body);
      return { ...base, ok: false, expectedSha256: undefined, actualSha256: undefined, expectedStoredSha256: undefined, actualStoredSha256, size: undefined, error: e.message };
    }
    const refused = refuseStoredSize(got.info.size, recorded);
    if (refused !== undefined) {
      // Hashed as it streams past, never held or inflated: verify reports what is stored.
      const actualStoredSha256 = await sha256OfStream(got.body);
      const error = integrityError(key, storage.url, recorded, { reason: refused, sha256: undefined, storedSha256: actualStoredSha256 }).message;
      return { ...base, ok: false, expectedSha256: recorded.sha256, actualSha256: undefined, expectedStoredSha256: recorded.storedSha256, actualStoredSha256, size: undefined, error };
    }
    const stored = await readAtMost(got.body, got.info.size);
    const decoded = stored ? await decodeStored(stored, recorded, { inflateMismatched: true }) : overflowed(got.info.size);
    return {
      ...base,
      ok: decoded.ok,
      expectedSha256: recorded.sha256,
      actualSha256: decoded.sha256,
      expectedStoredSha256: recorded.storedSha256,
      actualStoredSha256: decoded.storedSha256,
      size: decoded.size,
      ...(decoded.ok ? {} : { error: integrityError(key, storage.url, recorded, decoded).message }),
    };
  });
}

/** The snapshot's metadata from a HEAD request only (nothing is downloaded). */
export async function getMetadata(key: string, opts: SnapshotCallOptions = {}): Promise<SnapshotMetadata> {
  assertSnapshotKey(key);
  return withSnapshotStorage(opts, async (storage) => {
    const info = await headSnapshot(storage, key, opts);
    return toSnapshotMetadata(key, storage.url, parseUserMetadata(key, storage.url, info), info);
  });
}

/** Whether an object exists at `<key>.json.gz` (one HEAD; its content is not checked). */
export async function snapshotExists(key: string, opts: SnapshotCallOptions = {}): Promise<boolean> {
  assertSnapshotKey(key);
  return withSnapshotStorage(opts, async (storage) => {
    try {
      await storage.head(objectKeyFor(key), signalOf(opts));
      return true;
    } catch (e) {
      if (isStorageError(e, 'NotFound')) return false;
      throw e;
    }
  });
}

/**
 * Deletes the snapshot at `key`. Returns true if there was one, false if there was nothing to
 * delete (a HEAD first: S3 itself does not say whether a DELETE removed anything).
 */
export async function deleteSnapshot(key: string, opts: SnapshotCallOptions = {}): Promise<boolean> {
  assertSnapshotKey(key);
  return withSnapshotStorage(opts, async (storage) => {
    const objectKey = objectKeyFor(key);
    try {
      await storage.head(objectKey, signalOf(opts));
    } catch (e) {
      if (isStorageError(e, 'NotFound')) return false;
      throw e;
    }
    await storage.delete(objectKey, signalOf(opts));
    return true;
  });
}

/**
 * The snapshots whose keys start with `prefix`, in key order (S3 order: UTF-8 bytes of the object
 * keys). One LIST request per 1000 objects and no HEADs, so entries carry what a listing knows;
 * call getMetadata() for the rest. Objects not named `*.json.gz` are skipped.
 */
export async function listSnapshots(opts: ListSnapshotsOptions = {}): Promise<SnapshotListEntry[]> {
  const prefix = opts.prefix ?? '';
  assertSnapshotPrefix(prefix);
  return withSnapshotStorage(opts, async (storage) => {
    const entries: SnapshotListEntry[] = [];
    for await (const entry of storage.list({ prefix, ...signalOf(opts) })) {
      if (entry.type !== 'object') continue;
      const key = snapshotKeyOf(entry.key);
      if (key === undefined) continue;
      entries.push({ key, objectKey: entry.key, storedSize: entry.size, lastModified: entry.lastModified, etag: entry.etag });
    }
    return entries;
  });
}

// --- helpers -----------------------------------------------------------------------------------

function signalOf(opts: SnapshotCallOptions): { signal?: AbortSignal } {
  return opts.signal ? { signal: opts.signal } : {};
}

async function headSnapshot(storage: Storage, key: string, opts: SnapshotCallOptions): Promise<ObjectInfo> {
  try {
    return await storage.head(objectKeyFor(key), signalOf(opts));
  } catch (e) {
    throw notFound(e, storage, key);
  }
}

/** One GET: the body and the metadata of that same object version (not read yet). */
async function openObject(storage: Storage, key: string, opts: SnapshotCallOptions): Promise<GetResult> {
  try {
    return await storage.get(objectKeyFor(key), signalOf(opts));
  } catch (e) {
    throw notFound(e, storage, key);
  }
}

/** The whole body if it holds at most `limit` bytes; undefined (and the rest unread) if more. */
async function readAtMost(body: Readable, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer | string>) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += b.length;
    if (size > limit) {
      body.destroy();
      return undefined;
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

/** The body went on past its announced size (never seen from a conforming store). */
function overflowed(size: number): Extract<DecodeResult, { ok: false }> {
  return { ok: false, reason: `the stored object holds more than the ${size} bytes announced`, size: undefined, sha256: undefined, storedSha256: '(not read in full)' };
}

async function sha256OfStream(body: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of body as AsyncIterable<Buffer | string>) hash.update(chunk);
  return hash.digest('hex');
}

function notFound(e: unknown, storage: Storage, key: string): unknown {
  return isStorageError(e, 'NotFound') ? new SnapshotNotFoundError(key, objectKeyFor(key), storage.url, e) : e;
}

/** What failed; storedSha256 undefined when the object was refused before it was downloaded. */
interface Failure {
  reason: string;
  sha256: string | undefined;
  storedSha256: string | undefined;
  cause?: unknown;
}

function integrityError(key: string, storageUrl: string, recorded: RecordedSnapshot, decoded: Failure): SnapshotIntegrityError {
  return new SnapshotIntegrityError(
    {
      key,
      objectKey: objectKeyFor(key),
      storageUrl,
      expectedSha256: recorded.sha256,
      actualSha256: decoded.sha256,
      expectedStoredSha256: recorded.storedSha256,
      actualStoredSha256: decoded.storedSha256,
      reason: decoded.reason,
    },
    decoded.cause,
  );
}
