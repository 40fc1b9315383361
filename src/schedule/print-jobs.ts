import { ScheduleError } from './errors.js';
import type { Schedule } from './parse.js';

/** One job for `offsite schedule print`. */
export interface PrintJob {
  /** Becomes part of unit file names and an argument of `offsite backup`: /^[A-Za-z0-9][A-Za-z0-9_.-]*$/. */
  name: string;
  schedule: Schedule;
  /** The most random delay before each run, in seconds (the daemon's jitter); systemd's RandomizedDelaySec=. Default 0. */
  jitterSeconds?: number;
}

export interface PrintOptions {
  /** The absolute path of the offsite binary: timers and cron run with a minimal PATH, from `/`. */
  command: string;
  /** An absolute path, passed as `--config PATH`. */
  configPath?: string;
  /** systemd: the service's User=. crontab: lines in the /etc/cron.d format, with a user field. */
  user?: string;
}

const JOB_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
// The portable user name set (useradd's default rule), plus the trailing $ of machine accounts.
const USER_NAME = /^[a-z_][a-z0-9_-]*\$?$/i;

/** Refuses names that could not be a unit file name or a bare shell word, and duplicates. */
export function checkJobs(jobs: readonly PrintJob[]): void {
  const seen = new Set<string>();
  for (const job of jobs) {
    if (typeof job.name !== 'string' || !JOB_NAME.test(job.name)) {
      throw new ScheduleError(
        'InvalidJobName',
        `invalid job name ${JSON.stringify(job.name)}: use letters, digits, "_", "." and "-", starting with a letter or digit (such as "nightly" or "db-main")`,
      );
    }
    if (seen.has(job.name)) throw new ScheduleError('InvalidJobName', `job name ${JSON.stringify(job.name)} appears twice`);
    seen.add(job.name);
    const jitter = job.jitterSeconds ?? 0;
    if (!Number.isSafeInteger(jitter) || jitter < 0) {
      throw new ScheduleError('InvalidArgument', `job ${job.name}: jitterSeconds must be a whole number of seconds >= 0, got ${jitter}`);
    }
  }
}

export function checkPrintOptions(opts: PrintOptions): void {
  const bad = (message: string): ScheduleError => new ScheduleError('InvalidArgument', message);
  const checkPath = (what: string, value: string): void => {
    if (typeof value !== 'string' || !value.startsWith('/')) {
      throw bad(`${what} must be an absolute path (timers and cron start from / with a minimal PATH), got ${JSON.stringify(value)}`);
    }
    // A line break would end the unit setting or the crontab line and start another one.
    if (/[\0\r\n]/.test(value)) throw bad(`${what} must not contain line breaks, got ${JSON.stringify(value)}`);
  };
  checkPath('the offsite command', opts.command);
  if (opts.configPath !== undefined) checkPath('the config path', opts.configPath);
  if (opts.user !== undefined && !USER_NAME.test(opts.user)) throw bad(`invalid user name ${JSON.stringify(opts.user)}`);
}

/** The words of the command that runs one backup of `jobName`. */
export function backupCommand(jobName: string, opts: PrintOptions): string[] {
  return [opts.command, ...(opts.configPath === undefined ? [] : ['--config', opts.configPath]), 'backup', jobName];
}
