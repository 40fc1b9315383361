// A Storage that counts what S3 would bill, over a real one (the local adapter), with a
// simulated clock as every object's LastModified.
//
// Why the time is simulated: the sync-cost scenario replays a 10-hour day of 5 devices (1,000
// commands, a pull every 5 minutes each) in seconds. The sync client's read cursor is built
// from the store's own timestamps (src/sync/clock.ts: the next listing starts at the newest
// LastModified minus a 121 s lookback), and a device calibrates its clock against the
// LastModified of what it wrote. If the store stamped objects with the real time while the
// devices' clocks ran on the simulated day, the cursor would jump hours ahead of the batch
// times and the clock calibration would see a drift of hours. So each successful put records
// the simulated time (whole seconds, as S3 reports it) and head/get/list report that instead of
// the file's mtime. Everything else (conditional writes, listing order, startAfter, NotFound)
// is the real local adapter's behaviour.
//
// Request classes, as AWS bills S3 Standard (docs/bench.md has the prices):
//   PUT     put (every attempt, a failed conditional put included)
//   GET     get, head, getTags
//   LIST    list: one request per page of up to 1,000 keys, as ListObjectsV2 pages
//   DELETE  delete (one DeleteObject); deleteMany (one DeleteObjects per 1,000 keys). Counted
//           although AWS does not bill DELETE requests.
// Bytes: up, the keys and bodies put; down, the bodies got plus the keys a listing returns (a
// small sync batch travels in its key; headers and the XML around the keys are not counted).
// Stored bytes count keys too (S3 bills an object's key name as storage).
import type {
  Capabilities,
  GetOptions,
  GetResult,
  ListEntry,
  ListOptions,
  ObjectInfo,
  PutBody,
  PutOptions,
  PutResult,
  RequestStats,
  SignalOption,
  Storage,
} from '../../src/storage/index.js';

export type RequestClass = 'PUT' | 'GET' | 'LIST' | 'DELETE';
export const REQUEST_CLASSES: readonly RequestClass[] = ['PUT', 'GET', 'LIST', 'DELETE'];

const CLASS_OF: Record<string, RequestClass> = {
  PutObject: 'PUT',
  GetObject: 'GET',
  HeadObject: 'GET',
  GetObjectTagging: 'GET',
  ListObjectsV2: 'LIST',
  DeleteObject: 'DELETE',
  DeleteObjects: 'DELETE',
};

/** Requests by billing class, and bytes (bodies; keys of listings down). */
export interface Tally {
  PUT: number;
  GET: number;
  LIST: number;
  DELETE: number;
  total: number;
  bytesUp: number;
  bytesDown: number;
}

export const emptyTally = (): Tally => ({ PUT: 0, GET: 0, LIST: 0, DELETE: 0, total: 0, bytesUp: 0, bytesDown: 0 });

export function addTallies(...ts: Tally[]): Tally {
  const out = emptyTally();
  for (const t of ts) for (const k of Object.keys(out) as (keyof Tally)[]) out[k] += t[k];
  return out;
}

export function subtractTally(a: Tally, b: Tally): Tally {
  const out = emptyTally();
  for (const k of Object.keys(out) as (keyof Tally)[]) out[k] = a[k] - b[k];
  return out;
}

/** The simulated time as S3 would stamp it: whole seconds. */
const storeTime = (ms: number) => Math.floor(ms / 1000) * 1000;
const S3_LIST_PAGE = 1000;
const S3_DELETE_BATCH = 1000;

/**
 * One bucket (a directory through the local adapter) and the simulated clock. Hand out one
 * counting view per device with view(); they share the objects and their simulated times.
 */
export class SimulatedBucket {
  /** Key -> simulated LastModified (ms) of the object's last successful put. */
  readonly times = new Map<string, number>();
  /** Every key written, in order (to tell batches from other objects afterwards). */
  readonly written: string[] = [];

  constructor(
    readonly inner: Storage,
    readonly clock: () => number,
  ) {}

  view(): CountingStorage {
    return new CountingStorage(this);
  }

