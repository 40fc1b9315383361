import { messageOf, ScheduleError } from './errors.js';
import { nextRun, type Schedule } from './parse.js';
import { setLongTimeout, type TimerHandle } from './timer.js';

/** A random delay, uniform in [0, maxMs) whole milliseconds; 0 when maxMs is 0. */
export function jitterMs(maxMs: number, random: () => number = Math.random): number {
  if (!Number.isFinite(maxMs) || maxMs < 0) throw new ScheduleError('InvalidArgument', `jitter must be a finite number of milliseconds >= 0, got ${maxMs}`);
  // min() guards a random() that returns 1, which Math.random never does but a stub might.
  return Math.min(Math.floor(random() * maxMs), Math.max(0, Math.ceil(maxMs) - 1));
}

/** What one run did, reported through onTick after it finished. */
export interface TickInfo {
  startedAt: Date;
  finishedAt: Date;
  ok: boolean;
  /** What the task threw or rejected with, when ok is false. */
  error?: unknown;
  /** Ticks that fell due while this run was going: dropped, not queued. */
  skippedTicks: number;
}

export interface RunOnScheduleOptions {
  schedule: Schedule;
  /**
   * One run. The signal aborts when stop({ abort: true }) is called; pass it to every I/O call.
   * Whatever it throws or rejects with goes to onError; the loop carries on.
   */
  task: (signal: AbortSignal) => Promise<void>;
  /** The most random delay added to each tick, in ms, so many hosts do not hit the bucket at once. Default 0. */
  jitterMs?: number;
  /** Run once as soon as the loop starts, then follow the schedule. Default false. */
  runAtStart?: boolean;
  /**
   * When the first tick is due, instead of the schedule's next time after now (a time in the
   * past fires at once). The ticks after it follow the schedule from there: a daemon restarted
   * halfway through an interval keeps the grid of its last run rather than starting a new one.
   * Ignored with runAtStart.
   */
  firstRunAt?: Date;
  /** A run failed. Default: a process warning (stderr), so a failure is never silent. */
  onError?: (err: unknown) => void;
  /** A run finished, whether it succeeded or not. */
  onTick?: (info: TickInfo) => void;
  /** Default () => new Date(). */
  now?: () => Date;
  /**
   * Let the process exit while the loop only waits for its next tick. Default false: in a
   * daemon the schedule is the reason the process lives, so the pending timer keeps it up; an
   * app that embeds the loop next to its own work sets true, so the loop never holds up its exit.
   */
  unref?: boolean;
  /** For tests that need to watch timers; default the global setTimeout/clearTimeout. */
  setTimer?: (callback: () => void, ms: number) => TimerHandle;
  clearTimer?: (handle: TimerHandle) => void;
}

export interface ScheduleHandle {
  /** When the next tick fires (jitter included); undefined while a run started by a tick is going (the next one is decided when it ends) and after stop(). */
  nextRunAt(): Date | undefined;
  /** Whether a run is going. */
  running(): boolean;
  /** Runs the task now, or, if a run is going, waits for that one. Resolves when it has finished; never rejects. Does nothing after stop(). */
  runNow(): Promise<void>;
  /** Cancels future ticks; resolves when the current run, if any, has finished. `abort: true` first aborts that run's signal. */
  stop(opts?: { abort?: boolean }): Promise<void>;
}

interface Run {
  readonly controller: AbortController;
  skippedTicks: number;
  done: Promise<void>;
}

// Counting the ticks a long run skipped walks the cron schedule; past this many the count is a floor.
const MAX_COUNTED_SKIPS = 10_000;

/**
 * Runs `task` on `schedule`, one run at a time, for as long as the process lives or until stop().
 *
 * Ticks follow the schedule's own times (the next tick is computed from the previous tick, so
 * runs do not drift by their duration). A tick that falls due while a run is going is skipped,
 * not queued, and the next tick is then computed from when that run finished. A task that
 * throws or rejects is reported and the loop goes on: nothing is thrown to the caller after
 * this returns, and no promise is left to reject unhandled. Between ticks the loop is one
 * pending timer (a chain of them for waits beyond setTimeout's ~24.8 days).
 *
 * Throws ScheduleError `InvalidArgument` at once for options that cannot work (an interval of
 * 0, a negative jitter).
 */
