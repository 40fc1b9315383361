import type { Readable } from 'node:stream';
import type { RequestStats } from './stats.js';

/**
 * The one storage interface: a bucket-like key/value store of immutable objects.
 *
 * Keys are UTF-8 strings of at most 1024 bytes; "/" has no special meaning except as a listing
 * delimiter. ETags are returned without quotes. Every method that does I/O takes an optional
 * AbortSignal; an aborted call rejects with the signal's reason and leaves no partial object.
 *
 * Errors: every failure is a StorageError (see errors.ts) with a stable `code`. Adapters
 * classify at their edge; callers never see raw SDK or fs errors. Transient failures are retried
 * inside the adapter (bounded, exponential backoff with jitter) before TransientError escapes;
 * permanent failures (4xx) are never retried.
 */
export interface Storage {
  /** Human-readable location (URL form, without secrets), for messages. */
  readonly url: string;
  /** What this adapter can do beyond the core operations. */
  readonly capabilities: Capabilities;

  /**
   * Store `body` at `key`, replacing any object there (unless a condition says otherwise).
   * Resolves only after the store confirmed the whole object. A stream body is consumed once and
   * never buffered whole: large bodies go up in parts of bounded size and concurrency.
   * - `ifNoneMatch: '*'`: succeed only if no object exists at `key`, else PreconditionFailed.
   * - `ifMatch: etag`: succeed only if the current object has that ETag (and exists), else
   *   PreconditionFailed. Of several concurrent conditional writers, at most one succeeds.
   */
  put(key: string, body: PutBody, opts?: PutOptions): Promise<PutResult>;

  /**
   * Open `key` for reading. Throws NotFound, or ArchivedObject for an object in a cold class that
   * was not restored. The returned stream emits exactly the stored bytes (or the requested range).
   */
  get(key: string, opts?: GetOptions): Promise<GetResult>;

  /** Object information without its data. Throws NotFound. */
  head(key: string, opts?: SignalOption): Promise<ObjectInfo>;

  /**
   * List objects whose keys start with `prefix`, in ascending UTF-8 byte order, each key exactly
   * once. With `delimiter`, keys that contain it after the prefix are rolled up into one
   * `{ prefix }` entry per distinct common prefix. `startAfter` skips keys <= it. Pages are
   * fetched lazily as the iterator is consumed.
   */
  list(opts?: ListOptions): AsyncIterable<ListEntry>;

  /** Delete one object. Deleting a missing key succeeds (as on S3). */
  delete(key: string, opts?: SignalOption): Promise<void>;

  /** Delete many objects (in batches of up to 1000 on S3). Missing keys are not errors. */
  deleteMany(keys: Iterable<string> | AsyncIterable<string>, opts?: SignalOption): Promise<{ deleted: number }>;

  /** The tags of an object (a separate request on S3). Throws NotFound. */
  getTags(key: string, opts?: SignalOption): Promise<Record<string, string>>;

  /** Request counts by operation and bytes moved since this instance was created. */
  stats(): RequestStats;

  /** Optional: ask the store to restore an archived (Glacier-class) object. See capabilities. */
  restoreArchived?(key: string, opts: RestoreOptions): Promise<'started' | 'in-progress' | 'already-restored'>;

  /**
   * Optional: abort the unfinished multipart uploads of keys starting with `keyPrefix` (left by
   * a killed process; their parts are billed until aborted). Returns the aborted upload ids.
   */
  abortMultipartUploads?(keyPrefix: string, opts?: SignalOption): Promise<string[]>;

  /** Optional: a presigned URL for GET or PUT without credentials. See capabilities. */
  presign?(key: string, opts: PresignOptions): Promise<string>;

  /** Release sockets and file handles. */
  close(): Promise<void>;
}

export interface Capabilities {
  /** restoreArchived() is implemented. */
  restoreArchived: boolean;
  /** presign() is implemented. */
  presign: boolean;
  /** Storage classes other than STANDARD are meaningful (cold classes need a restore). */
  storageClasses: boolean;
  /** How many parallel requests suit this store. */
  connections: number;
}

export type PutBody = Readable | Uint8Array | string;

export interface SignalOption {
  signal?: AbortSignal;
}

export interface PutOptions extends SignalOption {
  /** User metadata: ASCII keys (lower-cased), string values. Round-trips through head()/get(). */
  metadata?: Record<string, string>;
  tags?: Record<string, string>;
  /** STANDARD, STANDARD_IA, GLACIER, DEEP_ARCHIVE, ... */
  storageClass?: string;
  contentType?: string;
  ifNoneMatch?: '*';
  ifMatch?: string;
  /** Called with the running count of body bytes handed to the store. */
  onProgress?: (bytesSent: number) => void;
  /**
   * S3: called with the upload id when a multipart upload starts, so a caller can record it
   * and abort or inspect it after a crash (abortMultipartUploads). Not called for single PUTs.
   */
  onMultipartStart?: (uploadId: string) => void;
  /**
   * How many bytes a stream body is expected to hold, a generous estimate. S3 allows at most
   * 10,000 parts, so without it a stream can grow to 10,000 x partSize (78 GiB at the default
   * 8 MiB); with it the parts are made large enough. Ignored for Buffers and strings.
   */
  sizeHint?: number;
}

export interface PutResult {
  key: string;
  etag: string;
  size: number;
  versionId?: string;
}

export interface GetOptions extends SignalOption {
  /** Inclusive byte range; `end` omitted = to the end. */
  range?: { start: number; end?: number };
  /** Only return the object if its ETag still matches, else PreconditionFailed. */
  ifMatch?: string;
}

export interface GetResult {
  body: Readable;
  info: ObjectInfo;
}

export interface ObjectInfo {
  key: string;
  size: number;
  etag: string;
  lastModified: Date;
  storageClass: string;
  metadata: Record<string, string>;
  contentType?: string;
  versionId?: string;
  /** For archived objects: the state of a restore, as reported by the store. */
  restore?: { ongoing: boolean; expiry?: Date };
}

export interface ListOptions extends SignalOption {
  prefix?: string;
  delimiter?: string;
  startAfter?: string;
}

export type ListEntry =
  | { type: 'object'; key: string; size: number; etag: string; lastModified: Date; storageClass: string }
  | { type: 'prefix'; prefix: string };

export interface RestoreOptions extends SignalOption {
  days: number;
  tier?: 'Standard' | 'Bulk' | 'Expedited';
}

export interface PresignOptions {
  method: 'GET' | 'PUT';
  /** Seconds the URL stays valid. */
  expiresIn: number;
}

/** Storage classes that need a restore before their data can be read. */
export const ARCHIVE_STORAGE_CLASSES: ReadonlySet<string> = new Set(['GLACIER', 'DEEP_ARCHIVE']);
