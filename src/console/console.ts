/**
 * The console's engine: what the HTTP routes call. It owns the settings (secret sealed at rest),
 * the jobs of the config file run on their schedules in this process and by hand, the runs
 * (asynchronous; progress and results as events), each job's backup listing (the bucket part
 * cached, see BucketCache), deletes and restores, the archive and sync views and the metrics.
 *
 * A job without a destination of its own uses the S3 settings: `s3://BUCKET/PREFIX/JOB/`, the
 * keys handed to the S3 client in memory. So "if S3 is configured, every backup (manual or
 * scheduled) uploads"; with the settings deleted, new backups are local only.
 */
import { EventEmitter } from 'node:events';
import { homedir } from 'node:os';
import path from 'node:path';
import { Counter, Gauge, Registry } from 'prom-client';
import {
  deleteBackup as deleteJobBackup,
  latestBackup,
  lastRuns,
  listBucketBackups,
  listLocalBackups,
  loadJobsConfig,
  mergeBackupListings,
  plannedNextRun,
  redact,
  restoreBackup,
  runBackupJob,
  type BackupJob,
  type BackupProgress,
  type BucketBackup,
  type DeleteWhere,
} from '../backup/jobs/index.js';
import { openCatalog, type Catalog } from '../catalog/index.js';
import { runDoctor } from '../doctor/index.js';
import { mkdirPrivate } from '../files/index.js';
import { parseSchedule, runOnSchedule, type Schedule, type ScheduleHandle } from '../schedule/index.js';
import { openStorage, type Storage } from '../storage/index.js';
import { ConsoleError } from './errors.js';
import { openSettingsStorage, resolveSettings, settingsUrl, settingsView, type SettingsInput, type SettingsView } from './settings.js';
import { openConsoleState } from './state.js';
import { newAdminToken, SessionTable, tokenMatches, type ConsoleStore } from './store.js';
import type { ConsoleKey } from './secret-box.js';
import { archivesView, syncView, type ArchivesView, type SyncView } from './views.js';

export const CATALOG_FILE = 'catalog.db';
export const RESTORES_DIR = 'restores';
/** A request for a job's backups re-lists the bucket only when the cached listing is older than this. */
export const BUCKET_LISTING_STALE_SECONDS = 60;
/** Progress events of one run: at most one per this many ms (the last state is always in GET /api/runs/ID). */
export const PROGRESS_EVENT_INTERVAL_MS = 250;
const KEPT_RUNS = 200;

/** The data directory: $OFFSITE_CONSOLE_DIR, else ~/.local/share/offsite/console (XDG_DATA_HOME honoured). */
export function defaultConsoleDataDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.OFFSITE_CONSOLE_DIR) return path.resolve(env.OFFSITE_CONSOLE_DIR);
  const base = env.XDG_DATA_HOME || path.join(env.HOME ?? homedir(), '.local', 'share');
  return path.join(base, 'offsite', 'console');
}

export interface ConsoleOptions {
  dataDir: string;
  /** The jobs' config file (default $OFFSITE_CONFIG, else ./offsite.toml). */
  configFile?: string;
  env?: NodeJS.ProcessEnv;
  /** A sync config file (default $OFFSITE_SYNC_CONFIG): the sync view shows that device. */
  syncConfig?: string;
  /** A catalog whose archives the archive view shows (default: the console's catalog). */
  archiveCatalog?: string;
  /** Run the jobs on their schedules (default true). */
  schedule?: boolean;
}

export type RunStatus = 'running' | 'ok' | 'failed';

/** A run as the API shows it. */
export interface RunView {
  id: string;
  job: string;
  kind: 'backup' | 'restore';
  trigger: 'manual' | 'schedule';
  status: RunStatus;
  started_at: string;
  finished_at: string | null;
  phase: 'snapshot' | 'upload' | 'done';
  bytes_done: number;
  bytes_total: number | null;
  backup: string | null;
  uploaded: boolean;
  error: { code: string; message: string } | null;
  result: Record<string, unknown> | null;
}

