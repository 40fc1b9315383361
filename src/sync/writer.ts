// Sending: what is pushed on this device goes out in numbered, sealed batches. The batch
// numbers and payloads are fixed in the local state first (state.ts, the outbox); this part
// times, seals and stores them, in order.
import { performance } from 'node:perf_hooks';
import { MAX_WRITE_DELAY_MS, nextBatchTime } from './clock.js';
import { payloadDigest, sealJson } from './crypto.js';
import { deviceRef, type DeviceContext } from './device.js';
import { continueOwnLog } from './own-log.js';
import type { OutboxBatch } from './state.js';

/** Times a slow batch is published again under a fresh time before the device stops trying. */
const REPUBLISH_ATTEMPTS = 3;

/** Sends everything pending, in batches. Returns the number of batches sent. */
export async function flush(ctx: DeviceContext): Promise<number> {
  const p = ctx.state.pendingSummary();
  if (p.entries + p.deletions + p.outbox === 0) return 0;
  // Numbered in push order first (one transaction, whatever other processes of this device do),
  // then, before the first send of this process: does the log go further than this state
  // remembers? If so, what is numbered here is numbered again after it (own-log.ts).
  ctx.state.assignBatches(ctx.batching, ctx.clock());
  if (!ctx.ownLogChecked) await continueOwnLog(ctx);
  let sent = 0;
  for (const batch of ctx.state.outbox()) {
    await sendBatch(ctx, batch);
    sent++;
  }
  return sent;
}

/** Sends only if a batch is due: full by count or size, its oldest entry too old, or a batch left unsent. */
export async function flushIfDue(ctx: DeviceContext): Promise<number> {
  const p = ctx.state.pendingSummary();
  const b = ctx.batching;
  const due = p.outbox > 0 || p.entries >= b.maxEntries || p.bytes >= b.maxBytes || (p.oldestAt !== null && ctx.clock() - p.oldestAt >= b.maxAgeMs);
  return due ? flush(ctx) : 0;
}

/**
 * Seals an outbox batch at a fresh time and stores it. If storing took longer than readers
 * allow for, they may have listed past its time already: the same payload goes out again
 * under a new time (readers take whichever copy they see first, and ignore the other).
 */
async function sendBatch(ctx: DeviceContext, batch: OutboxBatch): Promise<void> {
  const digest = payloadDigest(batch.payload);
  for (let attempt = 1; attempt <= REPUBLISH_ATTEMPTS; attempt++) {
    // The state keeps the last time the store took; this process never reuses one it tried.
    const { time, fromClock } = nextBatchTime(ctx.clock(), ctx.state.get('clockOffsetMs'), Math.max(ctx.state.get('lastTime'), ctx.lastAttemptTime));
    ctx.lastAttemptTime = time;
    const position = { deviceId: ctx.deviceId, seq: batch.seq, time, kind: batch.kind };
    const data = sealJson(ctx.keys, position, batch.payload).toString('base64');
    const wallStart = Date.now();
    const monoStart = performance.now();
    const submit = () =>
      batch.kind === 'entries'
        ? ctx.backend.submitEntries({ ...deviceRef(ctx), batches: [{ ...position, data }] })
        : ctx.backend.addDeletionRequest({ ...deviceRef(ctx), batch: { ...position, data } });
    if (attempt === 1) {
      const stored = await submit();
      ctx.state.markSent(batch.seq, stored.stored[0]!.id, time, digest, fromClock);
    } else {
      try {
        const stored = await submit();
        ctx.state.markCopySent({ id: stored.stored[0]!.id, ...position }, digest, fromClock);
      } catch {
        return; // the first copy is stored; a failed extra copy changes nothing
      }
    }
    // Both clocks: the monotonic one skips a suspended laptop's sleep, the wall clock does not.
    const took = Math.max(Date.now() - wallStart, performance.now() - monoStart);
    if (took <= MAX_WRITE_DELAY_MS) return;
  }
}
