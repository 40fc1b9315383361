import * as path from 'node:path';
import { LocalStorage, openStorage, S3Storage, type Storage } from '../storage/index.js';
import { SnapshotError } from './errors.js';
import type { SnapshotLocation } from './types.js';

/** Any storage URL; selects where snapshots go when no option says so. Empty = unset. */
export const SNAPSHOT_URL_ENV = 'OFFSITE_SNAPSHOT_URL';
/** Relative to the current working directory at the time of the call. */
export const DEFAULT_SNAPSHOT_DIRECTORY = path.join('.offsite', 'snapshots');

/**
 * Runs `fn` with the storage the options select (precedence in SnapshotLocation's doc). Storage
 * opened here is closed afterwards, so no call leaves sockets open; a Storage instance passed in
 * belongs to the caller and stays open. Callers that snapshot often should pass an instance.
 */
export async function withSnapshotStorage<T>(opts: SnapshotLocation, fn: (storage: Storage) => Promise<T>): Promise<T> {
  if (isStorage(opts.storage)) return fn(opts.storage);
  const storage = openSelected(opts);
  try {
    return await fn(storage);
  } finally {
    await storage.close();
  }
}

function openSelected(opts: SnapshotLocation): Storage {
  const { storage } = opts;
  if (storage !== undefined && typeof storage !== 'string') throw invalid('storage must be a Storage instance, "s3", "local" or a storage URL');
  if (storage === 's3') {
    const { bucket, prefix, region, endpoint, forcePathStyle, credentials, profile } = opts;
    if (typeof bucket !== 'string' || bucket === '') throw invalid('storage "s3" needs a bucket: { storage: "s3", bucket: "my-bucket", region: "eu-west-1" }');
    return new S3Storage({
      bucket,
      // As in s3:// URLs: a prefix names a folder, so "agents" and "agents/" mean the same.
      ...(prefix ? { prefix: prefix.endsWith('/') ? prefix : `${prefix}/` } : {}),
      ...(region ? { region } : {}),
      ...(endpoint ? { endpoint } : {}),
      forcePathStyle: forcePathStyle ?? endpoint !== undefined,
      ...(credentials ? { credentials } : {}),
      ...(profile ? { profile } : {}),
    });
  }
  if (opts.bucket !== undefined && storage === undefined) throw invalid('bucket is set but storage is not: add storage: "s3"');
  if (storage === 'local' || opts.directory !== undefined) {
    if (opts.directory !== undefined && (typeof opts.directory !== 'string' || opts.directory === '')) throw invalid('directory must be a non-empty path');
    return new LocalStorage(path.resolve(opts.directory ?? DEFAULT_SNAPSHOT_DIRECTORY));
  }
  if (storage !== undefined) {
    if (storage === '') throw invalid('storage must not be empty');
    return openStorage(storage);
  }
  const fromEnv = process.env[SNAPSHOT_URL_ENV];
  if (fromEnv) return openStorage(fromEnv);
  return new LocalStorage(path.resolve(DEFAULT_SNAPSHOT_DIRECTORY));
}

function isStorage(value: unknown): value is Storage {
  return typeof value === 'object' && value !== null && typeof (value as Storage).put === 'function' && typeof (value as Storage).head === 'function';
}

function invalid(message: string): SnapshotError {
  return new SnapshotError('InvalidSnapshotOptions', `snapshot options: ${message}`);
}
