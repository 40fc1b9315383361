// Holding the store to what the devices have seen. A store can withhold a device's newest
// batches (no later batch reveals the gap), serve an older snapshot as the newest (a snapshot's
// seal binds its generation, not whether a newer one exists), or show devices different
// subsets. What it cannot do is forge the read positions the devices publish (sealed cursors):
// each says how far its device has read every log (its own: how far it has written) and the
// newest snapshot generation it merged or wrote. After a pull, this device compares them with
// what it holds:
// - a position published well before this device's last pull began (LIST_LOOKBACK_MS: the
//   longest a stored batch can take to show in a listing, clock skew included) speaks of
//   batches that pull must have listed. If this device still holds less of a log (and is not
//   already stuck on it), it looks for the rest (a newer snapshot, a re-read of that log), and
//   what is still missing is reported withheld;
// - a snapshot generation claimed by a device, or merged here, that the store does not list is
//   withheld (a device joining now would start from an older snapshot);
// - a position older than one seen before (positions are overwritten in place) is a rollback.
// The newest position seen of each device is kept here, so the store cannot lower a claim by
// serving an older one later. Limits: detection is as fresh as the published positions (a
// device publishes at join, after compaction, and at most hourly while it receives), and needs
// some device that saw the data to publish where this one can read it.
import { LIST_LOOKBACK_MS, MAX_CLOCK_SKEW_MS } from './clock.js';
import { deviceRef, openCursor, openSnapshot, serverNow, type DeviceContext, type PublishedCursor } from './device.js';
import { isSyncError } from './errors.js';
import { applyStoredBatches, rereadDevices, type SyncProblem } from './reader.js';
import type { Claim, WithheldRecord } from './state.js';
import type { DeviceListing, SyncEntry } from './types.js';

export interface FreshnessResult {
  problems: SyncProblem[];
  /** Entries and deletions found while looking for what the claims showed (resolve mode). */
  added: SyncEntry[];
  deleted: string[];
}

/**
 * Compares the devices' published positions (`listing`, or a fresh listDevices) with what this
 * device holds. `resolve` (pulls and join): first look for what is missing (merging a newer
 * snapshot, re-reading a log), then save what is still withheld for later pulls to report;
 * without it (status) nothing is imported and only the store's snapshot list is read.
 * `latestGeneration`: the newest snapshot generation the store listed just now (join), so that
 * it is not listed again.
 */
export async function checkFreshness(ctx: DeviceContext, opts: { listing?: DeviceListing; resolve: boolean; latestGeneration?: number }): Promise<FreshnessResult> {
  const listing = opts.listing ?? (await ctx.backend.listDevices({ userId: ctx.userId }));
  const result: FreshnessResult = { problems: recordClaims(ctx, listing), added: [], deleted: [] };
  const startedAt = ctx.state.get('lastPullStartedAt');
  const settled = startedAt === null ? [] : ctx.state.claims().filter((c) => c.publishedAt + LIST_LOOKBACK_MS <= startedAt);

  let gaps = logGaps(ctx, settled);
  const seenGeneration = Math.max(ctx.state.get('snapshotGeneration'), ctx.state.get('snapshotChecked'));
  // Fetch the newest snapshot only when it may help (a gap) and was not looked at yet; otherwise
  // only list. A caller that just listed the snapshots (join) passes what it found.
  const boot =
    opts.latestGeneration === undefined
      ? await ctx.backend.bootstrap({ ...deviceRef(ctx), newerThan: opts.resolve && gaps.size > 0 ? seenGeneration : Number.MAX_SAFE_INTEGER })
      : { snapshot: null, latestGeneration: opts.latestGeneration };
  if (opts.resolve && boot.snapshot) {
    ctx.state.setMeta({ snapshotChecked: boot.snapshot.generation });
    const content = openSnapshot(ctx, boot.snapshot);
    if ([...gaps].some(([device]) => (content.frontier[device] ?? 0) > (ctx.state.known()[device] ?? 0))) {
      const merged = ctx.state.mergeSnapshot(content, boot.snapshot.generation);
      result.added.push(...merged.added);
      result.deleted.push(...merged.deleted);
      gaps = logGaps(ctx, settled);
    }
  }
  if (opts.resolve && gaps.size > 0) {
    // Batches stored below this device's cursor (a writer slower than the bounds, a device
    // that migrated late) are found by reading those logs from their last batch held here.
    const devices = [...gaps.keys()];
    const again = applyStoredBatches(ctx, await rereadDevices(ctx, devices, ctx.state.known()));
    result.added.push(...again.added);
    result.deleted.push(...again.deleted);
    result.problems.push(...again.problems);
    if (again.stuck.length > 0) {
      const fresh = new Set(again.stuck.map((s) => s.deviceId));
      ctx.state.setStuck([...ctx.state.stuck().filter((s) => !fresh.has(s.deviceId)), ...again.stuck]);
    }
    gaps = logGaps(ctx, settled);
  }

  const known = ctx.state.known();
  const now = ctx.clock();
  const withheld: WithheldRecord[] = [];
  for (const [device, { seq, by }] of gaps) {
    const have = known[device] ?? 0;
    const mine = device === ctx.deviceId;
    withheld.push({
      deviceId: device,
      expected: seq,
      since: now,
      message: mine
        ? `device ${by.deviceId} read this device's log up to batch ${seq} (its read position of ${iso(by.publishedAt)}), but the store shows it only up to batch ${have}: the store withholds them, or this state directory is older than the device (restored from a backup); new batches are numbered after ${seq}`
        : `device ${by.deviceId} read the log of device ${device} up to batch ${seq} (its read position of ${iso(by.publishedAt)}), but the store shows this device only up to batch ${have}: it withholds batches ${have + 1}-${seq}, or shows devices different views. What arrived is imported; this is reported until they arrive`,
    });
    // Never number a batch the other devices may hold already.
    if (mine && opts.resolve) ctx.state.continueAfterOwnSeq(seq);
  }
  const claimedGeneration = settled.reduce<Claim | undefined>((best, c) => (c.snapshotGeneration > (best?.snapshotGeneration ?? 0) ? c : best), undefined);
  const knownGeneration = ctx.state.get('snapshotGeneration');
  if (claimedGeneration && claimedGeneration.snapshotGeneration > boot.latestGeneration) {
    withheld.push({
      deviceId: claimedGeneration.deviceId,
      expected: 0,
      since: now,
      message: `device ${claimedGeneration.deviceId} merged or wrote snapshot ${claimedGeneration.snapshotGeneration} (its read position of ${iso(claimedGeneration.publishedAt)}), but the store lists none newer than ${boot.latestGeneration}: it withholds the newest snapshot, and a device joining now starts from an older one`,
    });
  } else if (knownGeneration > boot.latestGeneration) {
    withheld.push({
      deviceId: ctx.deviceId,
      expected: 0,
      since: now,
      message: `this device merged or wrote snapshot ${knownGeneration}, but the store lists none newer than ${boot.latestGeneration}: it withholds the newest snapshot, and a device joining now starts from an older one`,
    });
  }
  result.problems.push(...withheld.map(toProblem(known)));
  if (opts.resolve) {
    ctx.state.setMeta({ withheld, freshnessCheckedAt: serverNow(ctx) });
    // Copies of batches older than the retention are not expected again (state.ts batch_copies).
    ctx.state.pruneCopies(serverNow(ctx) - ctx.compaction.retentionMs);
  }
  return result;
}

