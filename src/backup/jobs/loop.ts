/**
 * Backup jobs on their schedules, in the background: what `offsite daemon` runs, and what an
 * application embeds with startBackupLoop() (the seed's "background thread": S3 failure never
 * affects local operation).
 *
 * - A run never disturbs the host: in an application it runs in a child process at a lower CPU
 *   priority (run-isolated.ts), off the host's event loop and heap, and so does the prune after
 *   it: the host itself opens no storage client.
 * - One run per job at a time: a tick that falls due during a run is skipped (the schedule
 *   layer), and the job's lock file also keeps out a `offsite backup` started by hand.
 * - A failing job (source gone, bucket unreachable) is reported and tried again at its next
 *   tick; it never stops the other jobs, and nothing is ever thrown into the host.
 * - Between runs the loop is one timer per job: no request reaches storage while idle.
 * - stop({ abort: true }) aborts a running upload: the multipart upload is aborted, so no
 *   partial object is left, and the run is recorded as interrupted.
 * - An interval job continues the grid of its last recorded run after a restart: a daemon
 *   restarted every few minutes still backs up once per interval, not at every start.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { openCatalog, type Catalog } from '../../catalog/index.js';
import { nextRun, parseSchedule, runOnSchedule, type Schedule, type ScheduleHandle } from '../../schedule/index.js';
import { openStorage, type Storage } from '../../storage/index.js';
import { loadJobsConfig, type BackupJob, type JobsConfig } from './config.js';
import { pruneBackups } from './prune.js';
import { runBackupJobIsolated, type IsolatedPruneOutcome } from './run-isolated.js';
import { runBackupJob, stageHostSnapshot, type BackupRunResult } from './run.js';

/** What the loop reports; the daemon prints these, an embedding app may log them its own way. */
export type BackupLoopEvent =
  /** nextRunAt is undefined for a job running now. */
  | { type: 'started'; jobs: Array<{ job: string; schedule: string; nextRunAt: Date | undefined }> }
  | { type: 'run-ok'; job: string; result: BackupRunResult }
  /** The run failed (`result` is set when a local copy was made but the upload failed). */
  | { type: 'run-failed'; job: string; error: string; code: string | undefined; result?: BackupRunResult; nextRunAt: Date | undefined }
  | { type: 'pruned'; job: string; deletedLocal: string[]; deletedRemote: string[] }
  /** The first upload created the user's manifest key (record.ts): a copy belongs with the age identity. */
  | { type: 'manifest-key-created'; job: string; file: string; message: string }
  | { type: 'prune-failed'; job: string; error: string }
  /** The configuration could not be read: the loop runs nothing. */
  | { type: 'config-failed'; error: string }
  | { type: 'stopped' };

export interface BackupLoopOptions {
  /** The jobs to run. Default: the config file and environment (loadJobsConfig). */
  jobs?: BackupJob[];
  /** With `jobs` unset: the config file to read (default $OFFSITE_CONFIG, else ./offsite.toml). */
  configFile?: string;
  /** With `jobs` unset: the environment to read (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Run only these jobs (names). */
  only?: string[];
  /** Where runs are recorded; default the config's catalog path; null: not recorded. */
  catalogPath?: string | null;
  /** Reports; default: failures (and the creation of the manifest key) as process warnings on stderr, successes silent. */
  onEvent?: (event: BackupLoopEvent) => void;
  /**
   * DuckDB jobs of an app that keeps its database open: a connection of the app's instance
   * (DuckDB lets no other process, nor a second instance, read a file being written).
   */
  duckdbConnection?: DuckDBConnection;
  /**
   * Where a run does its work: 'process' (the default) in a child process at a lower CPU
   * priority, so the host's event loop, heap and CPU share are left alone (run-isolated.ts);
   * 'none' in this process (the daemon, which has no host to protect). A DuckDB job that runs
   * through the app's `duckdbConnection` makes its copy here (the connection cannot leave; the
   * copy runs on DuckDB's threads, not on the event loop) and the rest in the child.
   */
  isolation?: 'process' | 'none';
  /** Run every job once at start, then on schedule. Default false (see the interval grid above). */
  runAtStart?: boolean;
  /**
   * Let the process exit while the loop only waits for its next tick. Default true: an app
   * decides itself when it ends. The daemon sets false: the schedule is why it lives.
   */
  unref?: boolean;
}

