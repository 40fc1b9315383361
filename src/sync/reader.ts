// Reading the logs: query new batches, authenticate each against the position it was found at,
// and apply every device's batches strictly in sequence. A batch that fails (tampered, moved,
// replayed) or a sequence number that never arrived stops that device's log there: nothing
// after it is applied, the problem is reported on every pull, and the device is re-read from
// its last good batch until an intact copy arrives or a newer snapshot covers the gap.
//
// A copy found at a position already held is not ignored: a copy not seen before is opened and
// its payload compared (by digest) with the batch held there. The same payload is a retried or
// republished send; another authentic payload means two copies of one device's state wrote the
// same number (a fork): both are imported (entries are a set and deletions win, so nothing is
// lost) and the fork is reported, on every device that sees both.
import { compareKeys } from '../storage/index.js';
import { batchId } from './bucket-keys.js';
import { MisplacedError, open } from './crypto.js';
import { deviceRef, isEntry, openSnapshot, serverNow, type DeviceContext } from './device.js';
import { isSyncError } from './errors.js';
import { settleForeignDevices, withoutIgnoredDevices } from './foreign.js';
import type { ApplyResult, BatchPayload, StuckDevice } from './state.js';
import type { HeldBatch, QueryResult, StoredBatch, SyncEntry } from './types.js';

export type SyncProblemCode = 'Tampered' | 'Replayed' | 'OutOfOrder' | 'MissingBatch' | 'UnsupportedSyncFormat' | 'ForeignDevice' | 'Forked' | 'Withheld';

/**
 * Something wrong with what the backend returned. Nothing a refused batch holds is imported;
 * for a fork both batches are (they are authentic), and Withheld is about what did not arrive.
 */
export interface SyncProblem {
  code: SyncProblemCode;
  /** The device whose log it is in, and the position. */
  deviceId: string;
  seq: number;
  batchId?: string;
  message: string;
}

export interface ReadOutcome {
  added: SyncEntry[];
  deleted: string[];
  /** Batches applied. */
  applied: number;
  problems: SyncProblem[];
  stuck: StuckDevice[];
}

/**
 * One read of the logs: the query from the saved cursor, plus a re-read from the last good
 * batch of every device that was stuck. Saves the new cursor and stuck list.
 */
export async function readNewBatches(ctx: DeviceContext): Promise<ReadOutcome & { ownTimings: QueryResult['ownTimings'] }> {
  const known = ctx.state.known();
  // What the freshness check compares the other devices' claims with: this listing's start.
  ctx.state.setMeta({ lastPullStartedAt: serverNow(ctx) });
  const main = await ctx.backend.queryEntries({ ...deviceRef(ctx), cursor: ctx.state.get('cursor'), known });
  const stuckBefore = new Set(ctx.state.stuck().map((s) => s.deviceId));
  const listed = [...main.batches, ...(await unseenHeldCopies(ctx, main.held, known))];
  const read: StoredBatch[] = [...listed, ...(await rereadDevices(ctx, [...stuckBefore], known))];
  let outcome = applyStoredBatches(ctx, read);
  // A device that just showed a gap: its missing batch may sort before the cursor (a writer
  // slower than the bounds allow). Re-read it from its last good batch now, not next pull.
  const newlyStuck = outcome.stuck.filter((s) => !stuckBefore.has(s.deviceId)).map((s) => s.deviceId);
  if (newlyStuck.length > 0) {
    const again = await rereadDevices(ctx, newlyStuck, ctx.state.known());
    read.push(...again);
    outcome = retry(outcome, newlyStuck, applyStoredBatches(ctx, again));
  }
  // A made-up device (junk written without the secret) stops blocking here: reported once.
  outcome = await settleForeignDevices(ctx, outcome, read);
  if (outcome.stuck.length > 0) {
    const merged = await mergeSnapshotCovering(ctx, outcome.stuck);
    if (merged) {
      const devices = outcome.stuck.map((s) => s.deviceId);
      const again = applyStoredBatches(ctx, await rereadDevices(ctx, devices, ctx.state.known()));
      outcome = retry({ ...outcome, added: [...outcome.added, ...merged.added], deleted: [...outcome.deleted, ...merged.deleted] }, devices, again);
    }
  }
  ctx.state.setMeta({ cursor: main.cursor });
  ctx.state.setStuck(outcome.stuck);
  return { ...outcome, ownTimings: main.ownTimings };
}

