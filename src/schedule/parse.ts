import { Cron } from 'croner';
import { messageOf, ScheduleError } from './errors.js';

/**
 * When a job runs. Plain data, so a config file, the catalog or an API response can hold it;
 * `spec` is what the user wrote, for messages and listings.
 */
export type Schedule = IntervalSchedule | CronSchedule;

/** Every `seconds` seconds. parseSchedule accepts whole seconds from 1 up; the loop accepts any positive value. */
export interface IntervalSchedule {
  readonly kind: 'interval';
  readonly seconds: number;
  readonly spec: string;
}

/** The times a 5-field (minute first) or 6-field (second first) cron expression names. */
export interface CronSchedule {
  readonly kind: 'cron';
  /** The expression with its fields separated by single spaces. */
  readonly expression: string;
  readonly spec: string;
  /** An IANA time zone (`Europe/Berlin`); without one, cron times are in the process's local time. */
  readonly timezone?: string;
}

export interface ParseScheduleOptions {
  /** The time zone cron expressions are read in; ignored for intervals. Default: local time. */
  timezone?: string;
}

const EXAMPLES = 'use an interval such as "3600" or "15m" (s, m, h, d), or a cron expression such as "0 3 * * *" (every day at 03:00)';
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };
/** 5 fields (minute first), or 6 (second first); croner's 7th (year) field has no cron(8) or systemd equivalent we emit. */
export const CRON_MODE = '5-or-6-parts';

function invalid(spec: string | number, reason: string, cause?: unknown): ScheduleError {
  return new ScheduleError('InvalidSchedule', `invalid schedule ${JSON.stringify(String(spec))}: ${reason}; ${EXAMPLES}`, { cause });
}

function intervalOf(spec: string | number, seconds: number): IntervalSchedule {
  if (!Number.isInteger(seconds)) throw invalid(spec, 'an interval must be a whole number of seconds');
  if (!Number.isSafeInteger(seconds)) throw invalid(spec, 'this interval is too long');
  if (seconds < 1) throw invalid(spec, 'an interval must be at least 1 second');
  return { kind: 'interval', seconds, spec: String(spec).trim() };
}

/**
 * Reads a schedule: an interval (a whole number of seconds, as a number or a string, or digits
 * with a unit: "90s", "15m", "1h", "1d") or a 5- or 6-field cron expression. Throws
 * ScheduleError `InvalidSchedule`, naming the value and giving valid examples.
 */
export function parseSchedule(spec: string | number, options: ParseScheduleOptions = {}): Schedule {
  if (typeof spec === 'number') return intervalOf(spec, spec);
  if (typeof spec !== 'string') throw invalid(String(spec), 'expected a string or a number');
  const text = spec.trim();
  if (text === '') throw invalid(spec, 'it is empty');
  const interval = /^(\d+)([smhd])?$/.exec(text);
  if (interval) return intervalOf(spec, Number(interval[1]) * (UNIT_SECONDS[interval[2] ?? 's'] ?? 1));
  if (/^[-+]?\d*\.?\d+\s*[a-z]*$/i.test(text)) {
    throw invalid(spec, 'an interval is a whole, positive number of seconds, optionally followed by s, m, h or d');
  }
  const fields = text.split(/\s+/);
  if (fields.length !== 5 && fields.length !== 6) {
    throw invalid(spec, `neither an interval nor a cron expression (a cron expression has 5 or 6 fields, this has ${fields.length})`);
  }
  const expression = fields.join(' ');
  const timezone = options.timezone;
  if (timezone !== undefined) checkTimezone(spec, timezone);
  const schedule: CronSchedule = timezone === undefined ? { kind: 'cron', expression, spec: text } : { kind: 'cron', expression, spec: text, timezone };
  let cron: Cron;
  try {
    cron = cronFor(schedule);
  } catch (e) {
    const hint = fields.length === 6 ? ' (a 6-field expression starts with a seconds field)' : '';
    throw invalid(spec, `${messageOf(e).replace(/^CronPattern: /, '')}${hint}`, e);
  }
  // Croner accepts patterns that can never match (February 30th); a job that never runs is a mistake.
  if (cron.nextRun(new Date()) === null) throw invalid(spec, 'this cron expression never matches a date');
  return schedule;
}

function checkTimezone(spec: string, timezone: string): void {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
  } catch (e) {
    throw invalid(spec, `unknown time zone ${JSON.stringify(timezone)} (use an IANA name such as "Europe/Berlin" or "UTC")`, e);
  }
}

// One parsed Cron per schedule object: schedules are immutable data, and the loop asks on every tick.
const crons = new WeakMap<CronSchedule, Cron>();

/** A paused croner job without a callback: used only to compute run times, it never starts a timer. */
function cronFor(schedule: CronSchedule): Cron {
  let cron = crons.get(schedule);
  if (!cron) {
    cron = new Cron(schedule.expression, { paused: true, mode: CRON_MODE, ...(schedule.timezone === undefined ? {} : { timezone: schedule.timezone }) });
    crons.set(schedule, cron);
  }
  return cron;
}

/**
 * The first run strictly after `after`: `after` plus the interval, or the next time the cron
 * expression matches (whole seconds). Throws ScheduleError `InvalidSchedule` if a cron
 * expression has no run left (croner looks up to the year 3000).
 */
export function nextRun(schedule: Schedule, after: Date): Date {
  if (schedule.kind === 'interval') return new Date(after.getTime() + schedule.seconds * 1000);
  const next = cronFor(schedule).nextRun(after);
  if (next === null) {
    throw new ScheduleError('InvalidSchedule', `cron expression ${JSON.stringify(schedule.expression)} has no run after ${after.toISOString()}`);
  }
  return next;
}