export interface BackupJobState {
  job: string;
  schedule: string;
  running: boolean;
  nextRunAt: Date | undefined;
  lastSuccessAt: Date | undefined;
  lastFailure: { at: Date; error: string } | undefined;
}

export interface BackupLoopHandle {
  /** Resolves once the jobs are read and scheduled (or the config failed: see onEvent). Never rejects. */
  readonly ready: Promise<void>;
  /** Each job's state, for a status line or a health endpoint. */
  jobs(): BackupJobState[];
  /** Runs a job (or all) now, unless it is running; resolves when done. Never rejects. */
  runNow(job?: string): Promise<void>;
  /** No more ticks; waits for running jobs. `abort: true` aborts their uploads first. */
  stop(opts?: { abort?: boolean }): Promise<void>;
}

interface ScheduledJob {
  job: BackupJob;
  schedule: Schedule;
  handle: ScheduleHandle;
  storage: Storage | undefined;
  lastSuccessAt: Date | undefined;
  lastFailure: { at: Date; error: string } | undefined;
  /** The failure of the run that just ended, reported by onTick. */
  failure?: Omit<Extract<BackupLoopEvent, { type: 'run-failed' }>, 'nextRunAt'> | undefined;
}

/**
 * Lets the host's pending callbacks run before the loop's next synchronous step (reading the
 * configuration, opening the catalog, forking a run each take a few milliseconds of its thread).
 */
const yieldToHost = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Starts the backup jobs on their schedules and returns at once. Never throws, and nothing it
 * does later throws into the caller: every failure becomes an event.
 */
