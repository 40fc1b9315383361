/**
 * The longest delay setTimeout honours: 2^31-1 ms, about 24.8 days. A longer one does not wait
 * at all (Node warns and uses 1 ms), which would turn a monthly cron into a busy loop.
 */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export type TimerHandle = ReturnType<typeof setTimeout>;

export interface LongTimeoutOptions {
  /**
   * Let the process exit while only this timer is pending. Default false: a daemon's schedule
   * is what keeps it alive; an app that embeds the loop sets it so it can still exit normally.
   */
  unref?: boolean;
  /** The longest single setTimeout; only tests set it lower. Default MAX_TIMEOUT_MS. */
  maxChunkMs?: number;
  /** Milliseconds since the epoch. Default Date.now. */
  clock?: () => number;
  /** Default the global setTimeout/clearTimeout; tests pass wrappers to watch the chunks. */
  setTimer?: (callback: () => void, ms: number) => TimerHandle;
  clearTimer?: (handle: TimerHandle) => void;
}

/**
 * Calls `callback` once, `delayMs` from now, however long that is: waits of more than
 * `maxChunkMs` are a chain of timers. The deadline is a wall-clock time, re-read at each link,
 * so a clock that jumped (NTP, a suspended machine) is caught up with at the next link rather
 * than carried over. Returns a function that cancels the callback (harmless once it has run).
 */
export function setLongTimeout(callback: () => void, delayMs: number, options: LongTimeoutOptions = {}): () => void {
  const clock = options.clock ?? Date.now;
  const maxChunkMs = Math.max(1, Math.min(options.maxChunkMs ?? MAX_TIMEOUT_MS, MAX_TIMEOUT_MS));
  const setTimer = options.setTimer ?? ((cb: () => void, ms: number) => setTimeout(cb, ms));
  const clearTimer = options.clearTimer ?? ((handle: TimerHandle) => clearTimeout(handle));
  const deadline = clock() + (Number.isFinite(delayMs) ? Math.max(0, delayMs) : 0);
  let handle: TimerHandle | undefined;
  let cancelled = false;

  const arm = (): void => {
    handle = setTimer(onLink, Math.min(Math.max(0, deadline - clock()), maxChunkMs));
    if (options.unref) handle.unref();
  };
  function onLink(): void {
    handle = undefined;
    if (cancelled) return;
    // A timer may fire a millisecond before the wall clock agrees; that is just one more short link.
    if (clock() < deadline) arm();
    else callback();
  }
  arm();
  return () => {
    cancelled = true;
    if (handle !== undefined) clearTimer(handle);
    handle = undefined;
  };
}
