/**
 * The on-storage format, version 1: one object `<key>.json.gz` holding the gzip of the JSON text,
 * with everything else in the object's user metadata (x-amz-meta-*), so `aws s3 cp ... - | gunzip`
 * gives back the JSON and a HEAD gives back the metadata.
 */
import { constants as bufferConstants } from 'node:buffer';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { gunzip as gunzipCallback, gzip as gzipCallback, type ZlibOptions } from 'node:zlib';
import type { ObjectInfo } from '../storage/index.js';
import { SnapshotError, type SnapshotErrorCode } from './errors.js';
import type { SnapshotMetadata, SnapshotOptions } from './types.js';

const gzip = promisify(gzipCallback);
const gunzip = promisify(gunzipCallback) as (data: Buffer, opts: ZlibOptions) => Promise<Buffer>;

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
  if (json.length > MAX_SNAPSHOT_JSON_BYTES) {
    throw new SnapshotError('NotSerializable', `snapshot "${key}": its JSON is ${json.length} bytes, more than restore() could read back (${MAX_SNAPSHOT_JSON_BYTES}); split the state into several snapshots`, { key });
  }
  const stored = await gzip(json);
  return { json, stored, sha256: sha256Hex(json), storedSha256: sha256Hex(stored) };
}

export type DecodeResult =
  | { ok: true; value: unknown; size: number; sha256: string; storedSha256: string }
  | { ok: false; reason: string; size: number | undefined; sha256: string | undefined; storedSha256: string; cause?: unknown };

/**
 * The longest JSON text restore() can give back: JSON.parse needs it as one string, and V8's
 * strings stop here (about 512 MiB on 64-bit Node 20). snapshot() writes nothing longer, so a
 * recorded size above it is a lie, refused before anything is downloaded.
 */
export const MAX_SNAPSHOT_JSON_BYTES = bufferConstants.MAX_STRING_LENGTH;

/** The largest gzip of `size` bytes: deflate's stored blocks, plus room for header fields. */
function maxGzipBytes(size: number): number {
  return size + Math.ceil(size / 1024) + 1024;
}

/**
 * Whether a stored object of `storedBytes` can be the snapshot the metadata records, decided
 * before it is downloaded: a reason to refuse it, or undefined. A hostile object (a gzip bomb)
 * is then never read, let alone inflated.
 */
export function refuseStoredSize(storedBytes: number, recorded: RecordedSnapshot): string | undefined {
  if (recorded.size > MAX_SNAPSHOT_JSON_BYTES) {
    return `its metadata records ${recorded.size} bytes of JSON, more than restore() can hold (${MAX_SNAPSHOT_JSON_BYTES}, the longest string Node has)`;
  }
  if (recorded.storedSize !== undefined) {
    return storedBytes === recorded.storedSize ? undefined : `the stored object is ${storedBytes} bytes, ${recorded.storedSize} recorded`;
  }
  const most = maxGzipBytes(recorded.size);
  return storedBytes <= most ? undefined : `the stored object is ${storedBytes} bytes, more than a gzip of ${recorded.size} bytes can be (${most})`;
}

/**
 * Checks stored bytes against the recorded metadata, cheapest first: the SHA-256 of the stored
 * gzip (when recorded), then a gunzip that stops as soon as it passes the recorded JSON size,
 * then the SHA-256 of the JSON (the authority: it covers exactly what restore() returns), then
 * JSON.parse. `inflateMismatched`: still inflate (bounded) when the stored hash differs, so
 * verify can report the JSON hash it finds; restore does not.
 */
export async function decodeStored(stored: Buffer, recorded: RecordedSnapshot, opts: { inflateMismatched?: boolean } = {}): Promise<DecodeResult> {
  const storedSha256 = sha256Hex(stored);
  const storedMismatch = recorded.storedSha256 !== undefined && storedSha256 !== recorded.storedSha256;
  if (storedMismatch && !opts.inflateMismatched) {
    return { ok: false, reason: 'SHA-256 mismatch of the stored gzip bytes', size: undefined, sha256: undefined, storedSha256 };
  }
  let json: Buffer;
  try {
    // maxOutputLength makes zlib stop (and fail) at the first byte past the recorded size.
    json = await gunzip(stored, { maxOutputLength: Math.max(1, recorded.size) });
  } catch (e) {
    const tooLarge = (e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
    const reason = tooLarge ? `it inflates to more than the recorded ${recorded.size} bytes` : `not valid gzip (${(e as Error).message})`;
    return { ok: false, reason: storedMismatch ? `SHA-256 mismatch of the stored gzip bytes, and ${reason}` : reason, size: undefined, sha256: undefined, storedSha256, cause: e };
  }
  const sha256 = sha256Hex(json);
  if (storedMismatch || sha256 !== recorded.sha256 || json.length !== recorded.size) {
    const what = storedMismatch ? 'SHA-256 mismatch of the stored gzip bytes' : 'SHA-256 mismatch';
    return { ok: false, reason: `${what} (${json.length} bytes decompressed, ${recorded.size} recorded)`, size: json.length, sha256, storedSha256 };
  }
  try {
    return { ok: true, value: JSON.parse(json.toString('utf8')), size: json.length, sha256, storedSha256 };
  } catch (e) {
    return { ok: false, reason: `not valid JSON (${(e as Error).message})`, size: json.length, sha256, storedSha256, cause: e };
  }
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