export function startBackupLoop(options: BackupLoopOptions = {}): BackupLoopHandle {
  const report = (event: BackupLoopEvent): void => {
    try {
      (options.onEvent ?? warnByDefault)(event);
    } catch {
      // A logger that throws must not take the loop (or the host) down with it.
    }
  };
  const scheduled: ScheduledJob[] = [];
  let catalog: Catalog | undefined;
  let catalogFile: string | null = null;
  let stopped = false;

  const ready = (async () => {
    let jobs: BackupJob[];
    let catalogPath: string | null | undefined = options.catalogPath;
    try {
      let config: JobsConfig | undefined;
      if (options.jobs) jobs = options.jobs;
      else {
        config = await loadJobsConfig({ ...(options.configFile ? { file: options.configFile } : {}), ...(options.env ? { env: options.env } : {}) });
        jobs = config.jobs;
      }
      if (options.only?.length) {
        const unknown = options.only.filter((name) => !jobs.some((j) => j.name === name));
        if (unknown.length) throw new Error(`no backup job ${unknown.join(', ')}; configured: ${jobs.map((j) => j.name).join(', ') || 'none'}`);
        jobs = jobs.filter((j) => options.only!.includes(j.name));
      }
      if (catalogPath === undefined) catalogPath = config?.catalogPath ?? null;
      await yieldToHost();
      if (catalogPath && !stopped) {
        catalog = openCatalog(catalogPath);
        catalogFile = catalogPath;
        await yieldToHost();
      }
      if (stopped) return;
      for (const job of jobs) scheduled.push(scheduleJob(job));
    } catch (e) {
      report({ type: 'config-failed', error: messageOf(e) });
      return;
    }
    report({ type: 'started', jobs: scheduled.map((s) => ({ job: s.job.name, schedule: s.job.schedule, nextRunAt: s.handle.nextRunAt() })) });
  })();

  function scheduleJob(job: BackupJob): ScheduledJob {
    const schedule = parseSchedule(job.schedule);
    const history = catalog ? lastRuns(catalog, job.name) : {};
    const entry: ScheduledJob = {
      job,
      schedule,
      storage: undefined,
      lastSuccessAt: history.lastSuccessAt,
      lastFailure: history.lastFailure,
      handle: undefined as unknown as ScheduleHandle,
    };
    const firstRunAt = schedule.kind === 'interval' && history.lastStartAt ? plannedNextRun(schedule, history.lastStartAt) : undefined;
    entry.handle = runOnSchedule({
      schedule,
      jitterMs: job.jitterSeconds * 1000,
      unref: options.unref ?? true,
      // An interval job with no recorded run backs up at once: the app has no backup yet.
      runAtStart: options.runAtStart === true || (schedule.kind === 'interval' && !firstRunAt),
      ...(firstRunAt ? { firstRunAt } : {}),
      task: (signal) => runJob(entry, signal),
      // After the schedule re-armed, so a failure report can say when the next try is.
      onTick: () => {
        const failure = entry.failure;
        entry.failure = undefined;
        if (failure) report({ ...failure, nextRunAt: entry.handle.nextRunAt() });
      },
      // runJob reports its own failures; this only sees what escaped it.
      onError: (e) => report({ type: 'run-failed', job: job.name, error: messageOf(e), code: codeOf(e), nextRunAt: entry.handle.nextRunAt() }),
    });
    return entry;
  }

  async function runJob(entry: ScheduledJob, signal: AbortSignal): Promise<void> {
    const { job } = entry;
    let result: BackupRunResult | undefined;
    const retention = Object.values(job.retention).some((v) => v !== undefined);
    const throughApp = options.duckdbConnection !== undefined && job.source.kind === 'duckdb';
    const isolated = (options.isolation ?? 'process') === 'process';
    let prunedInChild: IsolatedPruneOutcome | undefined;
    try {
      if (isolated) {
        // The child backs up and prunes: the host opens no storage client of its own. The fork
        // (a few ms of the host's thread) gets a turn of the host's loop to itself.
        await yieldToHost();
        // A DuckDB job through the app's connection: the copy is made here, by DuckDB's threads
        // in the app's instance (the connection cannot leave); all the rest happens in the child.
        const connection = throughApp ? options.duckdbConnection : undefined;
        result = await runBackupJobIsolated(job, {
          catalogPath: catalogFile,
          signal,
          prune: retention,
          onPruned: (p) => (prunedInChild = p),
          ...(connection ? { stageSnapshot: () => stageHostSnapshot(job, connection, signal) } : {}),
        });
      } else {
        // One client per job for the loop's life: its connections are reused across runs (and prunes).
        if (job.destinationUrl && !entry.storage) entry.storage = openStorage(job.destinationUrl);
        result = await runBackupJob(job, {
          ...(catalog ? { catalog } : {}),
          ...(entry.storage ? { storage: entry.storage } : {}),
          ...(throughApp ? { duckdbConnection: options.duckdbConnection } : {}),
          signal,
        });
      }
    } catch (e) {
      entry.lastFailure = { at: new Date(), error: messageOf(e) };
      entry.failure = { type: 'run-failed', job: job.name, error: messageOf(e), code: codeOf(e) };
      return;
    }
    if (result.manifestKeyCreated) report({ type: 'manifest-key-created', job: job.name, file: result.manifestKeyCreated, message: manifestKeyNotice(result.manifestKeyCreated) });
    if (result.uploadError) {
      entry.lastFailure = { at: new Date(), error: result.uploadError };
      entry.failure = { type: 'run-failed', job: job.name, error: `upload failed, local copy kept: ${result.uploadError}`, code: result.uploadErrorCode ?? 'UploadFailed', result };
      return;
    }
    entry.lastSuccessAt = new Date();
    report({ type: 'run-ok', job: job.name, result });
    if (prunedInChild) {
      if (!prunedInChild.ok) report({ type: 'prune-failed', job: job.name, error: prunedInChild.error });
      else if (prunedInChild.deletedLocal.length || prunedInChild.deletedRemote.length) report({ type: 'pruned', job: job.name, deletedLocal: prunedInChild.deletedLocal, deletedRemote: prunedInChild.deletedRemote });
    } else if (!isolated && retention && !signal.aborted) {
      try {
        const pruned = await pruneBackups(job, { ...(entry.storage ? { storage: entry.storage } : {}), ...(catalog ? { catalog } : {}), dryRun: false });
        if (pruned.deletedLocal.length || pruned.deletedRemote.length) report({ type: 'pruned', job: job.name, deletedLocal: pruned.deletedLocal, deletedRemote: pruned.deletedRemote });
      } catch (e) {
        report({ type: 'prune-failed', job: job.name, error: messageOf(e) });
      }
    }
  }

  const byName = (name: string | undefined): ScheduledJob[] => scheduled.filter((s) => name === undefined || s.job.name === name);

  return {
    ready,
    jobs: () =>
      scheduled.map((s) => ({
        job: s.job.name,
        schedule: s.job.schedule,
        running: s.handle.running(),
        nextRunAt: s.handle.nextRunAt(),
        lastSuccessAt: s.lastSuccessAt,
        lastFailure: s.lastFailure,
      })),
    runNow: async (name) => {
      await ready;
      await Promise.all(byName(name).map((s) => s.handle.runNow()));
    },
    stop: async (opts = {}) => {
      stopped = true;
      await ready;
      await Promise.all(scheduled.map((s) => s.handle.stop(opts)));
      await Promise.all(scheduled.map((s) => s.storage?.close().catch(() => undefined)));
      catalog?.close();
      catalog = undefined;
      report({ type: 'stopped' });
    },
  };
}

