import { CronPattern } from 'croner';
import { messageOf, ScheduleError } from './errors.js';
import { CRON_MODE, type CronSchedule } from './parse.js';

// Croner marks a plain weekday with every occurrence bit set (1st to 5th, and last); anything
// else is `#n` or `L` in the day-of-week field.
const EVERY_OCCURRENCE = 0b111111;
const WEEKDAYS_FROM_MONDAY = [1, 2, 3, 4, 5, 6, 0];
const WEEKDAY_NAMES = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

function notRepresentable(schedule: CronSchedule, reason: string): ScheduleError {
  return new ScheduleError(
    'NotRepresentable',
    `cron expression ${JSON.stringify(schedule.expression)} ${reason}, which systemd's OnCalendar= cannot express; use an interval or plain cron syntax (numbers, names, lists, ranges, * and */n), or let the offsite daemon run this expression as it is`,
  );
}

/** The values set in one of croner's 0/1 arrays, shifted by `offset` (1 for days and months). */
function valuesOf(flags: readonly number[], offset = 0): number[] {
  return flags.flatMap((flag, index) => (flag ? [index + offset] : []));
}

/** Consecutive runs of `values` (in the order given, `next` says what follows what). */
function runsOf(values: readonly number[], follows: (a: number, b: number) => boolean): number[][] {
  const runs: number[][] = [];
  for (const v of values) {
    const last = runs.at(-1);
    if (last && follows(last.at(-1) ?? NaN, v)) last.push(v);
    else runs.push([v]);
  }
  return runs;
}

/**
 * One OnCalendar= component: `*`, a repetition (`00/15`: from 0 every 15, to the end of the
 * range), or a list of values and `a..b` ranges.
 */
function component(values: readonly number[], min: number, max: number): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  if (values.length === max - min + 1) return '*';
  const first = values[0];
  const second = values[1];
  if (first !== undefined && second !== undefined && values.length >= 3) {
    const step = second - first;
    const isRepetition = values.every((v, i) => v === first + i * step) && (values.at(-1) ?? max) + step > max;
    if (isRepetition) return `${pad(first)}/${step}`;
  }
  return runsOf(values, (a, b) => b === a + 1)
    .map((run) => (run.length >= 3 ? `${pad(run[0] ?? min)}..${pad(run.at(-1) ?? max)}` : run.map(pad).join(',')))
    .join(',');
}

function weekdays(days: readonly number[]): string {
  const ordered = WEEKDAYS_FROM_MONDAY.filter((d) => days.includes(d));
  const position = (d: number): number => WEEKDAYS_FROM_MONDAY.indexOf(d);
  return runsOf(ordered, (a, b) => position(b) === position(a) + 1)
    .map((run) => {
      const names = run.map((d) => WEEKDAY_NAMES[d] ?? '?');
      return names.length >= 3 ? `${names[0]}..${names.at(-1)}` : names.join(',');
    })
    .join(',');
}

/**
 * The OnCalendar= values that fire at exactly the times the cron expression names, read from
 * croner's own parse so the timer and the daemon agree. Two values when both day-of-month and
 * day-of-week are restricted: cron then runs on either (a union, which is what several
 * OnCalendar= lines mean). Throws ScheduleError `NotRepresentable` for croner's extensions
 * (L, W, #): systemd has no nearest-weekday or nth-weekday.
 */
export function cronToOnCalendar(schedule: CronSchedule): string[] {
  let pattern: CronPattern;
  try {
    pattern = new CronPattern(schedule.expression, schedule.timezone, { mode: CRON_MODE });
  } catch (e) {
    throw new ScheduleError('InvalidSchedule', `invalid cron expression ${JSON.stringify(schedule.expression)}: ${messageOf(e)}`, { cause: e });
  }
  if (pattern.lastDayOfMonth || pattern.lastWeekday || pattern.nearestWeekdays.some(Boolean)) {
    throw notRepresentable(schedule, 'uses L or W in the day of month (last day, nearest weekday)');
  }
  if (pattern.dayOfWeek.some((flag) => flag !== 0 && flag !== EVERY_OCCURRENCE)) {
    throw notRepresentable(schedule, 'uses # or L in the day of week (nth or last weekday of the month)');
  }
  const time = [
    component(valuesOf(pattern.hour), 0, 23),
    component(valuesOf(pattern.minute), 0, 59),
    component(valuesOf(pattern.second), 0, 59),
  ].join(':');
  const month = component(valuesOf(pattern.month, 1), 1, 12);
  const day = component(valuesOf(pattern.day, 1), 1, 31);
  const days = valuesOf(pattern.dayOfWeek);
  const dow = days.length === 7 ? '' : `${weekdays(days)} `;
  const zone = schedule.timezone === undefined ? '' : ` ${schedule.timezone}`;
  if (!pattern.starDOM && !pattern.starDOW) {
    return [`${dow}*-${month}-* ${time}${zone}`, `*-${month}-${day} ${time}${zone}`];
  }
  return [`${dow}*-${month}-${day} ${time}${zone}`];
}
