// The console API's request and response bodies (zod): validated at the edge, and the source of
// the OpenAPI document at /api/openapi.json. Field names are the API's (snake_case).
import { z } from 'zod';

const iso = z.string().describe('ISO 8601 time');
const isoOrNull = iso.nullable();

export const errorBody = z
  .object({
    error: z.object({
      code: z.string().describe('NotFound, AccessDenied, InvalidCredentials, NoSuchBucket, Transient, Busy, Unauthorized, Forbidden, BadRequest, TooManyRequests, Conflict, ...'),
      message: z.string(),
    }),
  })
  .describe('An error');

export const jobParams = z.object({ name: z.string().min(1).max(200) });
export const backupParams = jobParams.extend({ backup: z.string().min(1).max(1024) });
export const runParams = z.object({ id: z.string().min(1).max(100) });

export const loginBody = z.object({ token: z.string().max(200) });
export const csrfBody = z.object({ csrf: z.string() });
export const okBody = z.object({ ok: z.literal(true) });

export const readyBody = z.object({
  ready: z.boolean(),
  checks: z.record(z.string(), z.object({ ok: z.boolean(), detail: z.string() })),
});

export const settingsBody = z.object({
  configured: z.boolean(),
  endpoint: z.string().nullable(),
  bucket: z.string().nullable(),
  region: z.string().nullable(),
  access_key_id: z.string().nullable(),
  prefix: z.string().nullable(),
  path_style: z.boolean().nullable(),
  secret_set: z.boolean(),
  updated_at: isoOrNull,
});

const settingsFields = {
  endpoint: z.string().max(2048).optional().describe('http(s) URL of an S3-compatible server; empty: AWS'),
  region: z.string().max(64).optional(),
  secret_access_key: z.string().max(1024).optional().describe('write-only; empty or absent: keep the stored one'),
  prefix: z.string().max(512).optional(),
  path_style: z.boolean().optional(),
};

export const settingsPut = z.object({
  ...settingsFields,
  bucket: z.string().min(1).max(63),
  access_key_id: z.string().min(1).max(256),
});

export const settingsTest = z
  .object({
    ...settingsFields,
    bucket: z.string().max(63).optional(),
    access_key_id: z.string().max(256).optional(),
  })
  .describe('Unsaved form values (a missing secret: the stored one), or {} for the stored settings');

export const testResult = z.object({
  ok: z.boolean(),
  url: z.string().describe('the storage URL tested (no secret)'),
  checks: z.array(z.object({ id: z.string(), title: z.string(), status: z.enum(['pass', 'warn', 'fail', 'skip']), detail: z.string() })),
});

export const job = z.object({
  name: z.string(),
  source_kind: z.enum(['sqlite', 'duckdb', 'postgres', 'file', 'dir']),
  source: z.string().describe('redacted'),
  destination: z.string().nullable().describe('storage URL, no secret'),
  destination_from: z.enum(['job', 'settings']).nullable(),
  schedule: z.string(),
  running: z.boolean(),
  last_success: isoOrNull,
  last_failure: z.object({ at: iso, error: z.string() }).nullable(),
  next_run: isoOrNull,
  status: z.enum(['ok', 'failed', 'running', 'never']),
});
export const jobsBody = z.object({ jobs: z.array(job) });

export const backupBody = z.object({ upload_to_s3: z.boolean().optional().describe('default true: upload when the job has a destination (its own or the S3 settings)') });
export const backupStarted = z.object({ run_id: z.string(), job: z.string(), status: z.literal('running') });

export const run = z.object({
  id: z.string(),
  job: z.string(),
  kind: z.enum(['backup', 'restore']),
  trigger: z.enum(['manual', 'schedule']),
  status: z.enum(['running', 'ok', 'failed']),
  started_at: iso,
  finished_at: isoOrNull,
  phase: z.enum(['snapshot', 'upload', 'done']),
  bytes_done: z.number(),
  bytes_total: z.number().nullable(),
  backup: z.string().nullable(),
  uploaded: z.boolean(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  result: z.record(z.string(), z.unknown()).nullable(),
});
export const runsBody = z.object({ runs: z.array(run) });

export const backupsBody = z.object({
  backups: z.array(z.object({ name: z.string(), where: z.enum(['local', 's3', 'both']), taken_at: iso, size: z.number(), sha256: z.string().nullable() })),
  listed_at: iso.describe('when the bucket was last listed'),
  stale_after_seconds: z.number().describe('a request re-lists the bucket when the listing is older than this'),
  bucket_error: z.object({ code: z.string(), message: z.string() }).nullable().describe('the bucket could not be listed: local copies (and the last listing) only'),
});

export const deleteQuery = z.object({ where: z.enum(['local', 's3', 'both']) });
export const deletedBody = z.object({ deleted: z.object({ local: z.boolean(), s3: z.boolean() }) });

export const restoreBody = z.object({
  backup: z.string().min(1).max(1024).describe("a backup's name, or 'latest'"),
  to: z.string().min(1).max(4096).optional().describe('file to restore to (default DATA_DIR/restores/JOB/NAME)'),
  into: z.string().max(4096).optional().describe('PostgreSQL jobs: the database URL to restore into'),
  force: z.boolean().optional(),
});
export const restoreStarted = z.object({ run_id: z.string() });

export const archivesBody = z.object({
  configured: z.boolean(),
  totals: z.array(z.object({ year: z.number(), storage_class: z.string().nullable(), archives: z.number(), bytes: z.number() })),
  sessions: z.array(z.object({ session: z.string(), year: z.number(), status: z.string(), size: z.number().nullable(), storage_class: z.string().nullable(), uploaded_at: isoOrNull })),
  last_runs: z.array(z.object({ kind: z.string(), status: z.string(), started_at: iso, finished_at: isoOrNull, bytes: z.number().nullable(), error: z.string().nullable() })),
});

export const syncBody = z.object({
  configured: z.boolean(),
  devices: z.array(z.object({ device_id: z.string(), name: z.string().nullable(), host: z.string().nullable(), self: z.boolean(), last_seen_at: isoOrNull, stale: z.boolean() })),
  pending: z.object({ entries: z.number(), deletions: z.number(), unsent_batches: z.number() }),
  snapshot_generation: z.number(),
  problems: z.array(z.object({ device_id: z.string(), code: z.string(), message: z.string() })),
});

export const textBody = z.string();
export const openapiBody = z.record(z.string(), z.unknown());

/** Error answers every protected route may give. */
export const authErrors = { 401: errorBody, 403: errorBody };
