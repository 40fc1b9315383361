import {
  AccessDeniedError,
  ArchivedObjectError,
  InvalidCredentialsError,
  NoSuchBucketError,
  NotFoundError,
  PreconditionFailedError,
  StorageError,
  TransientError,
} from '../errors.js';

interface SdkErrorShape {
  name?: string;
  code?: string;
  message?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number; attempts?: number };
  $fault?: string;
  cause?: unknown;
}

const CREDENTIAL_CODES = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
  'InvalidClientTokenId',
  'UnrecognizedClientException',
]);
const THROTTLE_CODES = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'RequestLimitExceeded', 'TooManyRequestsException', 'ServiceUnavailable', 'RequestTimeout', 'InternalError']);
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE']);

export interface ClassifyContext {
  /** The operation, for the message ("put", "get", ...). */
  op: string;
  /** The full object key (with the storage prefix), if the operation had one. */
  key?: string;
  /** bucket and endpoint, for messages. */
  bucket: string;
  endpoint: string;
  /** Where the credentials came from, for the InvalidCredentials hint. */
  credentialSource: () => string;
  /** The operation was a conditional write: 404 on it means the precondition failed (AWS). */
  conditional?: boolean;
}

/** The error's code as the server (or Node) gave it. RGW gives codes but no messages. */
export function sdkErrorCode(e: unknown): string {
  const err = e as SdkErrorShape;
  return err?.Code ?? err?.name ?? err?.code ?? 'Error';
}

export function sdkStatus(e: unknown): number | undefined {
  return (e as SdkErrorShape)?.$metadata?.httpStatusCode;
}

export function isNetworkError(e: unknown): boolean {
  for (let err = e as SdkErrorShape | undefined, depth = 0; err && depth < 5; err = err.cause as SdkErrorShape | undefined, depth++) {
    if (err.code && NETWORK_CODES.has(err.code)) return true;
    if (err.name === 'TimeoutError' || err.message === 'aborted' || err.message === 'socket hang up') return true;
  }
  return false;
}

/**
 * Turns an AWS SDK (or network) error into one of Offsite's typed errors. This is the only
 * place the S3 adapter inspects raw errors. Messages carry the key and a hint, never a secret.
 */
export function classifyS3Error(e: unknown, ctx: ClassifyContext): StorageError {
  if (e instanceof StorageError) return e;
  const err = e as SdkErrorShape;
  if (err?.name === 'AbortError') return new StorageError('StorageFailure', `s3: ${ctx.op} aborted`, { cause: e, ...(ctx.key ? { key: ctx.key } : {}) });
  const code = sdkErrorCode(e);
  const status = sdkStatus(e);
  const where = `s3://${ctx.bucket}${ctx.key !== undefined ? `/${ctx.key}` : ''} at ${ctx.endpoint}`;
  const attempts = err?.$metadata?.attempts;
  const detail = `${code}${status ? `, HTTP ${status}` : ''}${attempts && attempts > 1 ? `, after ${attempts} attempts` : ''}`;

  if (code === 'CredentialsProviderError' || /Could not load credentials|Resolved credential object is not valid/i.test(err?.message ?? '')) {
    return new InvalidCredentialsError(
      `s3: no AWS credentials found for ${ctx.op} ${where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (with a shared credentials file or SSO), or run with an instance/task role`,
      e,
    );
  }
  if (CREDENTIAL_CODES.has(code)) {
    return new InvalidCredentialsError(
      `s3: the server rejected the credentials (${detail}) for ${ctx.op} ${where}: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (credentials came from ${ctx.credentialSource()}), and that the machine's clock is right`,
      e,
    );
  }
  if (code === 'NoSuchBucket') {
    return new NoSuchBucketError(
      `s3: bucket "${ctx.bucket}" does not exist at ${ctx.endpoint} (${detail}): create it (aws s3 mb s3://${ctx.bucket}) or fix the bucket name, endpoint and region`,
      e,
    );
  }
  if (code === 'InvalidObjectState') return new ArchivedObjectError(ctx.key ?? '', undefined, e);
  if (code === 'PreconditionFailed' || code === 'ConditionalRequestConflict' || status === 412 || (ctx.conditional && (status === 404 || status === 409))) {
    return new PreconditionFailedError(ctx.key ?? '', `the store answered ${detail}`, e);
  }
  if (code === 'NoSuchKey' || code === 'NotFound' || status === 404) return new NotFoundError(ctx.key ?? '', `s3://${ctx.bucket}`, e);
  if (code === 'AccessDenied' || code === 'AllAccessDisabled' || status === 403) {
    return new AccessDeniedError(
      `s3: access denied (${detail}) for ${ctx.op} ${where}: the credentials (from ${ctx.credentialSource()}) lack permission for this operation: check the bucket policy and the IAM policy of these credentials (s3:GetObject, s3:PutObject, s3:ListBucket, s3:DeleteObject on this bucket)`,
      { cause: e, ...(ctx.key ? { key: ctx.key } : {}) },
    );
  }
  if (isNetworkError(e) || THROTTLE_CODES.has(code) || (status !== undefined && status >= 500)) {
    const reason = isNetworkError(e) ? `cannot reach ${ctx.endpoint} (${err?.code ?? code})` : `the server is unavailable (${detail})`;
    return new TransientError(`s3: ${ctx.op} ${where} failed: ${reason}; retries exhausted, try again later or check the endpoint`, {
      cause: e,
      ...(status ? { status } : {}),
      ...(ctx.key ? { key: ctx.key } : {}),
    });
  }
  return new StorageError('StorageFailure', `s3: ${ctx.op} ${where} failed (${detail})${err?.message && err.message !== 'UnknownError' ? `: ${err.message}` : ''}`, {
    cause: e,
    ...(status ? { status } : {}),
    ...(ctx.key ? { key: ctx.key } : {}),
  });
}