/**
 * Lists the whole log, not from the cursor, and applies whatever this device lacks: a batch that
 * a writer slower than the bounds stored below every cursor, with no later batch to reveal the
 * gap. Compaction runs it first, so such a batch is in the snapshot. Costs one listing of the
 * log (its pages) and a GET per batch found.
 */
export async function sweepLog(ctx: DeviceContext): Promise<ReadOutcome> {
  const known = ctx.state.known();
  const all = await ctx.backend.queryEntries({ ...deviceRef(ctx), cursor: null, known });
  const read = [...all.batches, ...(await unseenHeldCopies(ctx, all.held, known))];
  const outcome = await settleForeignDevices(ctx, applyStoredBatches(ctx, read), read);
  // A view of every device's log: the stuck list it gives is complete.
  ctx.state.setStuck(outcome.stuck);
  return outcome;
}

/** Combines a first outcome with a second attempt at `devices`: the second's problems replace theirs. */
function retry(first: ReadOutcome, devices: string[], again: ReadOutcome): ReadOutcome {
  const retried = new Set(devices);
  return {
    added: [...first.added, ...again.added],
    deleted: [...first.deleted, ...again.deleted],
    applied: first.applied + again.applied,
    problems: [...first.problems.filter((p) => !retried.has(p.deviceId)), ...again.problems],
    stuck: [...first.stuck.filter((s) => !retried.has(s.deviceId)), ...again.stuck],
  };
}

/**
 * The copies at held positions that this device has not seen: those the listing carried, as
 * they are; the others (stored as bodies: rare, a republished or forked batch) fetched by one
 * more listing per device, from just before the earliest of them, with that device's known
 * sequence number lowered so that the backend fetches them.
 */
export async function unseenHeldCopies(ctx: DeviceContext, held: HeldBatch[] | undefined, known: Record<string, number>): Promise<StoredBatch[]> {
  const out: StoredBatch[] = [];
  const toFetch = new Map<string, HeldBatch>();
  for (const h of held ?? []) {
    if (ctx.state.knowsCopy(h.id)) continue;
    if (h.data !== undefined) {
      out.push({ ...h, data: h.data });
      continue;
    }
    const first = toFetch.get(h.deviceId);
    if (!first || compareKeys(h.id, first.id) < 0) toFetch.set(h.deviceId, h);
  }
  for (const first of toFetch.values()) {
    const lowest = Math.min(...(held ?? []).filter((h) => h.deviceId === first.deviceId && h.data === undefined && !ctx.state.knowsCopy(h.id)).map((h) => h.seq));
    // An id that sorts right before the copy's (same time and device, one seq lower).
    const r = await ctx.backend.queryEntries({ ...deviceRef(ctx), afterBatchId: batchId({ ...first, seq: first.seq - 1 }), known: { ...known, [first.deviceId]: lowest - 1 } });
    out.push(...r.batches);
  }
  return out;
}

/** Lists again from each device's last applied batch (batch times increase per device). */
export async function rereadDevices(ctx: DeviceContext, deviceIds: string[], known: Record<string, number>): Promise<StoredBatch[]> {
  const frontier = ctx.state.frontier();
  const starts = new Set(deviceIds.map((d) => frontier.get(d)?.position ?? ''));
  const out: StoredBatch[] = [];
  for (const after of starts) {
    const r = await ctx.backend.queryEntries({ ...deviceRef(ctx), ...(after ? { afterBatchId: after } : { cursor: null }), known });
    out.push(...r.batches);
  }
  return out;
}

