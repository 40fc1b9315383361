/**
 * The on-storage format, version 1: one object `<key>.json.gz` holding the gzip of the JSON text,
 * with everything else in the object's user metadata (x-amz-meta-*), so `aws s3 cp ... - | gunzip`
 * gives back the JSON and a HEAD gives back the metadata.
 */
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { createGunzip, gzip as gzipCallback } from 'node:zlib';
import type { ObjectInfo } from '../storage/index.js';
import { SnapshotError, type SnapshotErrorCode } from './errors.js';
import type { SnapshotMetadata, SnapshotOptions } from './types.js';

const gzip = promisify(gzipCallback);

export const FORMAT_VERSION = 1;
export const OBJECT_SUFFIX = '.json.gz';
export const CONTENT_TYPE = 'application/gzip';
/** S3 counts the UTF-8 bytes of every user-metadata name and value (without "x-amz-meta-"). */
export const MAX_USER_METADATA_BYTES = 2048;

/** User-metadata names. Short, because they count toward the 2 KB too. */
const META = {
  format: 'offsite-snapshot',
  createdAt: 'created-at',
  size: 'size',
  sha256: 'sha256',
  storedSize: 'stored-size',
  storedSha256: 'stored-sha256',
  encoding: 'content-encoding',
  agentId: 'agent-id',
  sessionId: 'session-id',
  description: 'description',
} as const;

/** The caller-supplied fields; everything else is fixed-size. */
const FREE_TEXT_FIELDS = ['agentId', 'sessionId', 'description'] as const;

// --- keys --------------------------------------------------------------------------------------

/**
 * Snapshot keys behave the same on a local directory and on S3: "/"-separated, no empty, "." or
 * ".." segments (they would escape or alias on a file system), no control characters.
 */
export function assertSnapshotKey(key: unknown, what = 'snapshot key'): asserts key is string {
  const fail = (reason: string): never => {
    throw new SnapshotError('InvalidSnapshotKey', `invalid ${what} ${JSON.stringify(key)}: ${reason}`, typeof key === 'string' ? { key } : {});
  };
  if (typeof key !== 'string' || key === '') fail('it must be a non-empty string');
  const k = key as string;
  if (k.startsWith('/')) fail('it must not start with "/" (keys are relative to the snapshot storage)');
  if (k.endsWith('/')) fail('it must not end with "/"');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(k)) fail('control characters are not allowed');
  const segments = k.split('/');
  if (segments.includes('..')) fail('".." segments are not allowed');
  if (segments.some((s) => s === '' || s === '.')) fail('empty or "." segments ("//", "/./") are not allowed');
  if (Buffer.byteLength(k) + OBJECT_SUFFIX.length > 1024) fail(`longer than ${1024 - OBJECT_SUFFIX.length} bytes`);
}

/** A listing prefix may end in "/" or be empty, but must not escape either. */
export function assertSnapshotPrefix(prefix: unknown): asserts prefix is string {
  if (typeof prefix !== 'string') throw new SnapshotError('InvalidSnapshotOptions', `prefix must be a string, not ${typeof prefix}`);
  if (prefix === '') return;
  assertSnapshotKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix, 'snapshot prefix');
}

export function objectKeyFor(key: string): string {
  return `${key}${OBJECT_SUFFIX}`;
}

/** The snapshot key of an object key, or undefined for objects that are not snapshots. */
export function snapshotKeyOf(objectKey: string): string | undefined {
  return objectKey.endsWith(OBJECT_SUFFIX) && objectKey.length > OBJECT_SUFFIX.length ? objectKey.slice(0, -OBJECT_SUFFIX.length) : undefined;
}

// --- body --------------------------------------------------------------------------------------

export interface EncodedSnapshot {
  json: Buffer;
  stored: Buffer;
  sha256: string;
  storedSha256: string;
}

export async function encodeValue(key: string, value: unknown): Promise<EncodedSnapshot> {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (e) {
    throw new SnapshotError('NotSerializable', `snapshot "${key}": the value cannot be serialised as JSON: ${(e as Error).message}`, { key, cause: e });
  }
  // JSON.stringify returns undefined for undefined, functions and symbols: nothing to restore.
  if (text === undefined) throw new SnapshotError('NotSerializable', `snapshot "${key}": a ${typeof value} has no JSON form; snapshot an object, array, string, number, boolean or null`, { key });
  const json = Buffer.from(text, 'utf8');
  const stored = await gzip(json);
  return { json, stored, sha256: sha256Hex(json), storedSha256: sha256Hex(stored) };
}

