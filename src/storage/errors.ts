/**
 * Typed storage errors. Every adapter classifies its failures once, at its edge, into one of
 * these; callers switch on `code` (stable) or `instanceof`. Messages name the key or URL and
 * say what to do. The original error is kept as `cause` (never printed by the CLI unless
 * --debug), and no message ever contains a secret.
 */

export type StorageErrorCode =
  | 'NotFound'
  | 'PreconditionFailed'
  | 'AccessDenied'
  | 'InvalidCredentials'
  | 'NoSuchBucket'
  | 'ArchivedObject'
  | 'Transient'
  | 'InvalidUrl'
  | 'InvalidKey'
  | 'Unsupported'
  | 'StorageFailure';

export class StorageError extends Error {
  readonly code: StorageErrorCode;
  /** The object key or URL the failed operation was about, when there is one. */
  readonly key: string | undefined;
  /** HTTP status, for the S3 adapter. */
  readonly status: number | undefined;

  constructor(code: StorageErrorCode, message: string, opts: { key?: string; status?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = `${code}Error`;
    this.code = code;
    this.key = opts.key;
    this.status = opts.status;
  }
}

export class NotFoundError extends StorageError {
  constructor(key: string, where: string, cause?: unknown) {
    super('NotFound', `${where}: no object at key "${key}"`, { key, status: 404, cause });
  }
}

export class PreconditionFailedError extends StorageError {
  constructor(key: string, detail: string, cause?: unknown) {
    super('PreconditionFailed', `conditional write to "${key}" refused: ${detail}; read the object again and retry`, {
      key,
      status: 412,
      cause,
    });
  }
}

export class AccessDeniedError extends StorageError {
  constructor(message: string, opts: { key?: string; cause?: unknown } = {}) {
    super('AccessDenied', message, { ...opts, status: 403 });
  }
}

export class InvalidCredentialsError extends StorageError {
  constructor(message: string, cause?: unknown) {
    super('InvalidCredentials', message, { status: 403, cause });
  }
}

export class NoSuchBucketError extends StorageError {
  constructor(message: string, cause?: unknown) {
    super('NoSuchBucket', message, { status: 404, cause });
  }
}

export class ArchivedObjectError extends StorageError {
  constructor(key: string, storageClass: string | undefined, cause?: unknown) {
    super(
      'ArchivedObject',
      `object "${key}" is in an archive storage class${storageClass ? ` (${storageClass})` : ''} and must be restored before it can be read; request a restore (e.g. offsite archive restore, or aws s3api restore-object) and try again when it completes`,
      { key, status: 403, cause },
    );
  }
}

export class TransientError extends StorageError {
  constructor(message: string, opts: { key?: string; status?: number; cause?: unknown } = {}) {
    super('Transient', message, opts);
  }
}

export class InvalidUrlError extends StorageError {
  constructor(url: string, reason: string) {
    super(
      'InvalidUrl',
      `invalid storage URL "${url}": ${reason}. Examples: ./backups, file:///var/backups, s3://my-bucket/prefix, s3://my-bucket?endpoint=http://127.0.0.1:7480&path_style=true&region=us-east-1`,
      { key: url },
    );
  }
}

export class InvalidKeyError extends StorageError {
  constructor(key: string, reason: string) {
    super('InvalidKey', `invalid object key "${key}": ${reason}`, { key });
  }
}

export class UnsupportedError extends StorageError {
  constructor(message: string) {
    super('Unsupported', message);
  }
}

export function isStorageError(e: unknown, code?: StorageErrorCode): e is StorageError {
  return e instanceof StorageError && (code === undefined || e.code === code);
}

/** Whether `key` exists: a HEAD, with NotFound as `false` and every other error thrown. */
export async function objectExists(storage: { head(key: string, opts?: { signal?: AbortSignal }): Promise<unknown> }, key: string, opts: { signal?: AbortSignal } = {}): Promise<boolean> {
  try {
    await storage.head(key, opts);
    return true;
  } catch (e) {
    if (isStorageError(e, 'NotFound')) return false;
    throw e;
  }
}
