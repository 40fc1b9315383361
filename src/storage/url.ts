import { existsSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidUrlError } from './errors.js';
import { LocalStorage, LOCAL_INTERNAL_DIR } from './local/local.js';
import { S3Storage, type S3StorageOptions } from './s3/s3.js';
import type { Storage } from './types.js';

export type StorageLocation =
  | { kind: 'local'; root: string }
  | ({ kind: 's3' } & S3StorageOptions);

const S3_PARAMS = new Set(['endpoint', 'region', 'path_style', 'profile', 'part_size', 'concurrency', 'max_attempts']);

/**
 * Parses a storage URL:
 * - a plain path (`./backups`, `/var/backups`) or `file:///abs/path`: a local directory;
 * - `s3://bucket/prefix?endpoint=URL&region=R&path_style=true&profile=P&part_size=MiB&concurrency=N`.
 * Credentials are never part of a URL (they would end up in logs and shell history): they come
 * from the AWS default chain or explicit options.
 */
export function parseStorageUrl(url: string): StorageLocation {
  if (typeof url !== 'string' || url.trim() === '') throw new InvalidUrlError(String(url), 'it is empty');
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(url)?.[1]?.toLowerCase();
  if (!scheme || (scheme.length === 1 && process.platform === 'win32')) return { kind: 'local', root: path.resolve(url) };
  if (scheme === 'file') {
    if (!url.startsWith('file:///') && !url.startsWith('file://localhost/')) throw new InvalidUrlError(url, 'a file URL needs an absolute path, as in file:///var/backups');
    return { kind: 'local', root: fileURLToPath(url) };
  }
  if (scheme !== 's3') throw new InvalidUrlError(url, `unknown scheme "${scheme}:"; use a path, file:// or s3://`);

  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidUrlError(url, 'it is not a well-formed URL');
  }
  if (parsed.username || parsed.password) {
    throw new InvalidUrlError('s3://…', 'credentials do not belong in the URL; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or AWS_PROFILE');
  }
  const bucket = parsed.hostname;
  if (!bucket) throw new InvalidUrlError(url, 'the bucket name is missing (s3://BUCKET/prefix)');
  if (!/^[a-z0-9][a-z0-9.\-_]{1,254}$/i.test(bucket)) throw new InvalidUrlError(url, `"${bucket}" is not a valid bucket name`);
  for (const name of parsed.searchParams.keys()) {
    if (!S3_PARAMS.has(name)) throw new InvalidUrlError(url, `unknown parameter "${name}" (known: ${[...S3_PARAMS].join(', ')})`);
  }
  const q = parsed.searchParams;
  const endpoint = q.get('endpoint') ?? process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL ?? undefined;
  if (endpoint !== undefined) {
    try {
      const e = new URL(endpoint);
      if (e.protocol !== 'http:' && e.protocol !== 'https:') throw new Error();
    } catch {
      throw new InvalidUrlError(url, `endpoint "${endpoint}" must be an http:// or https:// URL`);
    }
  }
  const pathStyle = q.get('path_style');
  if (pathStyle !== null && !['true', 'false', '1', '0'].includes(pathStyle)) throw new InvalidUrlError(url, 'path_style must be true or false');
  const positive = (name: string): number | undefined => {
    const v = q.get(name);
    if (v === null) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new InvalidUrlError(url, `${name} must be a positive whole number`);
    return n;
  };
  const partSizeMiB = positive('part_size');
  const concurrency = positive('concurrency');
  const maxAttempts = positive('max_attempts');
  const prefix = decodeURIComponent(parsed.pathname.replace(/^\/+/, ''));
  return {
    kind: 's3',
    bucket,
    ...(prefix ? { prefix: prefix.endsWith('/') ? prefix : `${prefix}/` } : {}),
    ...(endpoint ? { endpoint } : {}),
    ...(q.get('region') ? { region: q.get('region')! } : {}),
    // Custom endpoints are mostly path-style servers (MinIO, Ceph); AWS itself is virtual-hosted.
    forcePathStyle: pathStyle === null ? endpoint !== undefined : pathStyle === 'true' || pathStyle === '1',
    ...(q.get('profile') ? { profile: q.get('profile')! } : {}),
    ...(partSizeMiB ? { partSize: partSizeMiB * 1024 * 1024 } : {}),
    ...(concurrency ? { concurrency } : {}),
    ...(maxAttempts ? { maxAttempts } : {}),
  };
}