export type DecodeResult =
  | { ok: true; value: unknown; size: number; sha256: string; storedSha256: string }
  | { ok: false; reason: string; size: number | undefined; sha256: string | undefined; storedSha256: string; cause?: unknown };

/**
 * Gunzips, hashes and parses stored bytes, checking them against the recorded metadata. The JSON
 * hash is the authority: it covers exactly what restore() returns.
 */
export async function decodeStored(stored: Buffer, recorded: RecordedSnapshot): Promise<DecodeResult> {
  const storedSha256 = sha256Hex(stored);
  let out: GunzipResult;
  try {
    out = await gunzipHashing(stored, recorded.size);
  } catch (e) {
    return { ok: false, reason: `not valid gzip (${(e as Error).message})`, size: undefined, sha256: undefined, storedSha256, cause: e };
  }
  const { sha256, size, kept } = out;
  if (sha256 !== recorded.sha256 || kept === undefined) {
    return { ok: false, reason: `SHA-256 mismatch (${size} bytes decompressed, ${recorded.size} recorded)`, size, sha256, storedSha256 };
  }
  try {
    return { ok: true, value: JSON.parse(kept.toString('utf8')), size, sha256, storedSha256 };
  } catch (e) {
    return { ok: false, reason: `not valid JSON (${(e as Error).message})`, size, sha256, storedSha256, cause: e };
  }
}

interface GunzipResult {
  sha256: string;
  size: number;
  /** The decompressed bytes, or undefined once they exceeded `keepAtMost`. */
  kept: Buffer | undefined;
}

/**
 * Hashes all of the output but keeps at most the recorded size: a corrupted (or hostile) object
 * that inflates far beyond it still gets an actual hash to report, without holding it in memory.
 */
async function gunzipHashing(stored: Buffer, keepAtMost: number): Promise<GunzipResult> {
  const hash = createHash('sha256');
  const chunks: Buffer[] = [];
  let size = 0;
  const gunzip = createGunzip();
  gunzip.end(stored);
  for await (const chunk of gunzip as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
    if (size <= keepAtMost) chunks.push(chunk);
  }
  return { sha256: hash.digest('hex'), size, kept: size <= keepAtMost ? Buffer.concat(chunks) : undefined };
}

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

// --- metadata ----------------------------------------------------------------------------------

/**
 * Header values must be ASCII: free text is percent-encoded (encodeURIComponent), which keeps
 * plain ASCII readable in `aws s3api head-object` and round-trips every Unicode string.
 */
export function buildUserMetadata(key: string, encoded: EncodedSnapshot, createdAt: string, opts: SnapshotOptions): Record<string, string> {
  const metadata: Record<string, string> = {
    [META.format]: String(FORMAT_VERSION),
    [META.createdAt]: createdAt,
    [META.size]: String(encoded.json.length),
    [META.sha256]: encoded.sha256,
    [META.storedSize]: String(encoded.stored.length),
    [META.storedSha256]: encoded.storedSha256,
    [META.encoding]: 'gzip',
  };
  for (const field of FREE_TEXT_FIELDS) {
    const value: unknown = opts[field];
    if (value === undefined) continue;
    if (typeof value !== 'string') throw new SnapshotError('InvalidSnapshotOptions', `snapshot "${key}": ${field} must be a string, not ${typeof value}`, { key });
    metadata[META[field]] = encodeURIComponent(value);
  }
  const total = metadataBytes(metadata);
  if (total > MAX_USER_METADATA_BYTES) {
    const fixed = metadataBytes(Object.fromEntries(Object.entries(metadata).filter(([name]) => !FREE_TEXT_FIELDS.some((f) => META[f] === name))));
    const longest = FREE_TEXT_FIELDS.filter((f) => metadata[META[f]] !== undefined).sort((a, b) => metadata[META[b]]!.length - metadata[META[a]]!.length)[0]!;
    const encodedLength = metadata[META[longest]]!.length;
    throw new SnapshotError(
      'SnapshotMetadataTooLarge',
      `snapshot "${key}": ${longest} is too long: ${encodedLength} bytes once percent-encoded for HTTP headers ` +
        `(${Buffer.byteLength(opts[longest]!)} bytes of UTF-8; each non-ASCII byte takes 3), and the metadata would total ${total} bytes, ` +
        `over S3's ${MAX_USER_METADATA_BYTES}-byte limit on user metadata (${MAX_USER_METADATA_BYTES - fixed} bytes are left for agentId, sessionId and description together). ` +
        'Shorten it, or put long text inside the snapshot value instead.',
      { key },
    );
  }
  return metadata;
}

