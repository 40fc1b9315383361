// What the parts of a SyncClient share: the device's state, keys, backend and clock, and the
// small operations several of them need (calibrated time, sealing contexts, publishing the
// read position, opening snapshots, counting requests).
import type { RequestStats } from '../storage/index.js';
import { boundClockOffset } from './clock.js';
import { type SyncKeys, open, seal, type SealContext } from './crypto.js';
import { SyncError } from './errors.js';
import type { SnapshotContent, SyncState } from './state.js';
import type { RegisteredDevice, SealedData, StoredSnapshot, SyncBackend, SyncEntry } from './types.js';

export interface BatchingPolicy {
  /** Entries per batch at most (one PUT each). */
  maxEntries: number;
  /** JSON bytes per batch, about (a single larger entry still goes alone). */
  maxBytes: number;
  /** A pending entry older than this is sent at the next push or pull even if the batch is not full. */
  maxAgeMs: number;
}

export interface CompactionPolicy {
  /** Compact after a pull when enough batches arrived since the last snapshot. */
  auto: boolean;
  everyBatches: number;
  leaseTtlMs: number;
  /** A device not seen for this long no longer holds back garbage collection. */
  retentionMs: number;
}

export const DEFAULT_BATCHING: BatchingPolicy = { maxEntries: 1000, maxBytes: 512 * 1024, maxAgeMs: 60_000 };
export const DEFAULT_COMPACTION: CompactionPolicy = { auto: true, everyBatches: 500, leaseTtlMs: 5 * 60_000, retentionMs: 30 * 24 * 3600_000 };
export const DEFAULT_CURSOR_PUBLISH_INTERVAL_MS = 3600_000;
/**
 * How often a pull checks the other devices' published read positions for batches the store
 * withholds from this device (freshness.ts): a LIST of devices and of cursors, and a GET of
 * each (2 + 2 per device), so once a day, besides join and status.
 */
export const DEFAULT_FRESHNESS_CHECK_INTERVAL_MS = 24 * 3600_000;

export interface DeviceContext {
  state: SyncState;
  keys: SyncKeys;
  backend: SyncBackend;
  /** The account's id on this backend (the state's; changes when the device migrates). */
  userId: string;
  deviceId: string;
  /**
   * Whether this process has looked for its own device's newest batch in the log (own-log.ts):
   * done once per process, before its first send, so a state restored from a backup continues
   * after the batches it no longer remembers instead of sending new ones under their numbers.
   */
  ownLogChecked: boolean;
  /** The latest batch time this process tried (sent or not): never chosen twice. */
  lastAttemptTime: number;
  freshnessCheckIntervalMs: number;
  /** The local wall clock (replaceable in tests to simulate a skewed device). */
  clock: () => number;
  batching: BatchingPolicy;
  compaction: CompactionPolicy;
  cursorPublishIntervalMs: number;
}

/** Request counts of one operation. */
export interface RequestsUsed {
  total: number;
  byOperation: Record<string, number>;
}

/** The store's clock as this device estimates it. */
export function serverNow(ctx: DeviceContext): number {
  return Math.round(ctx.clock() + boundClockOffset(ctx.state.get('clockOffsetMs')));
}

export function deviceRef(ctx: DeviceContext): { userId: string; deviceId: string } {
  return { userId: ctx.userId, deviceId: ctx.deviceId };
}

export const cursorContext = (deviceId: string): SealContext => ({ kind: 'cursor', deviceId, seq: 0, time: 0 });
export const deviceRecordContext = (deviceId: string): SealContext => ({ kind: 'device', deviceId, seq: 0, time: 0 });
export const KEY_CHECK_CONTEXT: SealContext = { kind: 'key-check', deviceId: 'account', seq: 0, time: 0 };

/**
 * What a device publishes about itself: how far it has read each device's log (its own
 * included: how far it has written), and the newest snapshot it merged or wrote. Sealed, so
 * other devices can hold the store to it (freshness.ts).
 */
export interface PublishedCursor {
  frontier: Record<string, number>;
  publishedAt: number;
  /** 0 in cursors of Offsite versions before it was published. */
  snapshotGeneration: number;
}

export async function publishCursor(ctx: DeviceContext): Promise<void> {
  const now = serverNow(ctx);
  const cursor: PublishedCursor = { frontier: ctx.state.known(), publishedAt: now, snapshotGeneration: ctx.state.get('snapshotGeneration') };
  await ctx.backend.publishCursor({ ...deviceRef(ctx), cursor: seal(ctx.keys, cursorContext(ctx.deviceId), cursor).toString('base64') });
  ctx.state.setMeta({ cursorPublishedAt: now });
}

