// The bucket backend's key layout. Every name is a random or derived id, a number or a fixed
// word: nothing about the entries' content.
//
//   users/{userId}/key-check                           sealed; written once at init
//   users/{userId}/devices/{deviceId}                  sealed device record; written once
//   users/{userId}/cursors/{deviceId}                  sealed read position; only its device writes it
//   users/{userId}/log/{batchId}/i/{chunk}/{chunk}...  a small sealed batch, carried in its key; empty body
//   users/{userId}/log/{batchId}                       a larger sealed batch, as the body; written once
//       batchId = {time13}-{deviceId}-{seq10}-{e|d}    (entries / deletions)
//   users/{userId}/snapshots/{generation12}            sealed compacted snapshot; written once
//   users/{userId}/snapshot-covers/{generation12}      its frontier in the clear (JSON); written once; bounds GC
//   users/{userId}/leases/{name}                       lease JSON (holder device id, expiry); conditional writes
//
// Log keys start with a fixed-width time, so one listing of users/{userId}/log/ after a cursor
// returns what every device wrote since, in one request when nothing is new. A batch of at most
// INLINE_MAX_BYTES sealed bytes (one or a few shell commands) is written as the base64url of its
// ciphertext in the key, cut into segments of at most INLINE_CHUNK_CHARS characters (the local
// adapter makes each segment a path component, and file systems allow 255 bytes), so the listing
// itself delivers it and a reader needs no GET.
//
// Order (S3 lists by UTF-8 bytes): a batch id is never a prefix of another id (its fields have
// fixed widths or end at a '-', and device ids have no '-'), so two ids differ at a position inside
// both, and every key starting with "{batchId}" (the id itself, or "{batchId}/i/...") sorts after
// every key of a smaller id and before every key of a larger one. Listing after "log/{time13}"
// therefore still starts at that millisecond, whatever the form.
import { SMALL_ENVELOPE_BYTES } from './crypto.js';
import { SyncError } from './errors.js';
import type { BatchKind, BatchPosition } from './types.js';

const TIME_DIGITS = 13;
const SEQ_DIGITS = 10;
const GENERATION_DIGITS = 12;

const ID_PATTERN = /^[0-9a-z]{8,64}$/;
const BATCH_ID_PATTERN = /^(\d{13})-([0-9a-z]{8,64})-(\d{10})-([ed])$/;

/**
 * The largest sealed batch carried in its key: 480 bytes = 640 base64url characters in 4
 * segments (every envelope up to that size is padded to exactly it: crypto.ts). The longest key
 * Offsite writes is 75 ("users/{userId}/log/" with 32-character ids: 43) + 91 (a batch id with a
 * 64-character device id; Offsite's are 32: 59) + 3 ("/i/") + 643 = 812 bytes (748 with
 * Offsite's ids) plus the storage prefix: under S3's 1,024 for prefixes up to 212 bytes (276).
 * A batch whose key would pass the limit is stored as a body instead (batchLogName's budget).
 */
export const INLINE_MAX_BYTES = SMALL_ENVELOPE_BYTES;
/** Characters per key segment of inline data (a path component on the local adapter: <= 255 bytes). */
export const INLINE_CHUNK_CHARS = 200;
const INLINE_MARK = 'i';
const INLINE_DATA_PATTERN = new RegExp(`^${INLINE_MARK}/[A-Za-z0-9_-]{1,${INLINE_CHUNK_CHARS}}(?:/[A-Za-z0-9_-]{1,${INLINE_CHUNK_CHARS}})*$`);
const KIND_LETTER: Record<BatchKind, string> = { entries: 'e', deletions: 'd' };

export function assertId(id: string, what: 'user id' | 'device id'): void {
  if (typeof id !== 'string' || !ID_PATTERN.test(id)) throw new SyncError('InvalidEntry', `a ${what} is 8-64 characters of [0-9a-z]`);
}

export function assertPosition(p: BatchPosition): void {
  assertId(p.deviceId, 'device id');
  if (!Number.isSafeInteger(p.seq) || p.seq < 1 || p.seq >= 10 ** SEQ_DIGITS) throw new SyncError('InvalidEntry', `batch seq ${p.seq} is out of range`);
  if (!Number.isSafeInteger(p.time) || p.time < 0 || p.time >= 10 ** TIME_DIGITS) throw new SyncError('InvalidEntry', `batch time ${p.time} is out of range`);
  if (!(p.kind in KIND_LETTER)) throw new SyncError('InvalidEntry', `unknown batch kind ${String(p.kind)}`);
}

const pad = (n: number, digits: number) => String(n).padStart(digits, '0');

