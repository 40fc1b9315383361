/**
 * Typed schedule errors, with stable codes for callers to switch on (the CLI maps them all to a
 * usage error). Messages quote the value that was refused and say what would be accepted.
 */

export type ScheduleErrorCode =
  /** Not an interval nor a cron expression, an interval under 1 s, a cron expression that never runs, an unknown time zone. */
  | 'InvalidSchedule'
  /** A job name that cannot become a unit file name or a command-line argument as is. */
  | 'InvalidJobName'
  /** A valid schedule that systemd's OnCalendar= or a crontab line cannot express exactly. */
  | 'NotRepresentable'
  /** A bad option: negative jitter, a relative command path, a user name with spaces... */
  | 'InvalidArgument';

export class ScheduleError extends Error {
  readonly code: ScheduleErrorCode;

  constructor(code: ScheduleErrorCode, message: string, opts: { cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = `${code}Error`;
    this.code = code;
  }
}

export function isScheduleError(e: unknown, code?: ScheduleErrorCode): e is ScheduleError {
  return e instanceof ScheduleError && (code === undefined || e.code === code);
}

export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