/** Opens a Storage for a URL (see parseStorageUrl); `overrides` win over URL parameters. */
export function openStorage(url: string, overrides: Partial<S3StorageOptions> = {}): Storage {
  const loc = parseStorageUrl(url);
  if (loc.kind === 'local') return new LocalStorage(loc.root);
  const { kind: _kind, ...opts } = loc;
  return new S3Storage({ ...opts, ...overrides });
}

/**
 * Splits an object URL into the storage it lives in and the key, for commands that take one
 * object: "s3://bucket/dir/file.txt?endpoint=…" is bucket + "dir/file.txt". A local path is
 * keyed from its bucket root: the nearest enclosing directory already used as a bucket (it holds
 * Offsite's `.offsite-local/`); for a new bucket, the first directory the path would create
 * (`./bucket/a/b.txt` with no `./bucket` yet: `./bucket`); else the file's parent directory.
 */
export function splitObjectUrl(url: string): { storageUrl: string; key: string } {
  const loc = parseStorageUrl(url);
  if (loc.kind === 'local') {
    const root = findLocalBucketRoot(path.dirname(loc.root)) ?? firstNewDirectory(loc.root) ?? path.dirname(loc.root);
    return { storageUrl: root, key: toKey(path.relative(root, loc.root)) };
  }
  const { storageUrl, rest } = splitS3(url, loc.bucket);
  if (!rest || rest.endsWith('/')) throw new InvalidUrlError(url, 'it names a bucket or a prefix, not an object (s3://BUCKET/KEY)');
  return { storageUrl, key: rest };
}

/**
 * Splits a listing URL into storage and key prefix: "s3://bucket/logs/2026/" is bucket +
 * "logs/2026/". A local directory is listed from the nearest enclosing bucket root (see
 * splitObjectUrl), else it is the root itself.
 */
export function splitPrefixUrl(url: string): { storageUrl: string; prefix: string } {
  const loc = parseStorageUrl(url);
  if (loc.kind === 'local') {
    const root = findLocalBucketRoot(loc.root) ?? loc.root;
    const rel = toKey(path.relative(root, loc.root));
    // A directory lists what is inside it; anything else is a prefix of names ("logs/2026-").
    const isDir = url.endsWith('/') || (existsSync(loc.root) && statSync(loc.root).isDirectory());
    return { storageUrl: root, prefix: rel === '' ? '' : isDir ? `${rel}/` : rel };
  }
  const { storageUrl, rest } = splitS3(url, loc.bucket);
  return { storageUrl, prefix: rest };
}

function splitS3(url: string, bucket: string): { storageUrl: string; rest: string } {
  const rest = decodeURIComponent(new URL(url).pathname.replace(/^\/+/, ''));
  const query = url.includes('?') ? url.slice(url.indexOf('?')) : '';
  return { storageUrl: `s3://${bucket}${query}`, rest };
}

/** The nearest directory at or above `dir` that holds `.offsite-local/` (a local bucket). */
export function findLocalBucketRoot(dir: string): string | undefined {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    if (existsSync(path.join(d, LOCAL_INTERNAL_DIR))) return d;
    if (path.dirname(d) === d) return undefined;
  }
}

/** The topmost missing directory on the way to `file` (undefined if its parent exists). */
function firstNewDirectory(file: string): string | undefined {
  let missing: string | undefined;
  for (let d = path.dirname(file); !existsSync(d); d = path.dirname(d)) {
    missing = d;
    if (path.dirname(d) === d) break;
  }
  return missing;
}

function toKey(relative: string): string {
  return relative.split(path.sep).join('/');
}