export interface JobView {
  name: string;
  source_kind: BackupJob['source']['kind'];
  source: string;
  destination: string | null;
  destination_from: 'job' | 'settings' | null;
  schedule: string;
  running: boolean;
  last_success: string | null;
  last_failure: { at: string; error: string } | null;
  next_run: string | null;
  status: 'ok' | 'failed' | 'running' | 'never';
}

export interface BackupView {
  name: string;
  where: 'local' | 's3' | 'both';
  taken_at: string;
  size: number;
  sha256: string | null;
}

export interface BackupsView {
  backups: BackupView[];
  listed_at: string;
  stale_after_seconds: number;
  /** The bucket could not be listed: the backups shown are the local ones (and the last listing, if any). */
  bucket_error: { code: string; message: string } | null;
}

export interface TestConnectionView {
  ok: boolean;
  url: string;
  checks: Array<{ id: string; title: string; status: 'pass' | 'warn' | 'fail' | 'skip'; detail: string }>;
}

export interface ConsoleEvents {
  run: [RunView];
  jobs: [{ jobs: JobView[] }];
}

/** The bucket part of a job's listing, kept between requests. */
interface BucketCache {
  objects: Map<string, BucketBackup>;
  listedAt: Date;
}

interface JobEntry {
  job: BackupJob;
  schedule: Schedule;
  handle: ScheduleHandle | undefined;
  /** The job's bucket client, opened on first use; reset when the settings change. */
  storage: Storage | undefined;
  cache: BucketCache | undefined;
  current: RunRecord | undefined;
  /** Clients of old settings still held by the running run: closed when it ends. */
  retired: Storage[];
  lastSuccessAt: Date | undefined;
  lastFailure: { at: Date; error: string } | undefined;
}

interface RunRecord {
  view: RunView;
  controller: AbortController;
  done: Promise<void>;
  lastEventAt: number;
}

/** The engine the console's routes call. Open with openConsole(); close() stops runs and schedules. */
export class Console {
  readonly events = new EventEmitter<ConsoleEvents>();
  readonly metrics = new Registry();
  readonly sessions = new SessionTable();
  readonly dataDir: string;
  /** A token made on this start (first start), until takeCreatedToken() hands it over. */
  private createdToken: string | undefined;
  readonly keyCreated: boolean;
  private readonly runsById = new Map<string, RunRecord>();
  private readonly jobsByName = new Map<string, JobEntry>();
  private runCounter = 0;
  private closed = false;
  private readonly gauges: {
    lastSuccess: Gauge<'job'>;
    lastFailure: Gauge<'job'>;
    lastBytes: Gauge<'job'>;
    lastRequests: Gauge<'job'>;
    failures: Counter<'job'>;
  };

  private constructor(
    private readonly opts: ConsoleOptions,
    private readonly store: ConsoleStore,
    private readonly key: ConsoleKey,
    private readonly catalog: Catalog,
    jobs: BackupJob[],
    createdToken: string | undefined,
    keyCreated: boolean,
  ) {
    this.dataDir = opts.dataDir;
    this.createdToken = createdToken;
    this.keyCreated = keyCreated;
    const registers = [this.metrics];
    this.gauges = {
      lastSuccess: new Gauge({ name: 'offsite_job_last_success_timestamp_seconds', help: 'When the job last succeeded (Unix seconds)', labelNames: ['job'], registers }),
      lastFailure: new Gauge({ name: 'offsite_job_last_failure_timestamp_seconds', help: 'When the job last failed (Unix seconds)', labelNames: ['job'], registers }),
      lastBytes: new Gauge({ name: 'offsite_job_last_run_bytes', help: 'Bytes of the backup the last run made', labelNames: ['job'], registers }),
      lastRequests: new Gauge({ name: 'offsite_job_last_run_requests', help: 'Storage requests the last run made', labelNames: ['job'], registers }),
      failures: new Counter({ name: 'offsite_job_failures_total', help: 'Failed runs since the console started', labelNames: ['job'], registers }),
    };
    for (const job of jobs) {
      const history = lastRuns(catalog, job.name);
      const entry: JobEntry = {
        job,
        schedule: parseSchedule(job.schedule),
        handle: undefined,
        storage: undefined,
        cache: undefined,
        current: undefined,
        retired: [],
        lastSuccessAt: history.lastSuccessAt,
        lastFailure: history.lastFailure,
      };
      this.jobsByName.set(job.name, entry);
      this.gauges.failures.inc({ job: job.name }, 0);
      if (history.lastSuccessAt) this.gauges.lastSuccess.set({ job: job.name }, history.lastSuccessAt.getTime() / 1000);
      if (history.lastFailure) this.gauges.lastFailure.set({ job: job.name }, history.lastFailure.at.getTime() / 1000);
      if (opts.schedule !== false) this.schedule(entry, history.lastStartAt);
    }
  }

