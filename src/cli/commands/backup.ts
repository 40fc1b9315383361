// offsite backup / backups / restore / prune / status: database and file backup jobs configured in
// offsite.toml ([jobs.NAME]) or by environment variables (OFFSITE_BACKUP_SOURCE, S3_BUCKET, ...).
// The engine is loaded when one of these runs, not when `offsite` starts.
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import type { BackupJob, JobsConfig } from '../../backup/jobs/index.js';
import type { Catalog } from '../../catalog/index.js';
import type { Storage } from '../../storage/index.js';
import { CommandFailure, formatBytes, formatDuration, note, printJson, printLine, UsageError, type GlobalOptions } from '../output.js';

export interface JobOptions extends GlobalOptions {
  config?: string;
}

const jobsLib = () => import('../../backup/jobs/index.js');

async function loadConfig(g: JobOptions): Promise<JobsConfig> {
  const { loadJobsConfig } = await jobsLib();
  return loadJobsConfig(g.config ? { file: g.config } : {});
}

/**
 * The catalog, opened only by the commands that use it. `create: false` (commands that only read
 * it, or only remove records): undefined when there is none, so they never leave a new one behind.
 */
async function withCatalog<T>(config: JobsConfig, create: boolean, fn: (catalog: Catalog | undefined) => Promise<T>): Promise<T> {
  const { openCatalog, openExistingCatalog } = await import('../../catalog/index.js');
  const catalog = create ? openCatalog(config.catalogPath) : openExistingCatalog(config.catalogPath);
  try {
    return await fn(catalog);
  } finally {
    catalog?.close();
  }
}

/** The job's bucket, unless it has none or uploads are switched off (S3_BUCKET empty). */
async function withJobStorage<T>(job: BackupJob, fn: (storage: Storage | undefined) => Promise<T>): Promise<T> {
  if (!job.destinationUrl) return fn(undefined);
  const { openStorage } = await import('../../storage/index.js');
  const storage = openStorage(job.destinationUrl);
  try {
    return await fn(storage);
  } finally {
    await storage.close();
  }
}

const VERIFIED_BY: Record<string, string> = {
  catalog: 'checked against the catalog',
  'manifest-key': 'checked against metadata the manifest key signed',
  'sha256-file': 'checked against its .sha256 file',
};

export const configOption = '--config <file>';
export const configHelp = 'jobs config file (default: $OFFSITE_CONFIG, else ./offsite.toml if present)';

