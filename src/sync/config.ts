// Where a device's sync account lives, from a config file and OFFSITE_SYNC_* variables. The
// result is a backend URL without secrets (saved in the device's state, shown in status) plus
// the secrets that never go into a file: the S3 secret access key (environment or the AWS
// credential chain) and the HTTP server's token (environment, or the 0600 file in the state
// directory).
import { closeSync, constants, openSync, readFileSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import { z } from 'zod';
import { writePrivateFile } from '../files/index.js';
import { parseStorageUrl } from '../storage/index.js';
import { SyncError } from './errors.js';
import { SERVER_TOKEN_FILE } from './state-dir.js';

export type SyncBackendKind = 's3' | 'http' | 'local';

/** The variables read by resolveSyncConfig (every field of the file has one). */
export const SYNC_ENV = {
  url: 'OFFSITE_SYNC_URL',
  backend: 'OFFSITE_SYNC_BACKEND',
  bucket: 'OFFSITE_SYNC_BUCKET',
  region: 'OFFSITE_SYNC_REGION',
  endpoint: 'OFFSITE_SYNC_ENDPOINT',
  prefix: 'OFFSITE_SYNC_PREFIX',
  accessKeyId: 'OFFSITE_SYNC_ACCESS_KEY_ID',
  path: 'OFFSITE_SYNC_PATH',
  stateDir: 'OFFSITE_SYNC_DIR',
  config: 'OFFSITE_SYNC_CONFIG',
  /** Secrets: environment only. */
  secretAccessKey: 'OFFSITE_SYNC_SECRET_ACCESS_KEY',
  sessionToken: 'OFFSITE_SYNC_SESSION_TOKEN',
  token: 'OFFSITE_SYNC_TOKEN',
} as const;

/** What the config file may hold (sync.toml); every field is optional. */
export interface SyncConfig {
  /** A whole backend URL: a directory, file://, s3://bucket/prefix?region=…, http(s)://host:port. */
  url?: string;
  backend?: SyncBackendKind;
  bucket?: string;
  region?: string;
  endpoint?: string;
  prefix?: string;
  accessKeyId?: string;
  /** The directory used as the bucket (backend "local"). */
  path?: string;
  stateDir?: string;
}

export interface ResolvedSyncBackend {
  kind: SyncBackendKind;
  /** The backend URL, free of secrets. */
  url: string;
  /** Explicit S3 keys (access key id from config or environment, secret from the environment). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** The HTTP server's token, from the environment. */
  token?: string;
}

const FORBIDDEN_IN_FILE: Record<string, string> = {
  secret_access_key: `the secret access key never goes into a file: set ${SYNC_ENV.secretAccessKey} (or AWS_SECRET_ACCESS_KEY) in the environment, or use an AWS profile`,
  aws_secret_access_key: `the secret access key never goes into a file: set ${SYNC_ENV.secretAccessKey} (or AWS_SECRET_ACCESS_KEY) in the environment, or use an AWS profile`,
  token: `the server token never goes into the config file: set ${SYNC_ENV.token}, or give it once to init/join (it is kept 0600 in the state directory)`,
  secret: 'the sync secret never goes into the config file: it is kept 0600 in the state directory by init and join',
};

const fileSchema = z
  .object({
    url: z.string().min(1).optional(),
    backend: z.enum(['s3', 'http', 'local']).optional(),
    bucket: z.string().min(1).optional(),
    region: z.string().min(1).optional(),
    endpoint: z.string().min(1).optional(),
    prefix: z.string().optional(),
    access_key_id: z.string().min(1).optional(),
    path: z.string().min(1).optional(),
    state_dir: z.string().min(1).optional(),
  })
  .strict();

/** $XDG_CONFIG_HOME/offsite/sync.toml (else ~/.config/offsite/sync.toml). */
export function defaultSyncConfigFile(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.XDG_CONFIG_HOME || path.join(homedir(), '.config'), 'offsite', 'sync.toml');
}

/** $XDG_DATA_HOME/offsite/sync (else ~/.local/share/offsite/sync). */
export function defaultSyncStateDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.XDG_DATA_HOME || path.join(homedir(), '.local', 'share'), 'offsite', 'sync');
}

/**
 * Reads the sync config file: `file` if given (it must exist), else $OFFSITE_SYNC_CONFIG, else the
 * default file if it exists. A [sync] table or top-level keys are both accepted.
 */