/**
 * Merges the newest snapshot if it is newer than any looked at and holds more of some device's
 * log than this device does (for `stuck` devices: more than their missing batch). That is how a
 * device catches up after the batches it missed were collected (it was away past the retention).
 */
export async function mergeSnapshotCovering(ctx: DeviceContext, stuck?: StuckDevice[]): Promise<ApplyResult | undefined> {
  const seen = Math.max(ctx.state.get('snapshotGeneration'), ctx.state.get('snapshotChecked'));
  const boot = await ctx.backend.bootstrap({ ...deviceRef(ctx), newerThan: seen });
  if (!boot.snapshot) return undefined;
  ctx.state.setMeta({ snapshotChecked: boot.snapshot.generation });
  const content = openSnapshot(ctx, boot.snapshot);
  const known = ctx.state.known();
  const helps = stuck
    ? stuck.some((s) => (content.frontier[s.deviceId] ?? 0) >= s.expected)
    : Object.entries(content.frontier).some(([d, seq]) => seq > (known[d] ?? 0));
  return helps ? ctx.state.mergeSnapshot(content, boot.snapshot.generation) : undefined;
}

/** Authenticates and applies batches, each device's in sequence; examines copies at held positions. */
export function applyStoredBatches(ctx: DeviceContext, batches: StoredBatch[]): ReadOutcome {
  const out: ReadOutcome = { added: [], deleted: [], applied: 0, problems: [], stuck: [] };
  const held = new Map([...ctx.state.frontier()].map(([d, f]) => [d, f.seq]));
  const byDevice = new Map<string, StoredBatch[]>();
  for (const b of new Map(withoutIgnoredDevices(ctx, batches).map((x) => [x.id, x])).values()) {
    const list = byDevice.get(b.deviceId) ?? [];
    list.push(b);
    byDevice.set(b.deviceId, list);
  }
  const now = ctx.clock();
  for (const [deviceId, list] of [...byDevice].sort(([a], [b]) => compareKeys(a, b))) {
    list.sort((a, b) => a.seq - b.seq || compareKeys(a.id, b.id));
    let blocked: StuckDevice | undefined;
    for (let i = 0; i < list.length; ) {
      const seq = list[i]!.seq;
      const copies: StoredBatch[] = [];
      while (i < list.length && list[i]!.seq === seq) copies.push(list[i++]!);
      const have = held.get(deviceId) ?? 0;
      if (seq <= have) {
        for (const c of copies) examineHeldCopy(ctx, c, held, out, now);
        continue;
      }
      if (blocked || seq > have + 1) {
        blocked ??= { deviceId, expected: have + 1, code: 'MissingBatch', message: `device ${deviceId}: batch ${have + 1} is missing while batch ${seq} is there; its later batches wait for it`, since: now };
        // Still authenticated now, so a damaged or misplaced batch is reported at once.
        for (const c of copies) {
          const opened = openBatch(ctx, c, held);
          if ('problem' in opened) out.problems.push(opened.problem);
        }
        continue;
      }
      let lastProblem: SyncProblem | undefined;
      let applied = false;
      const refused: StoredBatch[] = [];
      for (const c of copies) {
        if (applied) {
          // Another copy of the batch just applied: the same one again, or a fork.
          examineHeldCopy(ctx, c, held, out, now);
          continue;
        }
        const opened = openBatch(ctx, c, held);
        if ('problem' in opened) {
          out.problems.push((lastProblem = opened.problem));
          refused.push(c);
          continue;
        }
        const result = ctx.state.applyBatch(c, c.id, opened.payload, opened.digest);
        if (result) {
          out.added.push(...result.added);
          out.deleted.push(...result.deleted);
          out.applied++;
        }
        // Undefined: another process of this device applied it first; either way it is held.
        held.set(deviceId, seq);
        applied = true;
        lastProblem = undefined;
        // Reported now; at a held position they are not reported again.
        for (const r of refused) ctx.state.recordCopy(r, null);
      }
      if (lastProblem) blocked = { deviceId, expected: seq, code: lastProblem.code, message: lastProblem.message, since: now };
    }
    if (blocked) {
      out.stuck.push(blocked);
      if (blocked.code === 'MissingBatch') out.problems.push({ code: 'MissingBatch', deviceId, seq: blocked.expected, message: blocked.message });
    }
  }
  return out;
}

