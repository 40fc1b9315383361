/**
 * Backup jobs: a database or a file, copied consistently, kept in a local directory and pushed
 * to a bucket. Configured as `[jobs.NAME]` tables in a TOML file (`offsite.toml`, or the file
 * named by OFFSITE_CONFIG / --config) and/or, for the fire-and-forget style, by environment
 * variables alone (the seed's S3_BUCKET / S3_KEY_PREFIX / S3_SYNC_INTERVAL). Secrets never come
 * from the file: S3 credentials from the AWS chain, PostgreSQL passwords from the URL in the
 * environment or PG* variables.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import { z } from 'zod';
import { parseSchedule } from '../../schedule/index.js';
import { redactPostgresUrl } from './postgres.js';

export const JOBS_CONFIG_ENV = 'OFFSITE_CONFIG';
export const DEFAULT_JOBS_CONFIG_FILE = 'offsite.toml';
/** The job the environment variables alone describe. */
export const ENV_JOB_NAME = 'default';

export class JobConfigError extends Error {
  override name = 'JobConfigError';
  readonly code = 'InvalidConfig';
}

export type SourceKind = 'sqlite' | 'duckdb' | 'postgres' | 'file' | 'dir';

export interface SourceSpec {
  kind: SourceKind;
  /**
   * A file path (sqlite, duckdb, file), or a postgres URL (kept only in memory, may hold a
   * password; empty: the PG* variables say where).
   */
  location: string;
}

export interface Retention {
  keepLast?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
}

export interface BackupJob {
  name: string;
  source: SourceSpec;
  /** Storage URL of the bucket (with the prefix folded in), or undefined: local copies only. */
  destinationUrl: string | undefined;
  /** Where local copies are kept. */
  localDir: string;
  /** Keep the local copy after a successful upload (default true: local-first). */
  keepLocal: boolean;
  /** Interval seconds or a cron expression; parsed by the schedule layer. */
  schedule: string;
  /** The most random delay added to each scheduled run, in seconds (spreads many hosts' uploads). */
  jitterSeconds: number;
  /** Name of each backup: {job}, {timestamp} (20261123T140501Z) and {ext} are replaced. */
  keyTemplate: string;
  compress: 'none' | 'gzip';
  recipients: string[];
  retention: Retention;
  /** Where the job came from, for messages. */
  origin: string;
}

export interface JobsConfig {
  jobs: BackupJob[];
  catalogPath: string;
  /** The file read, if any. */
  source: string | undefined;
  /** Jobs the environment would define but switched off (S3_BUCKET empty), with why. */
  disabled: Array<{ name: string; why: string }>;
}

const jobName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'letters, digits, "_", "." and "-"');
const retentionSchema = z
  .object({
    keep_last: z.number().int().min(1).optional(),
    keep_daily: z.number().int().min(1).optional(),
    keep_weekly: z.number().int().min(1).optional(),
    keep_monthly: z.number().int().min(1).optional(),
  })
  .strict();

const jobSchema = z
  .object({
    source: z.string().min(1, 'set it to what to back up, e.g. "sqlite:/data/app.db", "duckdb:/data/x.duckdb", "postgres://user@host/db", "file:/etc/app.conf" or "dir:/etc/app"'),
    destination: z.string().default(''),
    local_dir: z.string().default(''),
    keep_local: z.boolean().default(true),
    schedule: z.union([z.string(), z.number().int().positive()]).default('3600'),
    jitter: z.number().int().min(0).default(0),
    key_template: z.string().default('{job}-{timestamp}{ext}'),
    compress: z.enum(['none', 'gzip']).default('none'),
    recipients: z.array(z.string().regex(/^age1[0-9a-z]+$/, 'an age recipient (age1...)')).default([]),
    retention: retentionSchema.prefault({}),
  })
  .strict();

const fileSchema = z
  .object({
    catalog: z.object({ path: z.string().default('.offsite/catalog.db') }).strict().prefault({}),
    jobs: z.record(jobName, jobSchema).default({}),
  })
  .passthrough();

/**
 * "sqlite:PATH", "duckdb:PATH", "file:PATH", "dir:PATH" (a directory, as a tar), "postgres://..."
 * (or "postgres:" alone: libpq's PG* variables say where), or a plain path (kind from its
 * extension; a trailing "/" means a directory).
 */