/** What the last check found withheld and this device still lacks: every pull reports it. */
export function pendingWithheld(ctx: DeviceContext): SyncProblem[] {
  const known = ctx.state.known();
  return ctx.state
    .get('withheld')
    .filter((w) => w.expected === 0 || (known[w.deviceId] ?? 0) < w.expected)
    .map(toProblem(known));
}

/** Keeps the newest authentic position of each device; reports one older than a position seen before. */
function recordClaims(ctx: DeviceContext, listing: DeviceListing): SyncProblem[] {
  const problems: SyncProblem[] = [];
  for (const d of listing.devices) {
    if (d.cursor === null) continue;
    let cursor: PublishedCursor;
    try {
      cursor = openCursor(ctx, d.deviceId, d.cursor);
    } catch (e) {
      if (isSyncError(e)) continue; // unreadable: reported by compaction holding back, not a claim
      throw e;
    }
    const prior = ctx.state.claim(d.deviceId);
    // Beyond the skew: a device's clock corrected backwards between two publications is not a rollback.
    if (prior && cursor.publishedAt + MAX_CLOCK_SKEW_MS < prior.publishedAt) {
      problems.push({
        code: 'Withheld',
        deviceId: d.deviceId,
        seq: 0,
        message: `the store serves the read position device ${d.deviceId} published at ${iso(cursor.publishedAt)}, older than the one this device saw before (${iso(prior.publishedAt)}): it serves old data`,
      });
      continue;
    }
    if (!prior || cursor.publishedAt > prior.publishedAt) ctx.state.setClaim({ deviceId: d.deviceId, ...cursor });
  }
  return problems;
}

/** Per device: the highest seq a settled claim shows beyond what this device holds (devices it is stuck on aside). */
function logGaps(ctx: DeviceContext, settled: Claim[]): Map<string, { seq: number; by: Claim }> {
  const known = ctx.state.known();
  const stuck = new Set(ctx.state.stuck().map((s) => s.deviceId));
  const gaps = new Map<string, { seq: number; by: Claim }>();
  for (const c of settled) {
    for (const [device, seq] of Object.entries(c.frontier)) {
      if (stuck.has(device) || seq <= (known[device] ?? 0)) continue;
      if (seq > (gaps.get(device)?.seq ?? 0)) gaps.set(device, { seq, by: c });
    }
  }
  return gaps;
}

const toProblem =
  (known: Record<string, number>) =>
  (w: WithheldRecord): SyncProblem => ({ code: 'Withheld', deviceId: w.deviceId, seq: w.expected === 0 ? 0 : (known[w.deviceId] ?? 0) + 1, message: w.message });

const iso = (t: number) => new Date(t).toISOString();