export function registerBackupCommands(program: Command): void {
  program
    .command('backup')
    .description('run one backup job now: consistent snapshot → local copy → upload (a failed upload keeps the local copy and exits with its cause\'s code)')
    .argument('<job>', 'job name ([jobs.NAME] in the config, or "default" for the environment-variable job)')
    .option(configOption, configHelp)
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<JobOptions>();
      const config = await loadConfig(g);
      const { findJob, runBackupJob, manifestKeyNotice } = await jobsLib();
      const job = findJob(config, name);
      const off = config.disabled.find((d) => d.name === job.name);
      if (off && !g.json) note(`job ${job.name}: ${off.why}`);
      const controller = new AbortController();
      // SIGTERM/SIGINT abort the upload cleanly: no partial object is left as a backup.
      const onSignal = () => controller.abort(new Error('interrupted by a signal'));
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
      try {
        const r = await withCatalog(config, true, (catalog) =>
          withJobStorage(job, (storage) => runBackupJob(job, { ...(catalog ? { catalog } : {}), ...(storage ? { storage } : {}), signal: controller.signal })),
        );
        if (r.manifestKeyCreated) note(manifestKeyNotice(r.manifestKeyCreated));
        if (r.uploadError !== undefined) {
          if (!g.json) printLine(`${r.name}  ${formatBytes(r.size)}  sha256 ${r.sha256.slice(0, 16)}…  NOT uploaded  (${formatDuration(r.seconds)})`);
          // One rule: the exit code is the cause's (4 for refused credentials, 7 for an unreachable
          // store, ...), and the --json error carries the backup that was kept.
          throw new CommandFailure(r.uploadErrorCode ?? 'UploadFailed', `upload failed: ${r.uploadError}; the local copy ${r.localPath} is kept and listed as "local"`, { backup: r });
        }
        if (g.json) printJson(r);
        else printLine(`${r.name}  ${formatBytes(r.size)}  sha256 ${r.sha256.slice(0, 16)}…  ${r.uploaded ? `uploaded to ${job.destinationUrl}` : 'local only'}  (${formatDuration(r.seconds)})`);
      } finally {
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
      }
    });

  program
    .command('backups')
    .description('list a job\'s backups, local directory and bucket merged: each is local, s3 or both')
    .argument('<job>', 'job name')
    .option(configOption, configHelp)
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<JobOptions>();
      const config = await loadConfig(g);
      const { findJob, listBackups } = await jobsLib();
      const job = findJob(config, name);
      const entries = await withJobStorage(job, (storage) => listBackups(job, storage));
      if (g.json) printJson(entries.map((e) => ({ name: e.name, where: e.where, takenAt: e.takenAt.toISOString(), size: e.size })));
      else if (entries.length === 0) note(`no backups of ${job.name} yet: run "offsite backup ${job.name}"`);
      else for (const e of entries) printLine(`${e.where.padEnd(5)}  ${e.takenAt.toISOString()}  ${formatBytes(e.size).padStart(10)}  ${e.name}`);
    });

  program
    .command('restore')
    .description('restore one backup of a job to a file, or into a PostgreSQL database, checked against the SHA-256 the catalog recorded (or, from the bucket alone, the metadata the manifest key signed); a backup fetched from the bucket is kept as the local copy')
    .argument('<job>', 'job name')
    .argument('<backup>', 'backup name, as "offsite backups JOB" lists it, or "latest" (the newest the catalog recorded, else the newest listed)')
    .option('--to <path>', 'where to write the restored file (for a PostgreSQL job: the pg_dump file)')
    .option('--into [url]', 'PostgreSQL jobs: restore into this database (created when missing) with pg_restore; without a URL, the PG* variables say where. Keep the password out of the URL (others can read command lines): use PGPASSWORD or ~/.pgpass')
    .option('--force', 'replace the file at --to if it exists; with --into, drop and recreate the dump\'s objects in a database that has them (pg_restore --clean)')
    .option('--identity <file>', 'age identity file, for encrypted backups')
    .option('--unverified', 'restore a backup even though nothing proves what it should hold (no catalog record, no manifest-key MAC); one proven altered is refused all the same')
    .option(configOption, configHelp)
    .action(async (name: string, backup: string, o: { to?: string; into?: string | true; force?: boolean; identity?: string; unverified?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<JobOptions>();
      const config = await loadConfig(g);
      const { findJob, latestBackup, restoreBackup } = await jobsLib();
      const job = findJob(config, name);
      const identities = o.identity ? [await readFile(o.identity, 'utf8')] : undefined;
      const r = await withCatalog(config, false, (catalog) =>
        withJobStorage(job, async (storage) => {
          let chosen = backup;
          if (backup === 'latest') {
            const newest = await latestBackup(job, storage, catalog);
            if (!newest) throw new UsageError(`job ${job.name} has no backups to restore`);
            chosen = newest.name;
          }
          const target = o.into !== undefined ? { into: o.into === true ? '' : o.into } : o.to !== undefined ? { to: o.to } : {};
          return restoreBackup(job, chosen, {
            ...target,
            ...(storage ? { storage } : {}),
            ...(catalog ? { catalog } : {}),
            ...(o.force ? { force: true } : {}),
            ...(o.unverified ? { unverified: true } : {}),
            ...(identities ? { identities } : {}),
          });
        }),
      );
      if (r.verifiedBy === 'unverified') note(`restored ${r.name} WITHOUT verification (--unverified): nothing proved what it should hold`);
      if (g.json) printJson(r);
      else {
        const from = r.from === 'local' ? 'the local copy' : `the bucket${r.keptLocal ? ', kept as the local copy' : ''}`;
        const checked = r.verifiedBy === 'unverified' ? 'sha256 NOT verified' : `sha256 ok (${VERIFIED_BY[r.verifiedBy]})`;
        printLine(`restored ${r.name} (from ${from}, ${checked}) to ${r.to}: ${formatBytes(r.bytes)}, ${r.check}`);
      }
    });

  program
    .command('prune')
    .description('apply the job\'s retention (keep_last, keep_daily, keep_weekly, keep_monthly) to local copies and the bucket; the newest backup is always kept')
    .argument('<job>', 'job name')
    .option('--dry-run', 'show what would be deleted, delete nothing')
    .option(configOption, configHelp)
    .action(async (name: string, o: { dryRun?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<JobOptions>();
      const config = await loadConfig(g);
      const { findJob, pruneBackups } = await jobsLib();
      const job = findJob(config, name);
      // The catalog only loses the records of what is deleted: no catalog, nothing to remove.
      const r = await withCatalog(config, false, (catalog) =>
        withJobStorage(job, (storage) => pruneBackups(job, { ...(storage ? { storage } : {}), ...(catalog && !o.dryRun ? { catalog } : {}), dryRun: o.dryRun ?? false })),
      );
      if (g.json) {
        printJson({ dryRun: r.dryRun, keep: r.decisions.filter((d) => d.keep).map((d) => ({ name: d.entry.name, where: d.entry.where, reasons: d.reasons })), delete: r.decisions.filter((d) => !d.keep).map((d) => ({ name: d.entry.name, where: d.entry.where })), deletedLocal: r.deletedLocal, deletedRemote: r.deletedRemote });
        return;
      }
      for (const d of r.decisions) printLine(`${d.keep ? 'keep  ' : r.dryRun ? 'would delete' : 'delete'}  ${d.entry.where.padEnd(5)}  ${d.entry.name}${d.keep ? `  (${d.reasons.join(', ')})` : ''}`);
      if (!r.dryRun) note(`deleted ${r.deletedLocal.length} local and ${r.deletedRemote.length} remote backup(s)`);
    });

  program
    .command('status')
    .alias('jobs')
    .description('the configured backup jobs, each with its last success, last failure and next run')
    .option(configOption, configHelp)
    .action(async (_o: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<JobOptions>();
      const config = await loadConfig(g);
      await withCatalog(config, false, async (catalog) => {
        const { redact, plannedNextRun, lastRuns } = await jobsLib();
        const { parseSchedule } = await import('../../schedule/index.js');
        const rows = config.jobs.map((job) => {
          const history = catalog ? lastRuns(catalog, job.name) : {};
          return {
            name: job.name,
            source: job.source.kind === 'postgres' ? `postgres:${redact(job.source.location) || '(PG* variables)'}` : `${job.source.kind}:${job.source.location}`,
            destination: job.destinationUrl ?? null,
            schedule: job.schedule,
            disabled: config.disabled.find((d) => d.name === job.name)?.why ?? null,
            lastSuccess: history.lastSuccessAt?.toISOString() ?? null,
            lastFailure: history.lastFailure ? { at: history.lastFailure.at.toISOString(), error: history.lastFailure.error } : null,
            nextRun: plannedNextRun(parseSchedule(job.schedule), history.lastStartAt).toISOString(),
          };
        });
        if (g.json) printJson(rows);
        else if (rows.length === 0) note(`no backup jobs: add [jobs.NAME] to ${config.source ?? 'offsite.toml'}, or set OFFSITE_BACKUP_SOURCE and S3_BUCKET`);
        else
          for (const r of rows) {
            printLine(`${r.name}: ${r.source} → ${r.destination ?? '(local only)'} every ${r.schedule}${r.disabled ? ` [${r.disabled}]` : ''}`);
            printLine(`  last success: ${r.lastSuccess ?? 'never'}; last failure: ${r.lastFailure ? `${r.lastFailure.at} (${r.lastFailure.error})` : 'none'}; next run: ${r.nextRun} (when "offsite daemon" runs)`);
          }
      });
    });
}
