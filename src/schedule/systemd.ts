import { cronToOnCalendar } from './on-calendar.js';
import { backupCommand, checkJobs, checkPrintOptions, type PrintJob, type PrintOptions } from './print-jobs.js';

export interface UnitFile {
  fileName: string;
  content: string;
}

// After boot, an interval job waits this long (or its interval, if shorter) before its first
// run: out of the boot rush, and soon enough that a machine rebooted daily still gets backups.
const BOOT_DELAY_SECONDS = 300;

/**
 * One argument of ExecStart=: systemd splits on spaces and reads quotes and backslashes itself,
 * and expands `%` specifiers and `$` variables even inside quotes, so those are doubled.
 */
function unitArgument(word: string): string {
  const quoted = /^[A-Za-z0-9_./:@+=,-]+$/.test(word) ? word : `"${word.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  return quoted.replace(/%/g, '%%').replace(/\$/g, '$$$$');
}

function serviceUnit(job: PrintJob, opts: PrintOptions): string {
  return [
    `# Written by \`offsite schedule print\`: one backup run of job ${job.name}, started by offsite-backup-${job.name}.timer.`,
    '[Unit]',
    `Description=Offsite backup ${job.name}`,
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    'Type=oneshot',
    ...(opts.user === undefined ? [] : [`User=${opts.user}`]),
    '# No secrets in this file: unit files are readable by every user. Put credentials',
    '# (AWS_ACCESS_KEY_ID=..., AWS_SECRET_ACCESS_KEY=...) in an environment file with mode 600',
    '# (chmod 600, owned by root) and uncomment the next line.',
    '#EnvironmentFile=/etc/offsite/credentials.env',
    `ExecStart=${backupCommand(job.name, opts).map(unitArgument).join(' ')}`,
    '# A backup yields the CPU and the disk to everything else on the machine.',
    'Nice=10',
    'IOSchedulingClass=idle',
    '',
  ].join('\n');
}

function timerUnit(job: PrintJob): string {
  const { schedule } = job;
  const when =
    schedule.kind === 'interval'
      ? [
          `OnBootSec=${Math.min(schedule.seconds, BOOT_DELAY_SECONDS)}s`,
          // Counted from the last start, so the runs keep to the interval; systemd never starts a unit that is still running.
          `OnUnitActiveSec=${schedule.seconds}s`,
        ]
      : [
          ...cronToOnCalendar(schedule).map((calendar) => `OnCalendar=${calendar}`),
          // A run missed while the machine was off happens at the next boot.
          'Persistent=true',
        ];
  return [
    '# Written by `offsite schedule print`.',
    '[Unit]',
    `Description=Offsite backup ${job.name} (${schedule.spec})`,
    '',
    '[Timer]',
    ...when,
    `RandomizedDelaySec=${job.jitterSeconds ?? 0}`,
    '',
    '[Install]',
    'WantedBy=timers.target',
    '',
  ].join('\n');
}

/**
 * A systemd service and timer per job: `offsite-backup-NAME.service` runs `offsite backup
 * NAME` once, `offsite-backup-NAME.timer` starts it on the job's schedule. Throws ScheduleError
 * `InvalidJobName`, `InvalidArgument`, or `NotRepresentable` for a cron expression that
 * OnCalendar= cannot express.
 */
export function systemdUnits(jobs: readonly PrintJob[], opts: PrintOptions): UnitFile[] {
  checkPrintOptions(opts);
  checkJobs(jobs);
  return jobs.flatMap((job) => [
    { fileName: `offsite-backup-${job.name}.service`, content: serviceUnit(job, opts) },
    { fileName: `offsite-backup-${job.name}.timer`, content: timerUnit(job) },
  ]);
}
