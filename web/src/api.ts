// The console API as the page uses it: JSON in and out, the session cookie sent by the browser,
// the CSRF token (kept in memory only, never in storage) on every state-changing request.
import type { Archives, Backup, Job, Run, S3Settings, S3SettingsInput, SyncStatus, TestResult } from './types.js';

let csrf: string | null = null;
let onUnauthorized: () => void = () => {};

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function setUnauthorizedHandler(fn: () => void): void {
  onUnauthorized = fn;
}

export function isLoggedIn(): boolean {
  return csrf !== null;
}

async function request<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['x-csrf-token'] = csrf;
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  } catch {
    throw new ApiError(0, 'Transient', 'The console server did not answer.');
  }
  const text = await res.text();
  let data: unknown = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const err = (data as { error?: { code?: string; message?: string } } | null)?.error;
    if (res.status === 401 && path !== '/api/login' && path !== '/api/session') {
      csrf = null;
      onUnauthorized();
    }
    throw new ApiError(res.status, err?.code ?? `HTTP ${res.status}`, err?.message ?? res.statusText);
  }
  return data as T;
}

export async function login(token: string): Promise<void> {
  const r = await request<{ csrf: string }>('POST', '/api/login', { token });
  csrf = r.csrf;
}

/** On a reload: the cookie may still be valid; the CSRF token comes back with it. */
export async function resumeSession(): Promise<boolean> {
  try {
    const r = await request<{ csrf: string }>('GET', '/api/session');
    csrf = r.csrf;
    return true;
  } catch {
    return false;
  }
}

export async function logout(): Promise<void> {
  try {
    await request('POST', '/api/logout', {});
  } finally {
    csrf = null;
  }
}

const job = (name: string) => `/api/jobs/${encodeURIComponent(name)}`;

export const api = {
  getSettings: () => request<S3Settings>('GET', '/api/settings/s3'),
  saveSettings: (s: S3SettingsInput) => request<S3Settings>('PUT', '/api/settings/s3', s),
  deleteSettings: () => request<S3Settings>('DELETE', '/api/settings/s3'),
  testSettings: (s: Partial<S3SettingsInput>) => request<TestResult>('POST', '/api/settings/s3/test', s),
  jobs: () => request<{ jobs: Job[] }>('GET', '/api/jobs'),
  job: (name: string) => request<Job>('GET', job(name)),
  backups: (name: string) => request<{ backups: Backup[]; listed_at: string; stale_after_seconds: number; bucket_error?: { code: string; message: string } | null }>('GET', `${job(name)}/backups`),
  backup: (name: string, uploadToS3?: boolean) =>
    request<{ run_id: string }>('POST', `${job(name)}/backup`, uploadToS3 === undefined ? {} : { upload_to_s3: uploadToS3 }),
  restore: (name: string, backup: string) => request<{ run_id: string }>('POST', `${job(name)}/restore`, { backup }),
  deleteBackup: (name: string, backup: string, where: 'local' | 's3' | 'both') =>
    request<{ deleted: { local: boolean; s3: boolean } }>('DELETE', `${job(name)}/backups/${encodeURIComponent(backup)}?where=${where}`),
  run: (id: string) => request<Run>('GET', `/api/runs/${encodeURIComponent(id)}`),
  archives: () => request<Archives>('GET', '/api/archives'),
  sync: () => request<SyncStatus>('GET', '/api/sync'),
};
