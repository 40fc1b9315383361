import { CronPattern } from 'croner';
import { ScheduleError } from './errors.js';
import { CRON_MODE, type CronSchedule, type IntervalSchedule } from './parse.js';
import { backupCommand, checkJobs, checkPrintOptions, type PrintJob, type PrintOptions } from './print-jobs.js';

// Names cron(8) knows; croner's extensions (L, W, #, ?) are not among the words it accepts.
const CRON_NAMES = new Set(['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec', 'sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat']);

function notRepresentable(spec: string, reason: string): ScheduleError {
  return new ScheduleError('NotRepresentable', `schedule ${JSON.stringify(spec)} cannot be a crontab line: ${reason}`);
}

/**
 * The cron fields that fire every `seconds`, when that interval divides an hour or a day evenly
 * (cron counts from the top of the hour or from midnight, not from when it started).
 */
function intervalToCron(schedule: IntervalSchedule): string {
  const { seconds } = schedule;
  const refuse = (): ScheduleError =>
    notRepresentable(
      schedule.spec,
      `cron can only repeat at intervals that divide an hour (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30 minutes) or a day (1, 2, 3, 4, 6, 8, 12, 24 hours); ${seconds} s is neither. Use such an interval, a cron expression, or the systemd timer (which takes any interval)`,
    );
  if (seconds % 60 !== 0) throw refuse();
  const minutes = seconds / 60;
  if (minutes < 60 && 60 % minutes === 0) return minutes === 1 ? '* * * * *' : `*/${minutes} * * * *`;
  if (minutes % 60 !== 0) throw refuse();
  const hours = minutes / 60;
  if (hours < 24 && 24 % hours === 0) return hours === 1 ? '0 * * * *' : `0 */${hours} * * *`;
  if (hours === 24) return '0 0 * * *';
  throw refuse();
}

/** The expression as cron(8) reads it: 5 fields, standard syntax, the same meaning as croner's. */
function cronForCrontab(schedule: CronSchedule): string {
  if (schedule.timezone !== undefined) {
    throw notRepresentable(schedule.spec, `cron runs in the machine's time zone, not ${schedule.timezone}; write the times in local time, or use the systemd timer (which takes a time zone)`);
  }
  let fields = schedule.expression.split(' ');
  if (fields.length === 6) {
    const pattern = new CronPattern(schedule.expression, undefined, { mode: CRON_MODE });
    if (pattern.second.some((flag, second) => (second === 0) !== Boolean(flag))) {
      throw notRepresentable(schedule.spec, 'cron runs at most once a minute, at second 0; drop the seconds field or use the systemd timer');
    }
    fields = fields.slice(1);
  }
  for (const field of fields) {
    const words = field.toLowerCase().split(/[,/-]/);
    if (!words.every((w) => w === '*' || /^\d+$/.test(w) || CRON_NAMES.has(w))) {
      throw notRepresentable(schedule.spec, `${JSON.stringify(field)} uses syntax cron(8) does not know (L, W, # and ? are croner extensions); use the systemd timer or the offsite daemon`);
    }
  }
  const [, , dayOfMonth = '*', , dayOfWeek = '*'] = fields;
  // With both day fields restricted, cron(8) runs on either day, except that a field starting
  // with "*" (say "*/2") makes it require both; croner always takes either. Refuse the case where they differ.
  const restricted = (f: string): boolean => f !== '*';
  if (restricted(dayOfMonth) && restricted(dayOfWeek) && (dayOfMonth.startsWith('*') || dayOfWeek.startsWith('*'))) {
    throw notRepresentable(schedule.spec, 'cron(8) and the offsite daemon read a day field starting with "*" differently when both day fields are set; list the days instead');
  }
  return fields.join(' ');
}

/** A shell word for /bin/sh, with `%` escaped: cron turns an unescaped `%` into a newline. */
function shellWord(word: string): string {
  const quoted = /^[A-Za-z0-9_./:@+=,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
  return quoted.replace(/%/g, '\\%');
}

/**
 * One crontab line per job. Without `user`, lines for `crontab -e`; with it, lines for
 * /etc/crontab or /etc/cron.d (a user field before the command). Throws ScheduleError
 * `NotRepresentable` for an interval that does not divide an hour or a day, and for cron
 * expressions using croner's extensions, seconds or a time zone; `InvalidJobName` and
 * `InvalidArgument` as systemdUnits does.
 */
export function crontabLines(jobs: readonly PrintJob[], opts: PrintOptions): string[] {
  checkPrintOptions(opts);
  checkJobs(jobs);
  return jobs.map((job) => {
    const when = job.schedule.kind === 'interval' ? intervalToCron(job.schedule) : cronForCrontab(job.schedule);
    const command = backupCommand(job.name, opts).map(shellWord).join(' ');
    return [when, ...(opts.user === undefined ? [] : [opts.user]), command].join(' ');
  });
}
