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
/**
 * The largest correction of a device's clock, either way. The store's timestamps are not
 * authenticated, so one forged LastModified could otherwise move a device's batch times
 * anywhere (past the 13 digits of a batch id: no push would ever succeed again). A day covers
 * every honest error that still lets a device talk to a store (a clock set to local time instead
 * of UTC is at most 14 hours off; S3 refuses requests signed more than 15 minutes off anyway);
 * a clock further off is broken, and its batches are still found through the gaps they leave.
 */
export const MAX_CLOCK_OFFSET_MS = 24 * 3600_000;

/** A clock offset held within MAX_CLOCK_OFFSET_MS (a state saved by an older Offsite may hold any). */
export function boundClockOffset(offsetMs: number): number {
  return Math.max(-MAX_CLOCK_OFFSET_MS, Math.min(MAX_CLOCK_OFFSET_MS, offsetMs));
}

/**
 * The time for a device's next batch: its calibrated clock, and always after its previous batch,
 * unless that one lies more than MAX_CLOCK_OFFSET_MS ahead: such a time came from a clock or an
 * offset no honest store produces (an older Offsite saved it before a write that then failed),
 * and following it would keep the device out of range for good. `fromClock`: false when the
 * time is the previous one plus 1 ms (the clock is behind it): such a time says nothing about
 * the clock, and is not used to calibrate it.
 */
export function nextBatchTime(localNow: number, offsetMs: number, previousTime: number): { time: number; fromClock: boolean } {
  const now = Math.round(localNow + boundClockOffset(offsetMs));
  if (previousTime > now + MAX_CLOCK_OFFSET_MS || now > previousTime) return { time: now, fromClock: true };
  return { time: previousTime + 1, fromClock: false };
}

/** The clock offset measured at registration (the store's time of the record minus the local time before it), bounded. */
export function registrationOffset(driftMs: number): number {
  return Math.abs(driftMs) > CLOCK_CORRECTION_THRESHOLD_MS ? boundClockOffset(driftMs) : 0;
}

/**
 * A new clock offset from observations of this device's own writes: `time` is what the device
 * chose, `storedAt` what the store recorded. storedAt - time is the device's lag plus upload
 * latency; only a lag (or lead) beyond the threshold is corrected, by the smallest observed
 * lag (the one least inflated by latency). Running ahead is harmless for delivery, running
 * behind is not, so a lead is only corrected when it is large. The result stays within
 * MAX_CLOCK_OFFSET_MS.
 */
export function calibratedOffset(offsetMs: number, samples: { time: number; storedAt: number }[]): number {
  const drifts = samples.map((s) => s.storedAt - s.time).filter(Number.isFinite);
  if (drifts.length === 0) return offsetMs;
  const smallest = Math.min(...drifts);
  const largest = Math.max(...drifts);
  if (smallest > CLOCK_CORRECTION_THRESHOLD_MS) return boundClockOffset(offsetMs + smallest);
  if (largest < -MAX_CLOCK_SKEW_MS / 2) return boundClockOffset(offsetMs + largest);
  return offsetMs;
}
