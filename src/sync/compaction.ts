// Compaction and garbage collection. One device at a time (the lease) writes a snapshot of its
// own state: every entry and tombstone up to its per-device frontier. Nothing written during
// compaction can be lost: the snapshot claims only batches up to that frontier, and garbage
// collection deletes only batches at or below both the snapshot's frontier and the frontier
// every active device published. Batches written meanwhile are above the snapshot's frontier,
// so they stay in the log and reach everyone (and the next snapshot) from there.
import { sealJson } from './crypto.js';
import { deviceRef, isOwnDevice, openCursor, openSnapshot, publishCursor, serverNow, type DeviceContext } from './device.js';
import { isSyncError } from './errors.js';
import type { ApplyResult } from './state.js';

export interface CompactOptions {
  /** Called after the snapshot is built and before it is written (tests write entries here). */
  beforeSnapshotWrite?: () => Promise<void>;
}

export type CompactResult =
  | {
      compacted: true;
      generation: number;
      entries: number;
      bytes: number;
      deletedBatches: number;
      deletedSnapshots: number;
      /** Devices not seen within the retention: they no longer hold back garbage collection. */
      staleDevices: string[];
      /**
       * Registered devices that are not devices of this account (neither record nor cursor
       * authenticates: written by someone without the secret), or that this device dropped:
       * they hold nothing back.
       */
      foreignDevices: string[];
    }
  | { compacted: false; reason: string; holder?: string };

/**
 * Before an automatic compaction: if another device wrote a snapshot since this one's, merge it;
 * when it already covers all but a few of the batches this device holds (under half of
 * `everyBatches`), a snapshot of ours would repeat it, so none is written and the count of
 * batches since a snapshot starts from that one. Without this every device compacts after its
 * own count, one after the other, each writing nearly the same snapshot.
 */
export async function recentSnapshotSuffices(ctx: DeviceContext): Promise<{ result: CompactResult; merged: ApplyResult } | undefined> {
  const latest = await ctx.backend.bootstrap({ ...deviceRef(ctx), newerThan: ctx.state.get('snapshotGeneration') });
  if (!latest.snapshot) return undefined;
  const content = openSnapshot(ctx, latest.snapshot);
  const merged = ctx.state.mergeSnapshot(content, latest.snapshot.generation);
  const uncovered = Object.entries(ctx.state.known()).reduce((n, [device, seq]) => n + Math.max(0, seq - (content.frontier[device] ?? 0)), 0);
  if (uncovered >= ctx.compaction.everyBatches / 2) return undefined;
  ctx.state.setMeta({ batchesSinceSnapshot: uncovered });
  return { result: { compacted: false, reason: `snapshot ${latest.snapshot.generation}, written by another device, already holds all but ${uncovered} of the batches here` }, merged };
}

export async function compact(ctx: DeviceContext, opts: CompactOptions = {}): Promise<CompactResult> {
  const lease = await ctx.backend.acquireLease({ ...deviceRef(ctx), name: 'compaction', ttlMs: ctx.compaction.leaseTtlMs, now: serverNow(ctx) });
  if (!lease.acquired) return { compacted: false, reason: `device ${lease.holder} is compacting (its lease runs until ${lease.expiresAt})`, holder: lease.holder };
  try {
    // Never publish a snapshot that covers less than the newest one (whose batches may be collected).
    const latest = await ctx.backend.bootstrap({ ...deviceRef(ctx), newerThan: ctx.state.get('snapshotGeneration') });
    if (latest.snapshot) ctx.state.mergeSnapshot(openSnapshot(ctx, latest.snapshot), latest.snapshot.generation);
    const generation = Math.max(latest.latestGeneration, ctx.state.get('snapshotGeneration')) + 1;
    const snapshot = ctx.state.snapshotJson(ctx.state.get('cursor'));
    await opts.beforeSnapshotWrite?.();
    const sealed = sealJson(ctx.keys, { kind: 'snapshot', deviceId: ctx.deviceId, seq: generation, time: serverNow(ctx) }, snapshot.json);
    try {
      await ctx.backend.putSnapshot({ ...deviceRef(ctx), generation, data: sealed.toString('base64'), covers: snapshot.frontier });
    } catch (e) {
      if (isSyncError(e, 'Conflict')) return { compacted: false, reason: e.message };
      throw e;
    }
    ctx.state.setMeta({ snapshotGeneration: generation, batchesSinceSnapshot: 0 });
    await publishCursor(ctx);
    const { through, staleDevices, foreignDevices } = await collectableThrough(ctx, snapshot.frontier);
    // The previous snapshot stays: a device may be reading it right now.
    const gc = await ctx.backend.collectGarbage({ ...deviceRef(ctx), through, keepSnapshotsFrom: generation - 1 });
    return { compacted: true, generation, entries: snapshot.entries, bytes: sealed.length, ...gc, staleDevices, foreignDevices };
  } finally {
    await ctx.backend.releaseLease({ ...deviceRef(ctx), name: 'compaction', token: lease.token });
  }
}

/**
 * Per device, the highest seq that is in the snapshot and that every active device has read
 * (by the cursors they published). A registered device with no readable cursor counts as
 * having read nothing, so it holds everything back; a device not seen within the retention
 * counts no more (if it returns, it catches up from the snapshot). A registration whose record
 * and cursor both fail authentication is no device of this account (someone with the token or
 * the bucket's credentials but not the secret wrote it), and neither is a device dropped here:
 * those hold nothing back.
 */
async function collectableThrough(ctx: DeviceContext, snapshotFrontier: Record<string, number>): Promise<{ through: Record<string, number>; staleDevices: string[]; foreignDevices: string[] }> {
  const through: Record<string, number> = { ...snapshotFrontier };
  const staleDevices: string[] = [];
  const foreignDevices: string[] = [];
  const now = serverNow(ctx);
  const ignored = ctx.state.ignoredDevices();
  const { devices } = await ctx.backend.listDevices({ userId: ctx.userId });
  for (const device of devices) {
    if (device.record === null) continue; // a cursor left behind by a removed device
    if (ignored.get(device.deviceId) === 'dropped' || !isOwnDevice(ctx, device)) {
      foreignDevices.push(device.deviceId);
      continue;
    }
    const lastSeen = Date.parse(device.cursorAt ?? device.registeredAt ?? '');
    if (Number.isFinite(lastSeen) && now - lastSeen > ctx.compaction.retentionMs) {
      staleDevices.push(device.deviceId);
      continue;
    }
    let frontier: Record<string, number> = {};
    if (device.cursor !== null) {
      try {
        frontier = openCursor(ctx, device.deviceId, device.cursor).frontier;
      } catch (e) {
        // An unreadable cursor holds everything back: safe, and reported by status.
        if (!isSyncError(e)) throw e;
      }
    }
    for (const d of Object.keys(through)) through[d] = Math.min(through[d]!, frontier[d] ?? 0);
  }
  for (const d of Object.keys(through)) if (through[d]! <= 0) delete through[d];
  return { through, staleDevices, foreignDevices };
}
