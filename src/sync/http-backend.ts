// The HTTP backend: the SyncBackend as calls to an `offsite serve` server (src/server/sync). Each
// call POSTs its request as JSON to /api/v1/ENDPOINT and returns the JSON answer; an error
// answer becomes the same SyncError or StorageError the bucket backend would have thrown, so
// the client above, and the CLI's exit codes, behave alike over either backend. Like a bucket,
// the server only ever sees sealed data.
import { StatsCounter, StorageError, type RequestStats, type StorageErrorCode } from '../storage/index.js';
import { SyncError, type SyncErrorCode } from './errors.js';
import type {
  AddDeletionRequest,
  BootstrapRequest,
  BootstrapResult,
  CallOptions,
  CollectGarbageRequest,
  CollectGarbageResult,
  DeletionRequestsResult,
  DeviceListing,
  DeviceRef,
  GetDeletionRequestsRequest,
  LeaseRequest,
  LeaseResult,
  PingResult,
  PublishCursorRequest,
  PutSnapshotRequest,
  QueryRequest,
  QueryResult,
  RegisterDeviceRequest,
  RegisterDeviceResult,
  ReleaseLeaseRequest,
  SubmitRequest,
  SubmitResult,
  SyncBackend,
  UserRef,
} from './types.js';

/** Where a client finds the token of `offsite serve`. */
export const SYNC_TOKEN_ENV = 'OFFSITE_SYNC_TOKEN';

export interface HttpBackendOptions {
  /** The server's bearer token. */
  token: string;
  /** Attempts of one call when the server is unreachable or answers 502/503/504. Default 4. */
  attempts?: number;
  /** The first retry's delay; it doubles each time (with jitter). Default 250 ms. */
  retryDelayMs?: number;
  /** One attempt's limit, answer included. Default 120 s. */
  timeoutMs?: number;
}

/** Connection failures that mean "try again": the server is (re)starting or dropped the socket. */
const RETRY_NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNABORTED', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

// The storage layer's codes: an error answer with one of these becomes a StorageError; any
// other code is the server's SyncError, passed on as it was thrown there.
const STORAGE_CODES: Record<StorageErrorCode, true> = {
  NotFound: true,
  PreconditionFailed: true,
  AccessDenied: true,
  InvalidCredentials: true,
  NoSuchBucket: true,
  ArchivedObject: true,
  Transient: true,
  InvalidUrl: true,
  InvalidKey: true,
  Unsupported: true,
  StorageFailure: true,
};

/** A server's error message is shown, but never at any length. */
const MAX_MESSAGE = 500;

export class HttpBackend implements SyncBackend {
  readonly type = 'http' as const;
  /** The server's base URL (no credentials, query or trailing slash). */
  readonly url: string;
  // A private field: util.inspect and JSON.stringify of the backend never show the token.
  readonly #authorization: string;
  private readonly attempts: number;
  private readonly retryDelayMs: number;
  private readonly timeoutMs: number;
  private readonly stats = new StatsCounter();

  constructor(url: string, opts: HttpBackendOptions) {
    this.url = baseUrl(url);
    if (typeof opts.token !== 'string' || !/^[\x21-\x7e]+$/.test(opts.token)) {
      throw new SyncError('Unauthorized', `no usable token for the sync server at ${this.url}: set ${SYNC_TOKEN_ENV} to the token of \`offsite serve\``);
    }
    this.#authorization = `Bearer ${opts.token}`;
    this.attempts = Math.max(1, opts.attempts ?? 4);
    this.retryDelayMs = opts.retryDelayMs ?? 250;
    this.timeoutMs = opts.timeoutMs ?? 120_000;
  }

  async ping(opts: CallOptions = {}): Promise<PingResult> {
    await this.call('ping', {}, opts);
    return { ok: true, type: this.type, location: this.url };
  }

  registerDevice(req: RegisterDeviceRequest, opts?: CallOptions): Promise<RegisterDeviceResult> {
    return this.call('register', req, opts);
  }

  submitEntries(req: SubmitRequest, opts?: CallOptions): Promise<SubmitResult> {
    return this.call('submit', req, opts);
  }

  queryEntries(req: QueryRequest, opts?: CallOptions): Promise<QueryResult> {
    return this.call('query', req, opts);
  }