export const userPrefix = (userId: string) => `users/${userId}/`;
export const keyCheckKey = (userId: string) => `${userPrefix(userId)}key-check`;
export const devicesPrefix = (userId: string) => `${userPrefix(userId)}devices/`;
export const cursorsPrefix = (userId: string) => `${userPrefix(userId)}cursors/`;
export const logPrefix = (userId: string) => `${userPrefix(userId)}log/`;
export const snapshotsPrefix = (userId: string) => `${userPrefix(userId)}snapshots/`;
export const leaseKey = (userId: string, name: string) => `${userPrefix(userId)}leases/${name}`;
export const snapshotKey = (userId: string, generation: number) => `${snapshotsPrefix(userId)}${pad(generation, GENERATION_DIGITS)}`;
export const snapshotCoversKey = (userId: string, generation: number) => `${userPrefix(userId)}snapshot-covers/${pad(generation, GENERATION_DIGITS)}`;

/** A batch's id: its key below log/. Sorting ids sorts by time first. */
export function batchId(p: BatchPosition): string {
  return `${pad(p.time, TIME_DIGITS)}-${p.deviceId}-${pad(p.seq, SEQ_DIGITS)}-${KIND_LETTER[p.kind]}`;
}

export function parseBatchId(id: string): BatchPosition | undefined {
  const m = BATCH_ID_PATTERN.exec(id);
  if (!m) return undefined;
  return { time: Number(m[1]), deviceId: m[2]!, seq: Number(m[3]), kind: m[4] === 'e' ? 'entries' : 'deletions' };
}

/**
 * A batch's name below log/: its id alone (the sealed bytes are the body), or for a batch of at
 * most INLINE_MAX_BYTES, "{id}/i/" and the base64url of the bytes in segments (empty body),
 * unless that name would be longer than `maxNameBytes` (what the key's limit leaves after the
 * storage prefix and "users/{userId}/log/"): then the body form.
 */
export function batchLogName(p: BatchPosition, sealed: Uint8Array, maxNameBytes = Number.POSITIVE_INFINITY): string {
  const id = batchId(p);
  if (sealed.length === 0 || sealed.length > INLINE_MAX_BYTES) return id;
  const text = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength).toString('base64url');
  const chunks: string[] = [];
  for (let i = 0; i < text.length; i += INLINE_CHUNK_CHARS) chunks.push(text.slice(i, i + INLINE_CHUNK_CHARS));
  const name = `${id}/${INLINE_MARK}/${chunks.join('/')}`;
  return name.length > maxNameBytes ? id : name; // ASCII: characters are bytes
}

export interface LogName {
  /** The batch id (what StoredBatch.id and afterBatchId carry), whatever the form. */
  id: string;
  position: BatchPosition;
  /** The sealed bytes, for a batch carried in its key; absent for a batch stored as a body. */
  inline?: Buffer;
}

/** Parses a name below log/ in either form; undefined for anything else (a stray upload). */
export function parseLogName(name: string): LogName | undefined {
  const slash = name.indexOf('/');
  const id = slash < 0 ? name : name.slice(0, slash);
  const position = parseBatchId(id);
  if (!position) return undefined;
  if (slash < 0) return { id, position };
  const rest = name.slice(slash + 1);
  if (!INLINE_DATA_PATTERN.test(rest)) return undefined;
  return { id, position, inline: Buffer.from(rest.slice(INLINE_MARK.length + 1).replaceAll('/', ''), 'base64url') };
}

export function parseGeneration(name: string): number | undefined {
  return /^\d{12}$/.test(name) ? Number(name) : undefined;
}

/**
 * Query cursors are "t" + a time floor: the next listing starts after the keys of that
 * millisecond's predecessors. "t0" (or none) lists from the start.
 */
export function formatCursor(floorTime: number): string {
  return `t${Math.max(0, Math.floor(floorTime))}`;
}

export function parseCursor(cursor: string | null | undefined): number {
  if (cursor === null || cursor === undefined || cursor === '') return 0;
  const m = /^t(\d{1,13})$/.exec(cursor);
  if (!m) throw new SyncError('UnsupportedSyncFormat', `query cursor "${cursor}" is not one this backend wrote; pull with a cursor from the same backend`);
  return Number(m[1]);
}

/**
 * The startAfter for the batches after `id`: past the id and its inline form ("{id}/i/..."; '~'
 * sorts after 'i' and after every base64url character), before the next id.
 */
export function startAfterForBatch(userId: string, id: string): string {
  return `${logPrefix(userId)}${id}/~`;
}

/** The startAfter for a floor time: every key whose time is >= floor sorts after it. */
export function startAfterForFloor(userId: string, floorTime: number): string | undefined {
  return floorTime > 0 ? `${logPrefix(userId)}${pad(floorTime, TIME_DIGITS)}` : undefined;
}
