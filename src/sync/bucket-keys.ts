// The bucket backend's key layout. Every name is a random or derived id, a number or a fixed
// word: nothing about the entries' content.
//
//   users/{userId}/key-check                           sealed; written once at init
//   users/{userId}/devices/{deviceId}                  sealed device record; written once
//   users/{userId}/cursors/{deviceId}                  sealed read position; only its device writes it
//   users/{userId}/log/{time13}-{deviceId}-{seq10}-{e|d}  sealed batch (entries / deletions); written once
//   users/{userId}/snapshots/{generation12}            sealed compacted snapshot; written once
//   users/{userId}/leases/{name}                       lease JSON (holder device id, expiry); conditional writes
//
// Log keys start with a fixed-width time, so one listing of users/{userId}/log/ after a cursor
// returns what every device wrote since, in one request when nothing is new.
import { SyncError } from './errors.js';
import type { BatchKind, BatchPosition } from './types.js';

const TIME_DIGITS = 13;
const SEQ_DIGITS = 10;
const GENERATION_DIGITS = 12;

const ID_PATTERN = /^[0-9a-z]{8,64}$/;
const BATCH_ID_PATTERN = /^(\d{13})-([0-9a-z]{8,64})-(\d{10})-([ed])$/;
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

/** A batch's id: its key below log/. Sorting ids sorts by time first. */
export function batchId(p: BatchPosition): string {
  return `${pad(p.time, TIME_DIGITS)}-${p.deviceId}-${pad(p.seq, SEQ_DIGITS)}-${KIND_LETTER[p.kind]}`;
}

export function parseBatchId(id: string): BatchPosition | undefined {
  const m = BATCH_ID_PATTERN.exec(id);
  if (!m) return undefined;
  return { time: Number(m[1]), deviceId: m[2]!, seq: Number(m[3]), kind: m[4] === 'e' ? 'entries' : 'deletions' };
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

/** The startAfter for a floor time: every key whose time is >= floor sorts after it. */
export function startAfterForFloor(userId: string, floorTime: number): string | undefined {
  return floorTime > 0 ? `${logPrefix(userId)}${pad(floorTime, TIME_DIGITS)}` : undefined;
}