  bootstrap(req: BootstrapRequest, opts?: CallOptions): Promise<BootstrapResult> {
    return this.call('bootstrap', req, opts);
  }

  addDeletionRequest(req: AddDeletionRequest, opts?: CallOptions): Promise<SubmitResult> {
    return this.call('add-deletion-request', req, opts);
  }

  getDeletionRequests(req: GetDeletionRequestsRequest, opts?: CallOptions): Promise<DeletionRequestsResult> {
    return this.call('get-deletion-requests', req, opts);
  }

  async uninstall(req: DeviceRef, opts?: CallOptions): Promise<void> {
    await this.call('uninstall', req, opts);
  }

  listDevices(req: UserRef, opts?: CallOptions): Promise<DeviceListing> {
    return this.call('devices', req, opts);
  }

  async publishCursor(req: PublishCursorRequest, opts?: CallOptions): Promise<void> {
    await this.call('publish-cursor', req, opts);
  }

  acquireLease(req: LeaseRequest, opts?: CallOptions): Promise<LeaseResult> {
    return this.call('lease/acquire', req, opts);
  }

  async releaseLease(req: ReleaseLeaseRequest, opts?: CallOptions): Promise<void> {
    await this.call('lease/release', req, opts);
  }

  async putSnapshot(req: PutSnapshotRequest, opts?: CallOptions): Promise<void> {
    await this.call('snapshot', req, opts);
  }

  collectGarbage(req: CollectGarbageRequest, opts?: CallOptions): Promise<CollectGarbageResult> {
    return this.call('collect-garbage', req, opts);
  }

  /** Requests by endpoint (every attempt counts), and the JSON bytes sent and received. */
  requestStats(): RequestStats {
    return this.stats.snapshot();
  }

  async close(): Promise<void> {
    // Connections belong to Node's shared fetch pool, which closes idle ones by itself.
  }

  private async call<T>(endpoint: string, req: unknown, opts: CallOptions = {}): Promise<T> {
    const body = JSON.stringify(req);
    const bytes = Buffer.byteLength(body);
    for (let attempt = 1; ; attempt++) {
      opts.signal?.throwIfAborted();
      this.stats.request(endpoint);
      this.stats.up(bytes);
      const timeout = AbortSignal.timeout(this.timeoutMs);
      const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
      let status: number;
      let text: string;
      let retryAfter: string | null = null;
      try {
        const res = await fetch(`${this.url}/api/v1/${endpoint}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: this.#authorization },
          body,
          signal,
        });
        const raw = Buffer.from(await res.arrayBuffer());
        this.stats.down(raw.length);
        status = res.status;
        text = raw.toString('utf8');
        retryAfter = res.headers.get('retry-after');
      } catch (e) {
        if (opts.signal?.aborted) throw opts.signal.reason;
        if (timeout.aborted) {
          throw new SyncError('ServerUnreachable', `the sync server at ${this.url} did not answer ${endpoint} within ${Math.round(this.timeoutMs / 1000)} s; try again later`, { cause: e });
        }
        const code = networkCode(e);
        if (attempt < this.attempts && RETRY_NETWORK_CODES.has(code)) {
          await this.backoff(attempt, opts.signal);
          continue;
        }
        throw new SyncError('ServerUnreachable', `cannot reach the sync server at ${this.url} (${code}, ${attempt} attempt${attempt === 1 ? '' : 's'}): check that \`offsite serve\` runs there and that the URL is its address`, { cause: e });
      }
      if (status >= 200 && status < 300) return parseResult<T>(text, this.url, endpoint);
      const err = parseError(text);
      // A gateway answer: the server's storage is down (503), or a proxy in front cannot reach
      // the server. A definitive storage error (502 with its code, e.g. AccessDenied) is not retried.
      const retry = status === 503 || status === 504 || (status === 502 && (err === undefined || err.code === 'Transient'));
      if (retry && attempt < this.attempts) {
        await this.backoff(attempt, opts.signal, retryAfterMs(retryAfter));
        continue;
      }
      throw this.errorFor(endpoint, status, err, attempt);
    }
  }