  /** What is stored now (not counted: a look at the bucket, not a client's request). */
  async stored(): Promise<{ objects: number; bytes: number }> {
    let objects = 0;
    let bytes = 0;
    for await (const e of this.inner.list({})) {
      if (e.type !== 'object') continue;
      objects++;
      bytes += e.size + Buffer.byteLength(e.key);
    }
    return { objects, bytes };
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

export class CountingStorage implements Storage {
  private readonly byOperation = new Map<string, number>();
  private bytesUp = 0;
  private bytesDown = 0;

  constructor(private readonly bucket: SimulatedBucket) {}

  get url(): string {
    return this.bucket.inner.url;
  }

  get capabilities(): Capabilities {
    return this.bucket.inner.capabilities;
  }

  private count(operation: string, n = 1): void {
    this.byOperation.set(operation, (this.byOperation.get(operation) ?? 0) + n);
  }

  private simulated<T extends { key: string; lastModified: Date }>(info: T): T {
    const t = this.bucket.times.get(info.key);
    return t === undefined ? info : { ...info, lastModified: new Date(t) };
  }

  async put(key: string, body: PutBody, opts?: PutOptions): Promise<PutResult> {
    this.count('PutObject'); // billed whether or not a condition fails
    const result = await this.bucket.inner.put(key, body, opts);
    this.bucket.times.set(key, storeTime(this.bucket.clock()));
    this.bucket.written.push(key);
    this.bytesUp += result.size + Buffer.byteLength(key);
    return result;
  }

  async get(key: string, opts?: GetOptions): Promise<GetResult> {
    this.count('GetObject');
    const { body, info } = await this.bucket.inner.get(key, opts);
    const start = opts?.range?.start ?? 0;
    const end = Math.min(opts?.range?.end ?? info.size - 1, info.size - 1);
    this.bytesDown += Math.max(0, end - start + 1);
    return { body, info: this.simulated(info) };
  }

  async head(key: string, opts?: SignalOption): Promise<ObjectInfo> {
    this.count('HeadObject');
    return this.simulated(await this.bucket.inner.head(key, opts));
  }

  async *list(opts?: ListOptions): AsyncIterable<ListEntry> {
    this.count('ListObjectsV2');
    let n = 0;
    for await (const entry of this.bucket.inner.list(opts)) {
      // S3 returns at most 1,000 keys and common prefixes per page: the 1,001st needs another request.
      if (n > 0 && n % S3_LIST_PAGE === 0) this.count('ListObjectsV2');
      n++;
      this.bytesDown += Buffer.byteLength(entry.type === 'object' ? entry.key : entry.prefix);
      yield entry.type === 'object' ? this.simulated(entry) : entry;
    }
  }

  async delete(key: string, opts?: SignalOption): Promise<void> {
    this.count('DeleteObject');
    await this.bucket.inner.delete(key, opts);
    this.bucket.times.delete(key);
  }

  async deleteMany(keys: Iterable<string> | AsyncIterable<string>, opts?: SignalOption): Promise<{ deleted: number }> {
    const all: string[] = [];
    for await (const k of keys) all.push(k);
    if (all.length === 0) return { deleted: 0 };
    this.count('DeleteObjects', Math.ceil(all.length / S3_DELETE_BATCH));
    const result = await this.bucket.inner.deleteMany(all, opts);
    for (const k of all) this.bucket.times.delete(k);
    return result;
  }

  async getTags(key: string, opts?: SignalOption): Promise<Record<string, string>> {
    this.count('GetObjectTagging');
    return this.bucket.inner.getTags(key, opts);
  }

  stats(): RequestStats {
    const requests = Object.fromEntries([...this.byOperation].sort(([a], [b]) => a.localeCompare(b)));
    const totalRequests = [...this.byOperation.values()].reduce((a, b) => a + b, 0);
    return { requests, totalRequests, bytesUp: this.bytesUp, bytesDown: this.bytesDown };
  }

  /** The requests so far by billing class. */
  tally(): Tally {
    const t = emptyTally();
    for (const [op, n] of this.byOperation) {
      const cls = CLASS_OF[op];
      if (!cls) throw new Error(`counting storage: no billing class for ${op}`);
      t[cls] += n;
      t.total += n;
    }
    t.bytesUp = this.bytesUp;
    t.bytesDown = this.bytesDown;
    return t;
  }

  /** The bucket is closed by its owner (SimulatedBucket.close), not by each device. */
  async close(): Promise<void> {}
}