  static async open(opts: ConsoleOptions): Promise<Console> {
    const env = opts.env ?? process.env;
    const dataDir = path.resolve(opts.dataDir);
    const config = await loadJobsConfig({ ...(opts.configFile ? { file: opts.configFile } : {}), env });
    const state = await openConsoleState(dataDir, env);
    let catalog: Catalog | undefined;
    try {
      catalog = openCatalog(path.join(dataDir, CATALOG_FILE));
      catalog.markStaleOperations();
      let createdToken: string | undefined;
      if (!state.store.adminTokenHash()) {
        const { token, hash } = newAdminToken();
        state.store.setAdminTokenHash(hash);
        createdToken = token;
      }
      return new Console({ ...opts, dataDir, env }, state.store, state.key, catalog, config.jobs, createdToken, state.keyCreated);
    } catch (e) {
      catalog?.close();
      state.store.close();
      throw e;
    }
  }

  // Auth ---------------------------------------------------------------------------------

  /** The admin token made on this (first) start, once: the caller shows or writes it; afterwards only its hash exists. */
  takeCreatedToken(): string | undefined {
    const token = this.createdToken;
    this.createdToken = undefined;
    return token;
  }

  /** The admin token, compared in constant time with the stored hash (read each time: a reset applies at once). */
  verifyToken(token: string | undefined): boolean {
    return tokenMatches(this.store.adminTokenHash(), token);
  }

  // Settings -----------------------------------------------------------------------------

  settings(): SettingsView {
    return settingsView(this.store.settingsSummary());
  }

  saveSettings(input: SettingsInput): SettingsView {
    const resolved = resolveSettings(input, this.store.settings(this.key));
    this.store.saveSettings(this.key, resolved);
    this.settingsChanged();
    return this.settings();
  }

  deleteSettings(): SettingsView {
    this.store.deleteSettings();
    this.settingsChanged();
    return this.settings();
  }

  /** The doctor's checks against the unsaved input (a missing secret: the stored one), or the stored settings. */
  async testConnection(input?: SettingsInput): Promise<TestConnectionView> {
    const stored = this.store.settings(this.key);
    let resolved;
    if (input) resolved = resolveSettings(input, stored);
    else if (stored) resolved = stored;
    else throw new ConsoleError('NotConfigured', 'no S3 settings are saved: send the form\'s values to test them');
    const url = settingsUrl(resolved);
    let storage: Storage;
    try {
      storage = openSettingsStorage(resolved);
    } catch (e) {
      throw new ConsoleError('BadRequest', (e as Error).message, undefined, { cause: e });
    }
    try {
      const report = await runDoctor(url, { storage });
      return { ok: report.ok, url, checks: report.checks };
    } finally {
      await storage.close().catch(() => undefined);
    }
  }

  /** Storages opened on the old settings are closed; listings cached from them are dropped. */
  private settingsChanged(): void {
    for (const entry of this.jobsByName.values()) {
      if (entry.job.destinationUrl) continue;
      const old = entry.storage;
      entry.storage = undefined;
      entry.cache = undefined;
      // A run in progress keeps its client until it ends.
      if (old && entry.current) entry.retired.push(old);
      else if (old) void old.close().catch(() => undefined);
    }
  }