export function runOnSchedule(options: RunOnScheduleOptions): ScheduleHandle {
  checkOptions(options);
  const { schedule, task } = options;
  const now = options.now ?? (() => new Date());
  const maxJitterMs = options.jitterMs ?? 0;
  // The timers run on the real clock even when `now` is a stub: a frozen stub would never let a chained wait end.
  const timerOptions = {
    unref: options.unref ?? false,
    ...(options.setTimer ? { setTimer: options.setTimer } : {}),
    ...(options.clearTimer ? { clearTimer: options.clearTimer } : {}),
  };

  let stopped = false;
  let pending: { cancel: () => void; dueAt: Date; firesAt: Date } | undefined;
  let current: Run | undefined;
  // The schedule time of the latest tick, run or skipped: the next tick is computed from it.
  let lastDueAt = now();

  const reportError = (err: unknown): void => {
    try {
      if (options.onError) options.onError(err);
      else process.emitWarning(`offsite schedule: a run failed: ${messageOf(err)}`, 'OffsiteScheduleWarning');
    } catch (inner) {
      // The error reporter itself failed: the daemon must not die of it, and nothing else is left to tell.
      process.emitWarning(`offsite schedule: onError threw: ${messageOf(inner)}`, 'OffsiteScheduleWarning');
    }
  };

  const arm = (dueAt: Date): void => {
    const firesAt = new Date(dueAt.getTime() + jitterMs(maxJitterMs));
    const cancel = setLongTimeout(onTimer, firesAt.getTime() - now().getTime(), timerOptions);
    pending = { cancel, dueAt, firesAt };
  };

  const armNext = (after: Date): void => {
    try {
      arm(nextRun(schedule, after));
    } catch (e) {
      // Only a cron expression with no run left gets here; the loop then idles until stop().
      pending = undefined;
      reportError(e);
    }
  };

  function onTimer(): void {
    if (!pending) return;
    lastDueAt = pending.dueAt;
    pending = undefined;
    if (stopped) return;
    if (current) {
      // A runNow() run is still going: drop this tick; the run re-arms from its finish time.
      current.skippedTicks += 1;
      return;
    }
    startRun();
  }

  /** Ticks due in (from, to]: how many a run that ended at `to` made the loop skip. */
  const countDue = (from: Date, to: Date): number => {
    if (schedule.kind === 'interval') return Math.max(0, Math.floor((to.getTime() - from.getTime()) / (schedule.seconds * 1000)));
    let count = 0;
    for (let t = nextRun(schedule, from); t <= to && count < MAX_COUNTED_SKIPS; t = nextRun(schedule, t)) count += 1;
    return count;
  };

  /** After a run: back on the schedule's own times, unless ticks fell due during it. */
  const rearmAfterRun = (run: Run, finishedAt: Date): void => {
    if (stopped || pending) return;
    try {
      const onGrid = nextRun(schedule, lastDueAt);
      if (run.skippedTicks === 0 && onGrid > finishedAt) {
        arm(onGrid);
        return;
      }
      run.skippedTicks += countDue(lastDueAt, finishedAt);
    } catch (e) {
      reportError(e);
      return;
    }
    lastDueAt = finishedAt;
    armNext(finishedAt);
  };

  const execute = async (run: Run): Promise<void> => {
    const startedAt = now();
    let ok = true;
    let error: unknown;
    try {
      await task(run.controller.signal);
    } catch (e) {
      ok = false;
      error = e;
    }
    const finishedAt = now();
    current = undefined;
    // Re-arm before reporting, so onTick already sees the next tick in nextRunAt().
    rearmAfterRun(run, finishedAt);
    if (!ok) reportError(error);
    if (options.onTick) {
      try {
        options.onTick({ startedAt, finishedAt, ok, ...(ok ? {} : { error }), skippedTicks: run.skippedTicks });
      } catch (e) {
        reportError(e);
      }
    }
  };

  const startRun = (): Promise<void> => {
    const run: Run = { controller: new AbortController(), skippedTicks: 0, done: Promise.resolve() };
    current = run;
    // execute() catches everything it calls; the catch is a last guard against an unhandled rejection.
    run.done = execute(run).catch(reportError);
    return run.done;
  };

  if (options.runAtStart) startRun();
  else if (options.firstRunAt) arm(options.firstRunAt);
  else armNext(lastDueAt);

  return {
    nextRunAt: () => (pending ? new Date(pending.firesAt) : undefined),
    running: () => current !== undefined,
    runNow: () => {
      if (current) return current.done;
      if (stopped) return Promise.resolve();
      return startRun();
    },
    stop: (opts = {}) => {
      stopped = true;
      pending?.cancel();
      pending = undefined;
      if (!current) return Promise.resolve();
      if (opts.abort) current.controller.abort(new DOMException('the schedule was stopped', 'AbortError'));
      return current.done;
    },
  };
}

function checkOptions(options: RunOnScheduleOptions): void {
  const bad = (message: string): ScheduleError => new ScheduleError('InvalidArgument', message);
  if (typeof options.task !== 'function') throw bad('runOnSchedule needs a task function');
  const { schedule } = options;
  if (schedule?.kind === 'interval') {
    // An interval of 0 or NaN would make the loop spin.
    if (!Number.isFinite(schedule.seconds) || schedule.seconds <= 0) throw bad(`an interval must be a positive number of seconds, got ${schedule.seconds}`);
  } else if (schedule?.kind !== 'cron' || typeof schedule.expression !== 'string') {
    throw bad('runOnSchedule needs a schedule from parseSchedule()');
  }
  const jitter = options.jitterMs ?? 0;
  if (!Number.isFinite(jitter) || jitter < 0) throw bad(`jitterMs must be a finite number >= 0, got ${jitter}`);
}