/**
 * A copy at a position this device holds, not seen before: opened (a refused one is reported
 * once and remembered), compared with what is held there, and if it is another batch, imported
 * beside it and reported as a fork. A copy whose position this device holds only from a
 * snapshot (no digest to compare with) is imported too: that changes nothing if it is the same
 * batch, and keeps both if it is not.
 */
function examineHeldCopy(ctx: DeviceContext, c: StoredBatch, held: Map<string, number>, out: ReadOutcome, now: number): void {
  if (ctx.state.knowsCopy(c.id)) return;
  const opened = openBatch(ctx, c, held);
  if ('problem' in opened) {
    ctx.state.recordCopy(c, null);
    out.problems.push(opened.problem);
    return;
  }
  const digests = ctx.state.digestsAt(c.deviceId, c.seq);
  if (digests.some((d) => d.equals(opened.digest))) {
    ctx.state.recordCopy(c, opened.digest); // the same batch again: a retried or republished send
    return;
  }
  const imported = ctx.state.importCopy(c, c.id, opened.payload, opened.digest);
  out.added.push(...imported.added);
  out.deleted.push(...imported.deleted);
  if (digests.length > 0 && ctx.state.recordFork(c.deviceId, c.seq, now)) out.problems.push(forkProblem(c.deviceId, c.seq, c.id));
}

export function forkProblem(deviceId: string, seq: number, id?: string): SyncProblem {
  return {
    code: 'Forked',
    deviceId,
    seq,
    ...(id === undefined ? {} : { batchId: id }),
    message:
      `device ${deviceId} wrote two different batches numbered ${seq}: two copies of its state directory were used (one restored from a backup while the other ran on, or a copied directory); ` +
      'the entries and deletions of both are kept here. Keep one copy of that directory (or run "offsite sync uninstall" there and join again)',
  };
}

type Opened = { payload: BatchPayload; digest: Buffer } | { problem: SyncProblem };

function openBatch(ctx: DeviceContext, b: StoredBatch, held: Map<string, number>): Opened {
  const where = `batch ${b.id}`;
  const problem = (code: SyncProblemCode, message: string): Opened => ({ problem: { code, deviceId: b.deviceId, seq: b.seq, batchId: b.id, message } });
  try {
    const { payload, digest } = open(ctx.keys, { kind: b.kind, deviceId: b.deviceId, seq: b.seq, time: b.time }, Buffer.from(b.data, 'base64'), where);
    const p = payload as { entries?: unknown; deletions?: unknown };
    if (b.kind === 'entries' && Array.isArray(p.entries) && p.entries.every(isEntry)) return { payload: { entries: p.entries }, digest };
    if (b.kind === 'deletions' && Array.isArray(p.deletions) && p.deletions.every((d) => typeof d === 'string')) return { payload: { deletions: p.deletions as string[] }, digest };
    return problem('Tampered', `${where} is authentic but malformed (written by a broken client); it is not imported`);
  } catch (e) {
    if (e instanceof MisplacedError) {
      const f = e.sealedFor;
      const isBatch = f.kind === 'entries' || f.kind === 'deletions';
      if (isBatch && f.seq <= (held.get(f.deviceId) ?? 0)) {
        return problem('Replayed', `${where} is a copy of batch ${f.seq} of device ${f.deviceId}, which this device already has: an old batch was replayed; it is not imported`);
      }
      return problem('OutOfOrder', e.message);
    }
    if (isSyncError(e, 'Tampered')) return problem('Tampered', e.message);
    if (isSyncError(e, 'UnsupportedSyncFormat')) return problem('UnsupportedSyncFormat', e.message);
    throw e;
  }
}