  /** The job's bucket: its own destination (credentials from the AWS chain), else the settings', else none. */
  private storageFor(entry: JobEntry): Storage | undefined {
    if (entry.storage) return entry.storage;
    if (entry.job.destinationUrl) entry.storage = openStorage(entry.job.destinationUrl);
    else {
      const s = this.store.settings(this.key);
      if (s) entry.storage = openSettingsStorage(s, entry.job.name);
    }
    return entry.storage;
  }

  private destinationOf(entry: JobEntry): { url: string | null; from: 'job' | 'settings' | null } {
    if (entry.job.destinationUrl) return { url: redact(entry.job.destinationUrl), from: 'job' };
    const s = this.store.settingsSummary();
    return s ? { url: settingsUrl(s, entry.job.name), from: 'settings' } : { url: null, from: null };
  }

  // Jobs ---------------------------------------------------------------------------------

  private entry(name: string): JobEntry {
    const entry = this.jobsByName.get(name);
    if (!entry) throw new ConsoleError('NotFound', `no job "${name}"; configured: ${[...this.jobsByName.keys()].join(', ') || 'none'}`);
    return entry;
  }

  jobs(): JobView[] {
    return [...this.jobsByName.values()].map((e) => this.jobView(e));
  }

  job(name: string): JobView {
    return this.jobView(this.entry(name));
  }

  private jobView(e: JobEntry): JobView {
    const destination = this.destinationOf(e);
    const running = e.current !== undefined;
    const failedLast = e.lastFailure !== undefined && (!e.lastSuccessAt || e.lastFailure.at > e.lastSuccessAt);
    const next = e.handle?.nextRunAt();
    return {
      name: e.job.name,
      source_kind: e.job.source.kind,
      source: e.job.source.kind === 'postgres' ? redact(e.job.source.location) || '(PG* variables)' : e.job.source.location,
      destination: destination.url,
      destination_from: destination.from,
      schedule: e.job.schedule,
      running,
      last_success: e.lastSuccessAt?.toISOString() ?? null,
      last_failure: e.lastFailure ? { at: e.lastFailure.at.toISOString(), error: e.lastFailure.error } : null,
      next_run: next ? next.toISOString() : null,
      status: running ? 'running' : failedLast ? 'failed' : e.lastSuccessAt ? 'ok' : 'never',
    };
  }

  private schedule(entry: JobEntry, lastStartAt: Date | undefined): void {
    const { schedule } = entry;
    // The console is interactive ("Create Backup" is there): a job never run waits one
    // interval rather than running at start; one run before continues the grid of its last run.
    const firstRunAt = schedule.kind === 'interval' ? (lastStartAt ? plannedNextRun(schedule, lastStartAt) : new Date(Date.now() + schedule.seconds * 1000)) : undefined;
    entry.handle = runOnSchedule({
      schedule,
      jitterMs: entry.job.jitterSeconds * 1000,
      unref: true,
      ...(firstRunAt ? { firstRunAt } : {}),
      task: async (signal) => {
        if (entry.current || this.closed) return; // a manual run is going: this tick is skipped
        const run = this.beginBackup(entry, { trigger: 'schedule', uploadToS3: true, signal });
        await run.done;
      },
      onError: () => undefined, // runs record their own failures
    });
  }

  // Runs ---------------------------------------------------------------------------------

  startBackup(name: string, opts: { uploadToS3?: boolean; trigger?: 'manual' | 'schedule' } = {}): RunView {
    const entry = this.entry(name);
    if (this.closed) throw new ConsoleError('Busy', 'the console is stopping');
    if (entry.current) throw new ConsoleError('Busy', `job ${name} is running (run ${entry.current.view.id})`);
    return this.beginBackup(entry, { trigger: opts.trigger ?? 'manual', uploadToS3: opts.uploadToS3 ?? true }).view;
  }