export function parseSourceSpec(spec: string, base: string): SourceSpec {
  if (/^postgres(ql)?:\/\//.test(spec)) return { kind: 'postgres', location: spec };
  if (spec === 'postgres:' || spec === 'postgresql:') return { kind: 'postgres', location: '' };
  const m = /^(sqlite|duckdb|file|dir):(.+)$/.exec(spec);
  if (m) return { kind: m[1] as SourceKind, location: path.resolve(base, m[2]!) };
  if (/^[a-z]+:\/\//.test(spec)) throw new JobConfigError(`source "${redact(spec)}" is not a source Offsite knows: use sqlite:PATH, duckdb:PATH, postgres://..., file:PATH or dir:PATH`);
  if (spec.endsWith('/')) return { kind: 'dir', location: path.resolve(base, spec) };
  const ext = path.extname(spec).toLowerCase();
  const kind: SourceKind = ['.db', '.sqlite', '.sqlite3'].includes(ext) ? 'sqlite' : ext === '.duckdb' ? 'duckdb' : 'file';
  return { kind, location: path.resolve(base, spec) };
}

/** A URL with its password (in the userinfo or a ?password= parameter) replaced, for messages. */
export const redact = redactPostgresUrl;

export interface LoadJobsOptions {
  file?: string;
  env?: NodeJS.ProcessEnv;
}

export async function loadJobsConfig(opts: LoadJobsOptions = {}): Promise<JobsConfig> {
  const env = opts.env ?? process.env;
  const explicit = opts.file ?? env[JOBS_CONFIG_ENV];
  const candidate = explicit || DEFAULT_JOBS_CONFIG_FILE;
  let raw: Record<string, unknown> = {};
  let source: string | undefined;
  try {
    raw = parseToml(await readFile(candidate, 'utf8')) as Record<string, unknown>;
    source = path.resolve(candidate);
  } catch (e) {
    if (e instanceof TomlError) throw new JobConfigError(`${candidate}: not valid TOML: ${e.message.split('\n')[0]}`);
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || explicit) throw new JobConfigError(`${candidate}: cannot read the config file (${(e as Error).message})`);
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new JobConfigError(`${candidate}: ${issue.path.join('.') || '(top level)'}: ${issue.message}`);
  }
  const base = source ? path.dirname(source) : process.cwd();
  const abs = (p: string) => path.resolve(base, p.replace(/^~(?=\/|$)/, env.HOME ?? '~'));
  const jobs: BackupJob[] = Object.entries(parsed.data.jobs).map(([name, j]) => ({
    name,
    source: parseFileSource(j.source, base, `${candidate}: jobs.${name}.source`),
    destinationUrl: j.destination ? (/^[a-z0-9]+:\/\//i.test(j.destination) ? j.destination : abs(j.destination)) : undefined,
    localDir: j.local_dir ? abs(j.local_dir) : abs(path.join('.offsite', 'backups', name)),
    keepLocal: j.keep_local,
    schedule: String(j.schedule),
    jitterSeconds: j.jitter,
    keyTemplate: j.key_template,
    compress: j.compress,
    recipients: j.recipients,
    retention: retentionOf(j.retention),
    origin: `${candidate} [jobs.${name}]`,
  }));
  const disabled: JobsConfig['disabled'] = [];
  const fromEnv = envJob(env, disabled);
  if (fromEnv) {
    if (jobs.some((j) => j.name === fromEnv.name)) throw new JobConfigError(`job "${fromEnv.name}" is defined both in ${candidate} and by environment variables; rename one (OFFSITE_BACKUP_JOB)`);
    jobs.push(fromEnv);
  }
  for (const job of jobs) checkSchedule(job);
  return { jobs, catalogPath: abs(parsed.data.catalog.path), source, disabled };
}

/** A source from the config file, which must not hold a password (the file is not a secret store). */
function parseFileSource(spec: string, base: string, where: string): SourceSpec {
  if (redact(spec) !== spec) {
    throw new JobConfigError(`${where}: the URL holds a password; keep it out of the file: set PGPASSWORD in the service's environment, or use ~/.pgpass (or PGPASSFILE)`);
  }
  return parseSourceSpec(spec, base);
}

function checkSchedule(job: BackupJob): void {
  try {
    parseSchedule(job.schedule);
  } catch (e) {
    throw new JobConfigError(`${job.origin}: schedule: ${(e as Error).message}`);
  }
}

function retentionOf(r: z.infer<typeof retentionSchema>): Retention {
  return {
    ...(r.keep_last !== undefined ? { keepLast: r.keep_last } : {}),
    ...(r.keep_daily !== undefined ? { keepDaily: r.keep_daily } : {}),
    ...(r.keep_weekly !== undefined ? { keepWeekly: r.keep_weekly } : {}),
    ...(r.keep_monthly !== undefined ? { keepMonthly: r.keep_monthly } : {}),
  };
}

/**
 * The seed's variables, as written: S3_BUCKET (empty = disabled), S3_KEY_PREFIX (default
 * "bramble/"), S3_SYNC_INTERVAL (seconds, default 3600); plus what Offsite needs to know
 * besides: OFFSITE_BACKUP_SOURCE (what to back up), and optionally S3_ENDPOINT, S3_REGION,
 * OFFSITE_BACKUP_JOB, OFFSITE_BACKUP_KEY (a fixed key such as "sensor_data.duckdb"),
 * OFFSITE_BACKUP_LOCAL_DIR, OFFSITE_BACKUP_KEEP_LAST, OFFSITE_BACKUP_JITTER.
 */
function envJob(env: NodeJS.ProcessEnv, disabled: JobsConfig['disabled']): BackupJob | undefined {
  const sourceSpec = env.OFFSITE_BACKUP_SOURCE;
  if (!sourceSpec) return undefined;
  const name = env.OFFSITE_BACKUP_JOB || ENV_JOB_NAME;
  if (!jobName.safeParse(name).success) throw new JobConfigError(`OFFSITE_BACKUP_JOB "${name}": a job name is letters, digits, "_", "." and "-"`);
  const bucket = env.S3_BUCKET ?? '';
  if (bucket === '') {
    disabled.push({ name, why: 'S3_BUCKET is empty, so uploads are switched off (local copies are still made by "offsite backup")' });
  }
  const prefix = env.S3_KEY_PREFIX ?? 'bramble/';
  const params = new URLSearchParams();
  const endpoint = env.S3_ENDPOINT || env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL;
  if (endpoint) params.set('endpoint', endpoint);
  const region = env.S3_REGION || env.AWS_REGION || env.AWS_DEFAULT_REGION;
  if (region) params.set('region', region);
  const query = params.size ? `?${params.toString()}` : '';
  const interval = env.S3_SYNC_INTERVAL ?? '3600';
  if (!/^\d+$/.test(interval) || Number(interval) < 1) throw new JobConfigError(`S3_SYNC_INTERVAL "${interval}": give whole seconds, e.g. 3600`);
  const jitter = env.OFFSITE_BACKUP_JITTER ?? '0';
  if (!/^\d+$/.test(jitter)) throw new JobConfigError(`OFFSITE_BACKUP_JITTER "${jitter}": give whole seconds, e.g. 60`);
  const keepLast = env.OFFSITE_BACKUP_KEEP_LAST;
  if (keepLast !== undefined && !/^[1-9]\d*$/.test(keepLast)) throw new JobConfigError(`OFFSITE_BACKUP_KEEP_LAST "${keepLast}": give a whole number of backups, e.g. 24`);
  return {
    name,
    source: parseSourceSpec(sourceSpec, process.cwd()),
    destinationUrl: bucket ? `s3://${bucket}/${prefix.replace(/^\/+/, '')}${query}` : undefined,
    localDir: path.resolve(env.OFFSITE_BACKUP_LOCAL_DIR || path.join('.offsite', 'backups', name)),
    keepLocal: true,
    schedule: interval,
    jitterSeconds: Number(jitter),
    keyTemplate: env.OFFSITE_BACKUP_KEY || '{job}-{timestamp}{ext}',
    compress: env.OFFSITE_BACKUP_COMPRESS === 'gzip' ? 'gzip' : 'none',
    recipients: (env.OFFSITE_BACKUP_RECIPIENTS ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    retention: keepLast ? { keepLast: Number(keepLast) } : {},
    origin: 'environment (OFFSITE_BACKUP_SOURCE, S3_BUCKET, ...)',
  };
}

export function findJob(config: JobsConfig, name: string): BackupJob {
  const job = config.jobs.find((j) => j.name === name);
  if (job) return job;
  const known = config.jobs.map((j) => j.name);
  throw new JobConfigError(
    `no backup job "${name}"${known.length ? `; configured: ${known.join(', ')}` : ''}: add [jobs.${name}] to ${config.source ?? DEFAULT_JOBS_CONFIG_FILE}, or set OFFSITE_BACKUP_SOURCE (and S3_BUCKET) for the "${ENV_JOB_NAME}" job`,
  );
}