export function openCursor(ctx: DeviceContext, deviceId: string, data: SealedData): PublishedCursor {
  const { payload } = open(ctx.keys, cursorContext(deviceId), Buffer.from(data, 'base64'), `cursor of device ${deviceId}`);
  const p = payload as Partial<PublishedCursor>;
  return {
    frontier: isSeqRecord(p.frontier) ? p.frontier : {},
    publishedAt: typeof p.publishedAt === 'number' ? p.publishedAt : 0,
    snapshotGeneration: Number.isSafeInteger(p.snapshotGeneration) ? p.snapshotGeneration! : 0,
  };
}

/**
 * Whether a registration is one of this account's devices: its record or its cursor opens with
 * the account's key. Someone with a token or bucket credentials but not the secret can register
 * a device id; they cannot make either authenticate.
 */
export function isOwnDevice(ctx: DeviceContext, device: RegisteredDevice): boolean {
  const opens = (context: SealContext, data: SealedData | null) => {
    if (data === null) return false;
    try {
      open(ctx.keys, context, Buffer.from(data, 'base64'));
      return true;
    } catch {
      return false;
    }
  };
  return opens(deviceRecordContext(device.deviceId), device.record) || opens(cursorContext(device.deviceId), device.cursor);
}

/** Authenticates a snapshot (sealed for its generation) and checks its shape. */
export function openSnapshot(ctx: DeviceContext, snapshot: StoredSnapshot): SnapshotContent & { stuck?: { deviceId: string; expected: number }[] } {
  const where = `snapshot ${snapshot.generation}`;
  const { payload } = open(ctx.keys, { kind: 'snapshot', seq: snapshot.generation }, Buffer.from(snapshot.data, 'base64'), where);
  const p = payload as Partial<SnapshotContent> & { stuck?: unknown };
  if (p.format !== 1) throw new SyncError('UnsupportedSyncFormat', `${where} has format ${String(p.format)}; upgrade Offsite`);
  if (!isSeqRecord(p.frontier) || !Array.isArray(p.entries) || !Array.isArray(p.tombstones) || !p.entries.every(isEntry) || !p.tombstones.every((t) => typeof t === 'string')) {
    throw new SyncError('Tampered', `${where} is authentic but malformed; it is not imported`);
  }
  const positions = typeof p.positions === 'object' && p.positions !== null ? (p.positions as Record<string, string>) : {};
  const stuck = Array.isArray(p.stuck) ? (p.stuck as { deviceId: string; expected: number }[]).filter((s) => typeof s?.deviceId === 'string' && Number.isSafeInteger(s.expected)) : [];
  return { format: 1, frontier: p.frontier, positions, cursor: typeof p.cursor === 'string' ? p.cursor : null, entries: p.entries, tombstones: p.tombstones, stuck };
}

export function isEntry(e: unknown): e is SyncEntry {
  return typeof e === 'object' && e !== null && !Array.isArray(e) && typeof (e as { id?: unknown }).id === 'string';
}

function isSeqRecord(v: unknown): v is Record<string, number> {
  return typeof v === 'object' && v !== null && Object.values(v).every((n) => Number.isSafeInteger(n));
}

/** Operations in progress per device, so nested operations add their requests to the totals once. */
const counting = new WeakMap<DeviceContext, number>();

/** Runs `fn` and adds the requests it made to the device's totals; returns both. */
export async function countingRequests<T>(ctx: DeviceContext, fn: () => Promise<T>): Promise<{ result: T; requests: RequestsUsed }> {
  const before = ctx.backend.requestStats();
  const depth = counting.get(ctx) ?? 0;
  counting.set(ctx, depth + 1);
  try {
    const result = await fn();
    return { result, requests: measure(ctx, before, depth === 0) };
  } catch (e) {
    measure(ctx, before, depth === 0);
    throw e;
  } finally {
    counting.set(ctx, depth);
  }
}

function measure(ctx: DeviceContext, before: RequestStats, addToTotals: boolean): RequestsUsed {
  const used = requestsBetween(before, ctx.backend.requestStats());
  if (addToTotals && ctx.state.isOpen) ctx.state.addRequests(used.byOperation);
  return used;
}

/** The requests made between two readings of one backend's counters. */
export function requestsBetween(before: RequestStats, after: RequestStats): RequestsUsed {
  const byOperation: Record<string, number> = {};
  for (const [op, n] of Object.entries(after.requests)) {
    const delta = n - (before.requests[op] ?? 0);
    if (delta > 0) byOperation[op] = delta;
  }
  return { total: after.totalRequests - before.totalRequests, byOperation };
}