  private newRun(entry: JobEntry, kind: RunView['kind'], trigger: RunView['trigger'], signal?: AbortSignal): RunRecord {
    const controller = new AbortController();
    if (signal) signal.addEventListener('abort', () => controller.abort(signal.reason), { once: true });
    const id = `${Date.now().toString(36)}-${(++this.runCounter).toString(36)}`;
    const view: RunView = {
      id,
      job: entry.job.name,
      kind,
      trigger,
      status: 'running',
      started_at: new Date().toISOString(),
      finished_at: null,
      phase: 'snapshot',
      bytes_done: 0,
      bytes_total: null,
      backup: null,
      uploaded: false,
      error: null,
      result: null,
    };
    const record: RunRecord = { view, controller, done: Promise.resolve(), lastEventAt: 0 };
    this.runsById.set(id, record);
    if (this.runsById.size > KEPT_RUNS) {
      for (const [oldId, r] of this.runsById) {
        if (this.runsById.size <= KEPT_RUNS) break;
        if (r.view.status !== 'running') this.runsById.delete(oldId);
      }
    }
    entry.current = record;
    this.emitRun(record, true);
    return record;
  }

  private beginBackup(entry: JobEntry, opts: { trigger: RunView['trigger']; uploadToS3: boolean; signal?: AbortSignal }): RunRecord {
    const record = this.newRun(entry, 'backup', opts.trigger, opts.signal);
    record.done = this.executeBackup(entry, record, opts.uploadToS3);
    return record;
  }

  private async executeBackup(entry: JobEntry, record: RunRecord, uploadToS3: boolean): Promise<void> {
    const { view } = record;
    const job = entry.job;
    try {
      const storage = uploadToS3 ? this.storageFor(entry) : undefined;
      const result = await runBackupJob(job, {
        catalog: this.catalog,
        ...(storage ? { storage } : {}),
        signal: record.controller.signal,
        onProgress: (p) => this.progress(record, p),
      });
      view.backup = result.name;
      view.uploaded = result.uploaded;
      view.result = {
        name: result.name,
        size: result.size,
        sha256: result.sha256,
        uploaded: result.uploaded,
        encrypted: result.encrypted,
        compression: result.compression,
        seconds: result.seconds,
        requests: result.requests,
        ...(result.uploadError ? { upload_error: result.uploadError } : {}),
      };
      if (result.uploaded && entry.cache && storage === entry.storage) {
        entry.cache.objects.set(result.name, { name: result.name, size: result.size, lastModified: new Date() });
      }
      this.gauges.lastBytes.set({ job: job.name }, result.size);
      this.gauges.lastRequests.set({ job: job.name }, Object.values(result.requests).reduce((a, b) => a + b, 0));
      if (result.uploadError) this.failRun(entry, record, result.uploadErrorCode ?? 'UploadFailed', `upload failed, local copy kept: ${result.uploadError}`);
      else {
        view.status = 'ok';
        entry.lastSuccessAt = new Date();
        this.gauges.lastSuccess.set({ job: job.name }, entry.lastSuccessAt.getTime() / 1000);
      }
    } catch (e) {
      this.failRun(entry, record, codeOf(e) ?? 'Error', messageOf(e));
    } finally {
      this.finishRun(entry, record);
    }
  }

  private failRun(entry: JobEntry, record: RunRecord, code: string, message: string): void {
    record.view.status = 'failed';
    record.view.error = { code, message };
    if (record.view.kind === 'backup') {
      entry.lastFailure = { at: new Date(), error: message };
      this.gauges.lastFailure.set({ job: entry.job.name }, entry.lastFailure.at.getTime() / 1000);
      this.gauges.failures.inc({ job: entry.job.name });
    }
  }

  private finishRun(entry: JobEntry, record: RunRecord): void {
    record.view.phase = 'done';
    record.view.finished_at = new Date().toISOString();
    if (entry.current === record) entry.current = undefined;
    for (const old of entry.retired.splice(0)) void old.close().catch(() => undefined);
    this.emitRun(record, true);
    this.events.emit('jobs', { jobs: this.jobs() });
  }

