// The shapes of the console API's answers (docs/console.md), as far as the page reads them.

export interface S3Settings {
  configured: boolean;
  endpoint: string | null;
  bucket: string | null;
  region: string | null;
  access_key_id: string | null;
  prefix: string | null;
  path_style: boolean | null;
  secret_set: boolean;
  updated_at: string | null;
}

export interface S3SettingsInput {
  endpoint?: string;
  bucket: string;
  region?: string;
  access_key_id: string;
  secret_access_key?: string;
  prefix?: string;
  path_style?: boolean;
}

export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip';

export interface TestResult {
  ok: boolean;
  url: string;
  checks: { id: string; title: string; status: CheckStatus; detail: string }[];
}

export type JobStatus = 'ok' | 'failed' | 'running' | 'never';

export interface Job {
  name: string;
  source_kind: string;
  source: string;
  destination: string | null;
  destination_from: 'job' | 'settings' | null;
  schedule: string;
  running: boolean;
  last_success: string | null;
  last_failure: { at: string; error: string } | null;
  next_run: string | null;
  status: JobStatus;
}

export type Where = 'local' | 's3' | 'both';

export interface Backup {
  name: string;
  where: Where;
  taken_at: string | null;
  size: number | null;
  sha256: string | null;
}

export interface Run {
  id: string;
  job: string;
  kind: 'backup' | 'restore';
  trigger: 'manual' | 'schedule';
  status: 'running' | 'ok' | 'failed';
  started_at: string | null;
  finished_at: string | null;
  phase: string;
  bytes_done: number;
  bytes_total: number | null;
  backup: string | null;
  uploaded: boolean;
  error: { code: string; message: string } | null;
  result: Record<string, unknown> | null;
}

export interface Archives {
  configured: boolean;
  totals: { year: number | string; storage_class: string | null; archives: number; bytes: number }[];
  sessions: { session: string; year: number | string; status: string; size: number | null; storage_class: string | null; uploaded_at: string | null }[];
  last_runs: { kind: string; status: string; started_at: string; finished_at: string | null; bytes: number | null; error: string | null }[];
}

export interface SyncStatus {
  configured: boolean;
  devices: { device_id: string; name: string | null; host: string | null; self: boolean; last_seen_at: string | null; stale: boolean }[];
  pending: { entries: number; deletions: number; unsent_batches: number };
  snapshot_generation: number;
  problems: { device_id: string; code: string; message: string }[];
}
