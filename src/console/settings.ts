/**
 * The S3 settings as the console uses them: checked input, the masked view the API shows, and
 * the storage URLs they make (the bucket root for a test, `PREFIX/JOB/` for a job). URLs never
 * hold a credential: the keys reach the S3 client in memory only.
 */
import { openStorage, type Storage } from '../storage/index.js';
import { ConsoleError } from './errors.js';
import type { StoredSettings } from './store.js';

/** What a client sends (PUT, or the unsaved form of a test). */
export interface SettingsInput {
  endpoint?: string | undefined;
  bucket: string;
  region?: string | undefined;
  access_key_id: string;
  secret_access_key?: string | undefined;
  prefix?: string | undefined;
  path_style?: boolean | undefined;
}

/** GET /api/settings/s3: everything but the secret, of which only whether it is set (and at most its last 4 characters). */
export interface SettingsView {
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

export const UNCONFIGURED_VIEW: SettingsView = {
  configured: false,
  endpoint: null,
  bucket: null,
  region: null,
  access_key_id: null,
  prefix: null,
  path_style: null,
  secret_set: false,
  updated_at: null,
};

const BUCKET_NAME = /^[a-z0-9][a-z0-9.\-_]{1,62}$/;

function bad(field: string, message: string): ConsoleError {
  return new ConsoleError('BadRequest', `body.${field}: ${message}`, `body.${field}`);
}

/**
 * Checks the input and fills the secret from `stored` when the input has none. Every message
 * names the field at fault; none repeats a value that could be a secret.
 */
export function resolveSettings(input: SettingsInput, stored: StoredSettings | undefined): Omit<StoredSettings, 'updatedAt'> {
  const bucket = input.bucket.trim();
  if (!BUCKET_NAME.test(bucket)) throw bad('bucket', 'a bucket name is 3-63 lower-case letters, digits, ".", "-" or "_"');
  const endpoint = input.endpoint?.trim() || null;
  if (endpoint) {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      throw bad('endpoint', 'not a URL (e.g. https://s3.example.com)');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw bad('endpoint', 'must be an http:// or https:// URL');
    if (url.username || url.password) throw bad('endpoint', 'credentials do not belong in the endpoint URL');
  }
  const region = input.region?.trim() || null;
  if (region && !/^[a-z0-9-]{1,64}$/i.test(region)) throw bad('region', 'a region is letters, digits and "-" (e.g. eu-west-1)');
  const accessKeyId = input.access_key_id.trim();
  if (!accessKeyId) throw bad('access_key_id', 'required');
  const secret = input.secret_access_key ? input.secret_access_key : stored?.secretAccessKey;
  if (!secret) throw bad('secret_access_key', 'required (no secret is stored yet)');
  const prefix = (input.prefix ?? '').trim().replace(/^\/+|\/+$/g, '');
  if (prefix.split('/').some((p) => p === '.' || p === '..')) throw bad('prefix', 'no "." or ".." segments');
  return { endpoint, bucket, region, accessKeyId, prefix, pathStyle: input.path_style ?? true, secretAccessKey: secret };
}

export function settingsView(summary: Omit<StoredSettings, 'secretAccessKey'> | undefined): SettingsView {
  if (!summary) return UNCONFIGURED_VIEW;
  return {
    configured: true,
    endpoint: summary.endpoint,
    bucket: summary.bucket,
    region: summary.region,
    access_key_id: summary.accessKeyId,
    prefix: summary.prefix,
    path_style: summary.pathStyle,
    secret_set: true,
    updated_at: summary.updatedAt,
  };
}

/** `s3://BUCKET/PREFIX/SUB/?endpoint=…&region=…&path_style=…` (no credentials). */
export function settingsUrl(s: Pick<StoredSettings, 'bucket' | 'prefix' | 'endpoint' | 'region' | 'pathStyle'>, sub = ''): string {
  const params = new URLSearchParams();
  if (s.endpoint) params.set('endpoint', s.endpoint);
  if (s.region) params.set('region', s.region);
  params.set('path_style', String(s.pathStyle));
  const segments = [s.prefix, sub].filter(Boolean).join('/').split('/').filter(Boolean).map(encodeURIComponent);
  return `s3://${s.bucket}/${segments.length ? `${segments.join('/')}/` : ''}?${params.toString()}`;
}

/** A storage on the settings, the keys passed in memory (never through the environment or argv). */
export function openSettingsStorage(s: Omit<StoredSettings, 'updatedAt'>, sub = ''): Storage {
  return openStorage(settingsUrl(s, sub), { credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey } });
}