  private progress(record: RunRecord, p: BackupProgress): void {
    const v = record.view;
    const phaseChanged = v.phase !== p.phase;
    v.phase = p.phase;
    v.bytes_done = p.bytesDone;
    v.bytes_total = p.bytesTotal ?? null;
    this.emitRun(record, phaseChanged);
  }

  private emitRun(record: RunRecord, always: boolean): void {
    const now = Date.now();
    if (!always && now - record.lastEventAt < PROGRESS_EVENT_INTERVAL_MS) return;
    record.lastEventAt = now;
    this.events.emit('run', { ...record.view });
  }

  run(id: string): RunView {
    const r = this.runsById.get(id);
    if (!r) throw new ConsoleError('NotFound', `no run ${id} (runs are kept in memory while the console runs)`);
    return { ...r.view };
  }

  /** Newest first. */
  runs(): RunView[] {
    return [...this.runsById.values()].map((r) => ({ ...r.view })).reverse();
  }

  // Backups ------------------------------------------------------------------------------

  /**
   * Local copies (read from the directory each time: no request) merged with the bucket's
   * objects, listed at most once per BUCKET_LISTING_STALE_SECONDS and only when asked: an
   * idle console makes no storage request. Uploads and deletes of this console update the
   * cache themselves; a change made by someone else shows within that time.
   */
  async listBackups(name: string): Promise<BackupsView> {
    const entry = this.entry(name);
    let bucketError: BackupsView['bucket_error'] = null;
    let storage: Storage | undefined;
    try {
      storage = this.storageFor(entry);
      if (storage && (!entry.cache || Date.now() - entry.cache.listedAt.getTime() > BUCKET_LISTING_STALE_SECONDS * 1000)) {
        const listedAt = new Date();
        const objects = await listBucketBackups(entry.job, storage);
        if (entry.storage === storage) entry.cache = { objects: new Map(objects.map((o) => [o.name, o])), listedAt };
      }
    } catch (e) {
      // The local copies are still worth showing; the failure is not swallowed but reported.
      bucketError = { code: codeOf(e) ?? 'Error', message: messageOf(e) };
    }
    const local = await listLocalBackups(entry.job);
    const merged = mergeBackupListings(entry.job, local, storage && entry.cache ? entry.cache.objects.values() : []);
    return {
      backups: merged.map((b) => ({
        name: b.name,
        where: b.where,
        taken_at: b.takenAt.toISOString(),
        size: b.size,
        sha256: b.localSha256 ?? this.catalog.getBackup(entry.job.name, b.name)?.sha256 ?? null,
      })),
      listed_at: (entry.cache?.listedAt ?? new Date()).toISOString(),
      stale_after_seconds: BUCKET_LISTING_STALE_SECONDS,
      bucket_error: bucketError,
    };
  }

  async deleteBackup(name: string, backup: string, where: DeleteWhere): Promise<{ deleted: { local: boolean; s3: boolean } }> {
    const entry = this.entry(name);
    // Asked even for a local delete: what remains in the bucket decides whether the catalog keeps the record.
    const storage = this.storageFor(entry);
    const r = await deleteJobBackup(entry.job, backup, { where, ...(storage ? { storage } : {}), catalog: this.catalog });
    if (r.s3) entry.cache?.objects.delete(backup);
    this.events.emit('jobs', { jobs: this.jobs() });
    return { deleted: { local: r.local, s3: r.s3 } };
  }

  /**
   * Restores a backup (the newest with 'latest') to a file: default
   * DATA_DIR/restores/JOB/NAME without its .age and .gz. An S3-only backup is downloaded first.
   */
  startRestore(name: string, opts: { backup: string; to?: string; into?: string; force?: boolean }): RunView {
    const entry = this.entry(name);
    if (this.closed) throw new ConsoleError('Busy', 'the console is stopping');
    if (entry.current) throw new ConsoleError('Busy', `job ${name} is running (run ${entry.current.view.id})`);
    if (opts.into !== undefined && opts.to !== undefined) throw new ConsoleError('BadRequest', 'body.into: give either "to" (a file) or "into" (a PostgreSQL database), not both', 'body.into');
    const record = this.newRun(entry, 'restore', 'manual');
    record.done = this.executeRestore(entry, record, opts);
    return { ...record.view };
  }