  private errorFor(endpoint: string, status: number, err: { code: string; message: string; key?: string } | undefined, attempts: number): Error {
    if (status === 401) {
      return new SyncError('Unauthorized', `the sync server at ${this.url} refused the token: set ${SYNC_TOKEN_ENV} to the token of \`offsite serve\` (in its token file) or to your account token`);
    }
    if (status === 403) {
      // A valid token, for another account: an account token reaches only its own.
      return new SyncError('Forbidden', `the sync server at ${this.url} refused this request with this token: ${err?.message ?? 'forbidden'}`);
    }
    if (err && Object.hasOwn(STORAGE_CODES, err.code)) {
      const message = `the sync server at ${this.url} could not use its storage${attempts > 1 ? ` (${attempts} attempts)` : ''}: ${err.message.replace(/^the server's storage: /, '')}`;
      return new StorageError(err.code as StorageErrorCode, message, { status });
    }
    if (err && status !== 404 && status < 500 && /^[A-Z][A-Za-z]{1,40}$/.test(err.code)) {
      return new SyncError(err.code as SyncErrorCode, err.message, err.key === undefined ? {} : { key: err.key });
    }
    if (status === 502 || status === 503 || status === 504) {
      return new SyncError('ServerUnreachable', `the sync server at ${this.url} answered HTTP ${status} to ${attempts} attempt${attempts === 1 ? '' : 's'} (a proxy in front of it cannot reach it?); try again later`);
    }
    if (status === 404) {
      return new SyncError('BadRequest', `the server at ${this.url} has no endpoint /api/v1/${endpoint}: is it \`offsite serve\` of the same Offsite version, and the URL its address?`);
    }
    return new SyncError(status < 500 ? 'BadRequest' : 'ServerError', `the sync server at ${this.url} failed ${endpoint} with HTTP ${status}${err ? `: ${err.message}` : ''}`);
  }

  private async backoff(attempt: number, signal: AbortSignal | undefined, atLeastMs = 0): Promise<void> {
    const ms = Math.max(atLeastMs, this.retryDelayMs * 2 ** (attempt - 1) * (0.75 + Math.random() / 2));
    await new Promise<void>((resolve, reject) => {
      const done = () => {
        signal?.removeEventListener('abort', aborted);
        resolve();
      };
      const timer = setTimeout(done, ms);
      const aborted = () => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', aborted, { once: true });
    });
    signal?.throwIfAborted();
  }
}

/** A server's Retry-After in seconds, as milliseconds, at most 10 s (a longer wait is the caller's to choose). */
function retryAfterMs(header: string | null): number {
  const seconds = header !== null && /^\d{1,4}$/.test(header) ? Number(header) : 0;
  return Math.min(seconds, 10) * 1000;
}

/** http(s)://host[:port][/path] without a trailing slash; credentials and queries are refused. */
function baseUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new StorageError('InvalidUrl', 'the sync server URL is not a well-formed URL (e.g. http://127.0.0.1:8787)');
  }
  const shown = `${u.protocol}//${u.host}${u.pathname}`;
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new StorageError('InvalidUrl', `${shown}: a sync server URL starts with http:// or https://`, { key: shown });
  if (u.username || u.password) {
    throw new StorageError('InvalidUrl', `${shown}: a sync server URL carries no credentials; the token goes in ${SYNC_TOKEN_ENV}`, { key: shown });
  }
  if (u.search || u.hash) throw new StorageError('InvalidUrl', `${shown}: a sync server URL takes no query or fragment`, { key: shown });
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
}

/** The errno-style code of a failed fetch (undici wraps it in `cause`). */
function networkCode(e: unknown): string {
  for (let c: unknown = e, depth = 0; c && depth < 4; c = (c as { cause?: unknown }).cause, depth++) {
    const code = (c as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return (e as Error)?.message ?? 'unknown error';
}

function parseResult<T>(text: string, url: string, endpoint: string): T {
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as T;
  } catch {
    // below
  }
  throw new SyncError('ServerError', `the sync server at ${url} answered ${endpoint} with something that is not a JSON object: is it \`offsite serve\`?`);
}

function parseError(text: string): { code: string; message: string; key?: string } | undefined {
  try {
    const v = JSON.parse(text) as { code?: unknown; message?: unknown; key?: unknown };
    if (typeof v?.code !== 'string' || typeof v.message !== 'string') return undefined;
    return { code: v.code, message: v.message.slice(0, MAX_MESSAGE), ...(typeof v.key === 'string' ? { key: v.key.slice(0, MAX_MESSAGE) } : {}) };
  } catch {
    return undefined;
  }
}