/**
 * When a daemon started now would first run a job (before jitter), given its last recorded
 * start: an interval job one interval after it ("now" with none recorded, or when overdue), a
 * cron job at its next time. What the loop arms and what `offsite status` shows.
 */
export function plannedNextRun(schedule: Schedule, lastStartAt: Date | undefined, now = new Date()): Date {
  if (schedule.kind === 'cron') return nextRun(schedule, now);
  if (!lastStartAt) return now;
  const next = new Date(lastStartAt.getTime() + schedule.seconds * 1000);
  return next < now ? now : next;
}

/** The job's last run, success and failure, from the catalog. */
export function lastRuns(catalog: Catalog, job: string): { lastStartAt?: Date; lastSuccessAt?: Date; lastFailure?: { at: Date; error: string } } {
  const mine = catalog.recentOperations(200, 'backup').filter((r) => (r.detail as { job?: string } | null)?.job === job);
  const ok = mine.find((r) => r.status === 'ok');
  const bad = mine.find((r) => r.status === 'failed' || r.status === 'interrupted');
  return {
    ...(mine[0] ? { lastStartAt: new Date(mine[0].startedAt) } : {}),
    ...(ok?.finishedAt ? { lastSuccessAt: new Date(ok.finishedAt) } : {}),
    ...(bad?.finishedAt ? { lastFailure: { at: new Date(bad.finishedAt), error: bad.error ?? bad.status } } : {}),
  };
}

function warnByDefault(event: BackupLoopEvent): void {
  if (event.type === 'manifest-key-created') {
    process.emitWarning(event.message, 'OffsiteBackupWarning');
    return;
  }
  if (event.type === 'run-failed' || event.type === 'prune-failed' || event.type === 'config-failed') {
    const job = 'job' in event ? ` job ${event.job}` : '';
    const retry = event.type === 'run-failed' && event.nextRunAt ? `; next try ${event.nextRunAt.toISOString()}` : '';
    process.emitWarning(`offsite backup${job}: ${event.error}${retry}`, 'OffsiteBackupWarning');
  }
}

/** What to tell the user, once, when a run created the manifest key. */
export function manifestKeyNotice(file: string): string {
  return `created the manifest key ${file}: it signs every backup uploaded from here. Keep a copy with your age identity; a restore from the bucket alone (without this machine's catalog) needs it`;
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function codeOf(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