  private async executeRestore(entry: JobEntry, record: RunRecord, opts: { backup: string; to?: string; into?: string; force?: boolean }): Promise<void> {
    const { job } = entry;
    try {
      const storage = this.storageFor(entry);
      let backup = opts.backup;
      if (backup === 'latest') {
        const latest = await latestBackup(job, storage, this.catalog);
        if (!latest) throw new ConsoleError('NotFound', `job ${job.name} has no backups yet`);
        backup = latest.name;
      }
      record.view.backup = backup;
      this.emitRun(record, true);
      let to = opts.to;
      if (to === undefined && opts.into === undefined) {
        const dir = path.join(this.dataDir, RESTORES_DIR, job.name);
        await mkdirPrivate(dir);
        to = path.join(dir, backup.replace(/\.age$/, '').replace(/\.gz$/, ''));
      }
      const r = await restoreBackup(job, backup, {
        ...(to !== undefined ? { to } : {}),
        ...(opts.into !== undefined ? { into: opts.into } : {}),
        ...(storage ? { storage } : {}),
        catalog: this.catalog,
        force: opts.force ?? false,
        signal: record.controller.signal,
      });
      record.view.status = 'ok';
      record.view.bytes_done = r.bytes;
      record.view.bytes_total = r.bytes;
      record.view.result = { to: r.to, from: r.from, sha256: r.sha256, bytes: r.bytes, check: r.check, verified_by: r.verifiedBy, kept_local: r.keptLocal };
    } catch (e) {
      this.failRun(entry, record, codeOf(e) ?? 'Error', messageOf(e));
    } finally {
      this.finishRun(entry, record);
    }
  }

  // Views --------------------------------------------------------------------------------

  archivesView(): ArchivesView {
    return archivesView(this.opts.archiveCatalog, this.catalog);
  }

  async syncView(): Promise<SyncView> {
    const env = this.opts.env ?? process.env;
    return syncView(this.opts.syncConfig ?? env.OFFSITE_SYNC_CONFIG, env);
  }

  /** For /readyz: the databases answer, and the jobs were read. */
  readiness(): { ready: boolean; checks: Record<string, { ok: boolean; detail: string }> } {
    const checks: Record<string, { ok: boolean; detail: string }> = {};
    try {
      this.store.adminTokenHash();
      checks.store = { ok: true, detail: this.store.file };
    } catch (e) {
      checks.store = { ok: false, detail: messageOf(e) };
    }
    try {
      this.catalog.recentOperations(1);
      checks.catalog = { ok: true, detail: this.catalog.file };
    } catch (e) {
      checks.catalog = { ok: false, detail: messageOf(e) };
    }
    checks.jobs = { ok: true, detail: `${this.jobsByName.size} job(s)` };
    checks.settings = { ok: true, detail: this.store.settingsSummary() ? 'S3 settings saved' : 'no S3 settings (backups are local only)' };
    return { ready: Object.values(checks).every((c) => c.ok) && !this.closed, checks };
  }

  /** Stops the schedules, aborts running runs (no partial object is left) and waits for them; closes everything. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const entries = [...this.jobsByName.values()];
    for (const e of entries) e.current?.controller.abort(new Error('the console is stopping'));
    await Promise.all(entries.map((e) => e.handle?.stop({ abort: true })));
    await Promise.all(entries.map((e) => e.current?.done));
    await Promise.all(entries.map((e) => e.storage?.close().catch(() => undefined)));
    this.catalog.close();
    this.store.close();
    this.events.removeAllListeners();
  }
}

export function openConsole(opts: ConsoleOptions): Promise<Console> {
  return Console.open(opts);
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function codeOf(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[A-Z][A-Za-z]+$/.test(code) ? code : undefined;
}