export function readSyncConfigFile(file?: string, env: NodeJS.ProcessEnv = process.env): { config: SyncConfig; file: string | undefined } {
  const explicit = file ?? (env[SYNC_ENV.config] || undefined);
  const candidate = explicit ?? defaultSyncConfigFile(env);
  let text: string;
  try {
    text = readFileSync(candidate, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && explicit === undefined) return { config: {}, file: undefined };
    throw new SyncError('InvalidSyncConfig', `${candidate}: cannot read the sync config file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let raw: Record<string, unknown>;
  try {
    raw = parseToml(text) as Record<string, unknown>;
  } catch (e) {
    if (e instanceof TomlError) throw new SyncError('InvalidSyncConfig', `${candidate}: not valid TOML: ${e.message.split('\n')[0]}`);
    throw e;
  }
  const table = typeof raw.sync === 'object' && raw.sync !== null && !Array.isArray(raw.sync) ? (raw.sync as Record<string, unknown>) : raw;
  for (const key of Object.keys(table)) {
    const why = FORBIDDEN_IN_FILE[key];
    if (why) throw new SyncError('InvalidSyncConfig', `${candidate}: ${key}: ${why}`);
  }
  const parsed = fileSchema.safeParse(table);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.join('.') || (issue.code === 'unrecognized_keys' ? issue.keys.join(', ') : '(top level)');
    throw new SyncError('InvalidSyncConfig', `${candidate}: ${where}: ${issue.message} (known keys: ${Object.keys(fileSchema.shape).join(', ')})`);
  }
  const f = parsed.data;
  const base = path.dirname(candidate);
  const config: SyncConfig = {
    ...(f.url !== undefined ? { url: f.url } : {}),
    ...(f.backend !== undefined ? { backend: f.backend } : {}),
    ...(f.bucket !== undefined ? { bucket: f.bucket } : {}),
    ...(f.region !== undefined ? { region: f.region } : {}),
    ...(f.endpoint !== undefined ? { endpoint: f.endpoint } : {}),
    ...(f.prefix !== undefined ? { prefix: f.prefix } : {}),
    ...(f.access_key_id !== undefined ? { accessKeyId: f.access_key_id } : {}),
    // Relative paths in a file are relative to the file, not to wherever the command runs.
    ...(f.path !== undefined ? { path: path.resolve(base, expandHome(f.path)) } : {}),
    ...(f.state_dir !== undefined ? { stateDir: path.resolve(base, expandHome(f.state_dir)) } : {}),
  };
  return { config, file: candidate };
}

/** The OFFSITE_SYNC_* variables as a SyncConfig (secrets are read by resolveSyncBackend). */
export function syncConfigFromEnv(env: NodeJS.ProcessEnv = process.env): SyncConfig {
  const get = (name: string) => env[name] || undefined;
  const backend = get(SYNC_ENV.backend);
  if (backend !== undefined && !['s3', 'http', 'local'].includes(backend)) {
    throw new SyncError('InvalidSyncConfig', `${SYNC_ENV.backend}="${backend}": use s3, http or local`);
  }
  const fields: [keyof SyncConfig, string][] = [
    ['url', SYNC_ENV.url],
    ['bucket', SYNC_ENV.bucket],
    ['region', SYNC_ENV.region],
    ['endpoint', SYNC_ENV.endpoint],
    ['prefix', SYNC_ENV.prefix],
    ['accessKeyId', SYNC_ENV.accessKeyId],
    ['path', SYNC_ENV.path],
    ['stateDir', SYNC_ENV.stateDir],
  ];
  const config: SyncConfig = backend ? { backend: backend as SyncBackendKind } : {};
  for (const [field, name] of fields) {
    const v = get(name);
    if (v !== undefined) (config as Record<string, string>)[field] = field === 'path' || field === 'stateDir' ? path.resolve(expandHome(v)) : v;
  }
  return config;
}

/**
 * Layers configurations: later ones win, field by field; a whole URL in a later layer replaces
 * the parts of earlier ones (and parts in a later layer replace an earlier URL).
 */
export function mergeSyncConfigs(...layers: SyncConfig[]): SyncConfig {
  const PARTS: (keyof SyncConfig)[] = ['backend', 'bucket', 'region', 'endpoint', 'prefix', 'path'];
  let merged: SyncConfig = {};
  for (const layer of layers) {
    if (layer.url !== undefined) for (const k of PARTS) delete merged[k];
    if (PARTS.some((k) => layer[k] !== undefined)) delete merged.url;
    merged = { ...merged, ...layer };
  }
  return merged;
}

/** Which backend a URL names. */
export function backendKindOfUrl(url: string): SyncBackendKind {
  if (/^https?:\/\//i.test(url)) return 'http';
  if (/^s3:\/\//i.test(url)) return 's3';
  return 'local';
}

/**
 * The name the account's id on a backend is derived from (crypto.ts userIdFor): it must come out
 * the same on every device that uses the backend, however each one spells the URL.
 * - s3: the bucket and key prefix, which are where the data is; not the endpoint or region,
 *   which devices spell differently (a regional endpoint, a default from the environment), so
 *   the same bucket name and prefix at two providers give the same id;
 * - http: only the kind, because devices reach one server under several names (a LAN address,
 *   a DNS name, a proxy), so two servers of one account show the same id to their operators;
 * - local: only the kind, because a shared directory is mounted at different paths on different
 *   machines; a directory is the user's own file system.
 */
export function backendName(url: string): string {
  const kind = backendKindOfUrl(url);
  if (kind !== 's3') return kind;
  const location = parseStorageUrl(url);
  return location.kind === 's3' ? `s3:${location.bucket}/${location.prefix ?? ''}` : kind;
}

/**
 * The backend a config names, or undefined when it names none (a device that already joined
 * then uses the URL saved in its state). Throws InvalidSyncConfig for an incomplete or
 * contradictory config.
 */
export function resolveSyncBackend(config: SyncConfig, env: NodeJS.ProcessEnv = process.env): ResolvedSyncBackend | undefined {
  const url = config.url ?? urlFromParts(config);
  if (url === undefined) return undefined;
  const kind = backendKindOfUrl(url);
  if (config.backend !== undefined && config.url !== undefined && config.backend !== kind) {
    throw new SyncError('InvalidSyncConfig', `backend "${config.backend}" does not match the URL, which names a${kind === 'http' ? 'n http' : kind === 's3' ? 'n s3' : ' local'} backend`);
  }
  const resolved: ResolvedSyncBackend = { kind, url };
  if (kind === 's3') {
    const secretAccessKey = env[SYNC_ENV.secretAccessKey] || undefined;
    if (config.accessKeyId !== undefined) {
      const secret = secretAccessKey ?? (env.AWS_ACCESS_KEY_ID === config.accessKeyId ? env.AWS_SECRET_ACCESS_KEY : undefined);
      if (!secret) throw new SyncError('InvalidSyncConfig', `access key id ${config.accessKeyId} is set, but no secret access key: set ${SYNC_ENV.secretAccessKey} in the environment (it is never read from a file)`);
      const sessionToken = env[SYNC_ENV.sessionToken] || undefined;
      resolved.credentials = { accessKeyId: config.accessKeyId, secretAccessKey: secret, ...(sessionToken ? { sessionToken } : {}) };
    } else if (secretAccessKey !== undefined) {
      throw new SyncError('InvalidSyncConfig', `${SYNC_ENV.secretAccessKey} is set without an access key id: set ${SYNC_ENV.accessKeyId} (or access_key_id in the config file)`);
    }
  }
  if (kind === 'http') {
    const token = env[SYNC_ENV.token] || undefined;
    if (token !== undefined) resolved.token = token;
  }
  return resolved;
}

function urlFromParts(c: SyncConfig): string | undefined {
  const backend = c.backend ?? (c.bucket !== undefined ? 's3' : c.path !== undefined ? 'local' : undefined);
  if (backend === undefined) {
    if (c.region !== undefined || c.endpoint !== undefined || c.prefix !== undefined) {
      throw new SyncError('InvalidSyncConfig', `a region, endpoint or prefix without a bucket: set the bucket (${SYNC_ENV.bucket} or bucket in the config file)`);
    }
    return undefined;
  }
  if (backend === 'local') {
    if (c.path === undefined) throw new SyncError('InvalidSyncConfig', `backend "local" needs a directory: set ${SYNC_ENV.path} (or path in the config file)`);
    return c.path;
  }
  if (backend === 'http') {
    throw new SyncError('InvalidSyncConfig', `backend "http" needs the server's URL: set ${SYNC_ENV.url} (or url in the config file), e.g. http://127.0.0.1:8787`);
  }
  if (c.bucket === undefined) throw new SyncError('InvalidSyncConfig', `backend "s3" needs a bucket: set ${SYNC_ENV.bucket} (or bucket in the config file)`);
  if (!/^[a-z0-9][a-z0-9.\-_]{1,254}$/i.test(c.bucket)) throw new SyncError('InvalidSyncConfig', `"${c.bucket}" is not a valid bucket name`);
  const prefix = (c.prefix ?? '').replace(/^\/+/, '');
  const query = new URLSearchParams();
  if (c.region !== undefined) query.set('region', c.region);
  if (c.endpoint !== undefined) query.set('endpoint', c.endpoint);
  const q = query.toString();
  return `s3://${c.bucket}/${prefix.split('/').map(encodeURIComponent).join('/')}${q ? `?${q}` : ''}`;
}

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(homedir(), p.slice(1)) : p;
}


/**
 * Keeps an HTTP server's token next to the sync secret (0600), so commands run later without
 * OFFSITE_SYNC_TOKEN in their environment (a shell hook) still reach the server. Written through
 * a new private temp file renamed into place: never through a symlink planted at its name.
 */
export async function saveServerToken(stateDir: string, token: string): Promise<void> {
  await writePrivateFile(path.join(stateDir, SERVER_TOKEN_FILE), `${token}\n`);
}

export function readServerToken(stateDir: string): string | undefined {
  let fd: number;
  try {
    // O_NOFOLLOW: a symlink at the token's name is not ours, and not read.
    fd = openSync(path.join(stateDir, SERVER_TOKEN_FILE), constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    return readFileSync(fd, 'utf8').trim() || undefined;
  } finally {
    closeSync(fd);
  }
}

export function removeServerToken(stateDir: string): void {
  rmSync(path.join(stateDir, SERVER_TOKEN_FILE), { force: true });
}
