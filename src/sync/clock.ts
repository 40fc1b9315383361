// The timing bounds that make time-ordered log keys safe (docs/sync.md, "Why no batch is
// missed"). A batch's key starts with the writer's clock; a reader lists after a cursor derived
// from the store's own timestamps. Nothing is missed as long as
//   - a writer's clock is within MAX_CLOCK_SKEW_MS of the store's (the client calibrates
//     against the store's timestamps at registration and on every pull), and
//   - a batch becomes visible within MAX_WRITE_DELAY_MS of its time being chosen (a writer
//     whose PUT took longer publishes the same batch again under a fresh time).
// The reader's lookback covers both, plus the store's one-second timestamp granularity.

export const MAX_CLOCK_SKEW_MS = 60_000;
export const MAX_WRITE_DELAY_MS = 60_000;
export const TIMESTAMP_GRANULARITY_MS = 1_000;
export const LIST_LOOKBACK_MS = MAX_CLOCK_SKEW_MS + MAX_WRITE_DELAY_MS + TIMESTAMP_GRANULARITY_MS;
/** Drift below this is left alone: honest clocks plus upload latency stay well inside it. */
export const CLOCK_CORRECTION_THRESHOLD_MS = 20_000;

/** The time for a device's next batch: its calibrated clock, and always after its previous batch. */
export function nextBatchTime(localNow: number, offsetMs: number, previousTime: number): number {
  return Math.max(Math.round(localNow + offsetMs), previousTime + 1);
}

/**
 * A new clock offset from observations of this device's own writes: `time` is what the device
 * chose, `storedAt` what the store recorded. storedAt - time is the device's lag plus upload
 * latency; only a lag (or lead) beyond the threshold is corrected, by the smallest observed
 * lag (the one least inflated by latency). Running ahead is harmless for delivery, running
 * behind is not, so a lead is only corrected when it is large.
 */
export function calibratedOffset(offsetMs: number, samples: { time: number; storedAt: number }[]): number {
  if (samples.length === 0) return offsetMs;
  const drifts = samples.map((s) => s.storedAt - s.time);
  const smallest = Math.min(...drifts);
  const largest = Math.max(...drifts);
  if (smallest > CLOCK_CORRECTION_THRESHOLD_MS) return offsetMs + smallest;
  if (largest < -MAX_CLOCK_SKEW_MS / 2) return offsetMs + largest;
  return offsetMs;
}
