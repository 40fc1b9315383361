// What `status` shows: this device, every device of the account (opened from their sealed
// records and cursors), pending work, problems, and the requests used.
import { open } from './crypto.js';
import { countingRequests, deviceRecordContext, openCursor, serverNow, type DeviceContext, type RequestsUsed } from './device.js';
import { checkFreshness, pendingWithheld } from './freshness.js';
import { forkProblem, type SyncProblem } from './reader.js';
import type { SyncBackend } from './types.js';

export interface DeviceStatus {
  deviceId: string;
  name: string | null;
  host: string | null;
  self: boolean;
  registeredAt: string | null;
  /** When it last published its read position. */
  lastSeenAt: string | null;
  /** Not seen within the retention: it no longer holds back garbage collection. */
  stale: boolean;
}

export interface SyncStatus {
  userId: string;
  deviceId: string;
  deviceName: string;
  storage: string;
  backend: SyncBackend['type'];
  entries: number;
  pendingEntries: number;
  pendingDeletions: number;
  unsentBatches: number;
  lastPushAt: string | null;
  lastPullAt: string | null;
  snapshotGeneration: number;
  clockOffsetMs: number;
  problems: { deviceId: string; expected: number; code: string; message: string }[];
  /** Devices whose log this device no longer waits for: not of this account (foreign), or dropped by drop-device. */
  ignoredDevices: { deviceId: string; reason: 'foreign' | 'dropped' }[];
  devices: DeviceStatus[];
  /** Requests this device made, across runs, by operation. */
  requestsUsed: RequestsUsed;
  requests: RequestsUsed;
}

/**
 * This device, every device of the account, pending work, problems, requests used. Problems:
 * the devices this one is stuck on, forks of devices still registered, and what the store
 * withholds by the published read positions (checked now, without importing anything).
 */
export async function deviceStatus(ctx: DeviceContext): Promise<SyncStatus> {
  const s = ctx.state;
  let fresh: SyncProblem[] = [];
  const { result: devices, requests } = await countingRequests(ctx, async () => {
    const listing = await ctx.backend.listDevices({ userId: ctx.userId });
    fresh = (await checkFreshness(ctx, { listing, resolve: false })).problems;
    const now = serverNow(ctx);
    return listing.devices
      .filter((d) => d.record !== null)
      .map((d): DeviceStatus => {
        const record = readDeviceRecord(ctx, d.deviceId, d.record!);
        let lastSeenAt = d.cursorAt;
        try {
          if (d.cursor) lastSeenAt = new Date(openCursor(ctx, d.deviceId, d.cursor).publishedAt).toISOString();
        } catch {
          // An unreadable cursor: fall back to when the store received it.
        }
        const seen = Date.parse(lastSeenAt ?? d.registeredAt ?? '');
        return { deviceId: d.deviceId, name: record?.name ?? null, host: record?.host ?? null, self: d.deviceId === ctx.deviceId, registeredAt: d.registeredAt, lastSeenAt, stale: Number.isFinite(seen) && now - seen > ctx.compaction.retentionMs };
      });
  });
  const pending = s.pendingSummary();
  const totals = s.get('requests');
  const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
  return {
    userId: ctx.userId,
    deviceId: ctx.deviceId,
    deviceName: s.get('deviceName'),
    storage: s.get('storageUrl'),
    backend: ctx.backend.type,
    entries: s.entryCount(),
    pendingEntries: pending.entries,
    pendingDeletions: pending.deletions,
    unsentBatches: pending.outbox,
    lastPushAt: iso(s.get('lastPushAt')),
    lastPullAt: iso(s.get('lastPullAt')),
    snapshotGeneration: s.get('snapshotGeneration'),
    clockOffsetMs: s.get('clockOffsetMs'),
    problems: statusProblems(ctx, devices, fresh),
    ignoredDevices: [...s.ignoredDevices()].map(([deviceId, reason]) => ({ deviceId, reason })),
    devices,
    requestsUsed: { total: Object.values(totals).reduce((a, b) => a + b, 0), byOperation: totals },
    requests,
  };
}

/** The devices this one is stuck on, forks of devices still registered, and what is withheld (saved by the last check, or found now). */
function statusProblems(ctx: DeviceContext, devices: DeviceStatus[], fresh: SyncProblem[]): SyncStatus['problems'] {
  const registered = new Set(devices.map((d) => d.deviceId));
  const out: SyncStatus['problems'] = ctx.state.stuck().map(({ deviceId, expected, code, message }) => ({ deviceId, expected, code, message }));
  for (const f of ctx.state.forks()) {
    if (registered.has(f.deviceId)) out.push({ deviceId: f.deviceId, expected: f.seq, code: 'Forked', message: forkProblem(f.deviceId, f.seq).message });
  }
  const withheld = new Map<string, SyncProblem>();
  for (const p of [...pendingWithheld(ctx), ...fresh]) withheld.set(`${p.deviceId} ${p.message}`, p);
  for (const p of withheld.values()) out.push({ deviceId: p.deviceId, expected: p.seq, code: p.code, message: p.message });
  return out;
}

function readDeviceRecord(ctx: DeviceContext, deviceId: string, data: string): { name?: string; host?: string } | undefined {
  try {
    return open(ctx.keys, deviceRecordContext(deviceId), Buffer.from(data, 'base64'), `device record ${deviceId}`).payload as { name?: string; host?: string };
  } catch {
    return undefined;
  }
}
