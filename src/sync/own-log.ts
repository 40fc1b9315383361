// A device's own log, looked at before the device sends its first batch (once per process). The
// state directory may be older than the log: restored from a backup, or a copy of one. Its
// next sequence number is then one the device already used, and a new batch under it would be
// a second, different batch at that position (a fork: other devices hold the first one). So the
// device first lists the log from just before the newest batch it remembers: that batch being
// there proves that every later one of this device is there too (garbage collection deletes a
// device's batches from the lowest sequence number up), and any later one is applied here (its
// entries were this device's) and numbered past. If that batch is gone (collected), the newest
// snapshot says how far the device's log went. One LIST per process start when nothing is
// wrong (the batch is there, nothing after it).
import { batchId, parseBatchId } from './bucket-keys.js';
import { deviceRef, openSnapshot, type DeviceContext } from './device.js';
import { applyStoredBatches, unseenHeldCopies } from './reader.js';

export interface OwnLogCheck {
  /** The highest sequence number of this device found in the store (0: none). */
  highestSeq: number;
  /** Own batches the state did not remember, now applied (a restored state catching up). */
  recovered: number;
  /** Unsent batches numbered again because the store holds other batches under their numbers. */
  renumbered: number;
}

export async function continueOwnLog(ctx: DeviceContext): Promise<OwnLogCheck> {
  const me = ctx.deviceId;
  const known = ctx.state.known();
  const own = ctx.state.frontier().get(me);
  const position = own?.position ? parseBatchId(own.position) : undefined;
  // Only this device's log matters here: the batches of the others are left to the next pull
  // (which reports them), and "known" to the end of their logs keeps the backend from fetching them.
  const onlyMine = Object.fromEntries(Object.keys(known).map((d) => [d, d === me ? known[d]! : Number.MAX_SAFE_INTEGER]));
  const r = await ctx.backend.queryEntries({
    ...deviceRef(ctx),
    // An id right before the newest own batch (same time and device, one seq lower): it is listed too.
    ...(position ? { afterBatchId: batchId({ ...position, seq: position.seq - 1 }) } : { cursor: null }),
    known: onlyMine,
  });
  const mine = <T extends { deviceId: string }>(xs: readonly T[] | undefined) => (xs ?? []).filter((b) => b.deviceId === me);
  const before = known[me] ?? 0;
  applyStoredBatches(ctx, [...mine(r.batches), ...(await unseenHeldCopies(ctx, mine(r.held), known))]);
  let highestSeq = Math.max(0, ...[...mine(r.batches), ...mine(r.held)].map((b) => b.seq));
  const newestThere = own?.position !== null && own?.position !== undefined && mine(r.held).some((h) => h.id === own.position);
  if (!newestThere) {
    // Collected (or never sent, or a server that does not list held copies): the snapshot knows.
    const boot = await ctx.backend.bootstrap({ ...deviceRef(ctx), newerThan: ctx.state.get('snapshotGeneration') });
    if (boot.snapshot) {
      const content = openSnapshot(ctx, boot.snapshot);
      highestSeq = Math.max(highestSeq, content.frontier[me] ?? 0);
      if ((content.frontier[me] ?? 0) > (ctx.state.known()[me] ?? 0)) ctx.state.mergeSnapshot(content, boot.snapshot.generation);
    }
  }
  highestSeq = Math.max(highestSeq, ctx.state.known()[me] ?? 0);
  const renumbered = ctx.state.continueAfterOwnSeq(highestSeq);
  ctx.ownLogChecked = true;
  return { highestSeq, recovered: (ctx.state.known()[me] ?? 0) - before, renumbered };
}
