// The schedule layer's public face: when to run (intervals and cron expressions), a loop that
// runs one job on a schedule without overlapping runs or dying of a failed one, and the systemd
// and crontab equivalents printed by `offsite schedule print`. Other layers import from here only.
import { crontabLines } from './crontab.js';
import { systemdUnits } from './systemd.js';

export { ScheduleError, isScheduleError, type ScheduleErrorCode } from './errors.js';
export { parseSchedule, nextRun, type Schedule, type IntervalSchedule, type CronSchedule, type ParseScheduleOptions } from './parse.js';
export { runOnSchedule, jitterMs, type RunOnScheduleOptions, type ScheduleHandle, type TickInfo } from './runner.js';
export { setLongTimeout, MAX_TIMEOUT_MS, type LongTimeoutOptions, type TimerHandle } from './timer.js';
export { cronToOnCalendar } from './on-calendar.js';
export type { PrintJob, PrintOptions } from './print-jobs.js';
export { systemdUnits, crontabLines };
export type { UnitFile } from './systemd.js';

/** The helpers behind `offsite schedule print`, grouped. */
export const schedulePrint = { systemdUnits, crontabLines } as const;
