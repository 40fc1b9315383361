// offsite daemon: every backup job on its schedule, until SIGTERM. offsite schedule print: the
// same schedules as systemd timers or crontab lines, for machines that would rather not run a
// daemon. Both only present what the backup jobs and schedule layers do.
import type { Command } from 'commander';
import { realpathSync } from 'node:fs';
import path from 'node:path';
import type { BackupLoopEvent } from '../../backup/jobs/index.js';
import { formatBytes, formatDuration, note, printJsonLine, printLine, UsageError } from '../output.js';
import { configHelp, configOption, type JobOptions } from './backup.js';


/** One log line per event, on stderr: a daemon's output is its log (journald adds the time). */
function describeEvent(e: BackupLoopEvent): string | undefined {
  const when = (d: Date | undefined) => (d ? d.toISOString() : 'not scheduled');
  switch (e.type) {
    case 'started':
      return e.jobs.length === 0 ? 'no backup jobs configured' : e.jobs.map((j) => `job ${j.job}: every ${j.schedule}, ${j.nextRunAt ? `next run ${j.nextRunAt.toISOString()}` : 'running now'}`).join('\n');
    case 'run-ok': {
      const r = e.result;
      const requests = Object.values(r.requests).reduce((a, b) => a + b, 0);
      return `job ${e.job}: ok ${r.name} ${formatBytes(r.size)} ${r.uploaded ? 'uploaded' : 'local only'} (${formatDuration(r.seconds)}, ${requests} requests)`;
    }
    case 'run-failed':
      return `job ${e.job}: FAILED${e.code ? ` (${e.code})` : ''}: ${e.error.replace(`job ${e.job}: `, '')}; next try ${when(e.nextRunAt)}`;
    case 'manifest-key-created':
      return `job ${e.job}: ${e.message}`;
    case 'pruned':
      return `job ${e.job}: pruned ${e.deletedLocal.length} local, ${e.deletedRemote.length} remote backup(s)`;
    case 'prune-failed':
      return `job ${e.job}: prune FAILED: ${e.error}`;
    case 'config-failed':
      return `cannot start: ${e.error}`;
    case 'stopped':
      return 'stopped';
  }
}

export function registerDaemonCommands(program: Command): void {
  program
    .command('daemon')
    .description('run every backup job on its schedule until SIGTERM: one run per job at a time, failures logged and retried at the next tick, no request to storage while idle')
    .option('--job <name...>', 'run only these jobs')
    .option('--run-at-start', 'run every job once at start, then on schedule')
    .option(configOption, configHelp)
    .addHelpText(
      'after',
      '\nLogs one line per run on stderr (--json: one JSON event per line on stdout).\n' +
        'SIGTERM or SIGINT abort a running upload cleanly (no partial object is left) and exit 0.\n' +
        'An interval job continues from its last recorded run after a restart.',
    )
    .action(async (o: { job?: string[]; runAtStart?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<JobOptions>();
      const { startBackupLoop } = await import('../../backup/jobs/index.js');
      let configError: string | undefined;
      const onEvent = (e: BackupLoopEvent): void => {
        if (e.type === 'config-failed') configError = e.error;
        if (g.json) printJsonLine({ at: new Date().toISOString(), ...e });
        else {
          const line = describeEvent(e);
          if (line) note(line);
        }
      };
      const loop = startBackupLoop({
        ...(g.config ? { configFile: g.config } : {}),
        ...(o.job ? { only: o.job } : {}),
        ...(o.runAtStart ? { runAtStart: true } : {}),
        unref: false,
        // The daemon is the host: its runs need no child process to keep them off its event loop.
        isolation: 'none',
        onEvent,
      });
      await loop.ready;
      if (configError !== undefined) throw new UsageError(configError);
      if (loop.jobs().length === 0) throw new UsageError('no backup jobs to run: add [jobs.NAME] to offsite.toml, or set OFFSITE_BACKUP_SOURCE and S3_BUCKET');
      await new Promise<void>((resolve) => {
        const onSignal = (): void => {
          process.off('SIGTERM', onSignal);
          process.off('SIGINT', onSignal);
          void loop.stop({ abort: true }).then(resolve);
        };
        process.on('SIGTERM', onSignal);
        process.on('SIGINT', onSignal);
      });
    });

  const schedule = program.command('schedule').description('the jobs\' schedules as systemd timers or crontab lines, instead of running the daemon');
  schedule
    .command('print')
    .description('print systemd service+timer units, or crontab lines, that run "offsite backup JOB" on each job\'s schedule')
    .option('--systemd', 'systemd units (one .service and one .timer per job)')
    .option('--cron', 'crontab lines')
    .option('--job <name...>', 'only these jobs')
    .option('--user <name>', 'run as this user (systemd User=; with --cron, /etc/cron.d format with a user field)')
    .option('--command <path>', 'absolute path of the offsite binary (default: this one)')
    .option(configOption, configHelp)
    .addHelpText('after', '\nInstall: offsite schedule print --systemd, save each unit under /etc/systemd/system/, then\n  systemctl daemon-reload && systemctl enable --now offsite-backup-JOB.timer\nor: offsite schedule print --cron --user backup > /etc/cron.d/offsite')
    .action(async (o: { systemd?: boolean; cron?: boolean; job?: string[]; user?: string; command?: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<JobOptions>();
      if (Boolean(o.systemd) === Boolean(o.cron)) throw new UsageError('choose one: --systemd or --cron');
      const { loadJobsConfig, findJob } = await import('../../backup/jobs/index.js');
      const { parseSchedule, systemdUnits, crontabLines } = await import('../../schedule/index.js');
      const config = await loadJobsConfig(g.config ? { file: g.config } : {});
      const jobs = o.job ? o.job.map((name) => findJob(config, name)) : config.jobs;
      if (jobs.length === 0) throw new UsageError('no backup jobs: add [jobs.NAME] to offsite.toml');
      const printJobs = jobs.map((j) => ({ name: j.name, schedule: parseSchedule(j.schedule), jitterSeconds: j.jitterSeconds }));
      const options = {
        command: o.command ?? offsiteBinary(),
        ...(config.source ? { configPath: config.source } : {}),
        ...(o.user ? { user: o.user } : {}),
      };
      if (o.cron) {
        printLine('# Written by `offsite schedule print --cron`. No secrets here: credentials go in the environment of the user who runs it.');
        for (const line of crontabLines(printJobs, options)) printLine(line);
        return;
      }
      for (const unit of systemdUnits(printJobs, options)) {
        printLine(`# ---- /etc/systemd/system/${unit.fileName}`);
        printLine(unit.content.trimEnd());
        printLine('');
      }
    });
}

/** This offsite's own path, resolved: a timer runs from / with a minimal PATH. */
function offsiteBinary(): string {
  const script = process.argv[1];
  if (!script) throw new UsageError('cannot tell where the offsite binary is: pass --command /path/to/offsite');
  return realpathSync(path.resolve(script));
}