function metadataBytes(metadata: Record<string, string>): number {
  return Object.entries(metadata).reduce((n, [name, value]) => n + Buffer.byteLength(name) + Buffer.byteLength(value), 0);
}

/** The metadata fields restore() and verify need, parsed from a HEAD or GET. */
export interface RecordedSnapshot {
  formatVersion: number;
  createdAt: string;
  size: number;
  sha256: string;
  storedSize: number | undefined;
  storedSha256: string | undefined;
  agentId?: string;
  sessionId?: string;
  description?: string;
}

/**
 * Reads snapshot metadata from an object's user metadata. An object without a format version
 * or a well-formed SHA-256 cannot be checked, so it is refused rather than trusted.
 */
export function parseUserMetadata(key: string, storageUrl: string, info: ObjectInfo): RecordedSnapshot {
  const m = info.metadata;
  const refuse = (code: SnapshotErrorCode, detail: string): never => {
    throw new SnapshotError(code, `object "${info.key}" in ${storageUrl} is not a readable snapshot: ${detail}`, { key });
  };
  const version = Number(m[META.format]);
  if (m[META.format] === undefined) refuse('NotASnapshot', `it has no "${META.format}" metadata (it was not written by snapshot(), or its metadata was lost in a copy)`);
  if (!Number.isInteger(version) || version < 1) refuse('NotASnapshot', `format version "${m[META.format]}" is not a number`);
  if (version > FORMAT_VERSION) refuse('UnsupportedSnapshotFormat', `it uses format version ${version}, and this Offsite reads up to ${FORMAT_VERSION}; upgrade Offsite`);
  const sha256 = m[META.sha256];
  if (!sha256 || !/^[0-9a-f]{64}$/.test(sha256)) refuse('NotASnapshot', 'its recorded sha256 is missing or malformed, so its content cannot be checked');
  const size = Number(m[META.size]);
  if (!Number.isSafeInteger(size) || size < 0) refuse('NotASnapshot', `its recorded size "${m[META.size]}" is not a byte count`);
  const storedSize = Number(m[META.storedSize]);
  const recorded: RecordedSnapshot = {
    formatVersion: version,
    createdAt: m[META.createdAt] ?? '',
    size,
    sha256: sha256!,
    storedSize: Number.isSafeInteger(storedSize) ? storedSize : undefined,
    storedSha256: m[META.storedSha256],
  };
  for (const field of FREE_TEXT_FIELDS) {
    const raw = m[META[field]];
    if (raw !== undefined) recorded[field] = decodeText(raw);
  }
  return recorded;
}

/** A value set by another tool may not be percent-encoded: keep it as it is then. */
function decodeText(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

export function toSnapshotMetadata(
  key: string,
  storageUrl: string,
  recorded: RecordedSnapshot,
  object: { etag: string; size: number; contentType?: string | undefined },
): SnapshotMetadata {
  return {
    key,
    objectKey: objectKeyFor(key),
    storageUrl,
    formatVersion: recorded.formatVersion,
    createdAt: recorded.createdAt,
    size: recorded.size,
    storedSize: object.size,
    sha256: recorded.sha256,
    storedSha256: recorded.storedSha256 ?? '',
    contentEncoding: 'gzip',
    contentType: object.contentType ?? CONTENT_TYPE,
    etag: object.etag,
    ...(recorded.agentId !== undefined ? { agentId: recorded.agentId } : {}),
    ...(recorded.sessionId !== undefined ? { sessionId: recorded.sessionId } : {}),
    ...(recorded.description !== undefined ? { description: recorded.description } : {}),
  };
}
