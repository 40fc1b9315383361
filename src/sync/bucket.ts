// The bucket backend: the SyncBackend over any Storage (a local directory or an S3 bucket),
// with no server. Each device writes only its own keys, every write-once key is created with
// ifNoneMatch '*', and the one shared object (the compaction lease) changes only by ifMatch on
// the ETag just read. Key layout: bucket-keys.ts (a small batch travels in its key, so the
// listing a pull makes anyway delivers it: no GET). Why a reader never misses a batch: clock.ts
// and docs/sync.md.
import { performance } from 'node:perf_hooks';
import { isStorageError, objectExists, type ListEntry, type RequestStats, type Storage } from '../storage/index.js';
import {
  assertId,
  assertPosition,
  batchId,
  batchLogName,
  cursorsPrefix,
  devicesPrefix,
  formatCursor,
  keyCheckKey,
  leaseKey,
  logPrefix,
  parseBatchId,
  parseCursor,
  parseGeneration,
  parseLogName,
  snapshotCoversKey,
  snapshotKey,
  snapshotsPrefix,
  startAfterForBatch,
  startAfterForFloor,
} from './bucket-keys.js';
import { LIST_LOOKBACK_MS, MAX_CLOCK_SKEW_MS } from './clock.js';
import { SyncError } from './errors.js';
import type {
  AddDeletionRequest,
  BatchPosition,
  BootstrapRequest,
  BootstrapResult,
  CallOptions,
  CollectGarbageRequest,
  CollectGarbageResult,
  DeletionRequestsResult,
  DeviceListing,
  DeviceRef,
  GetDeletionRequestsRequest,
  HeldBatch,
  LeaseName,
  LeaseRequest,
  LeaseResult,
  PingResult,
  PublishCursorRequest,
  PutSnapshotRequest,
  QueryRequest,
  QueryResult,
  RegisterDeviceRequest,
  RegisterDeviceResult,
  RegisteredDevice,
  ReleaseLeaseRequest,
  SealedBatch,
  StoredBatch,
  SubmitRequest,
  SubmitResult,
  SyncBackend,
  UserRef,
} from './types.js';

/** Batches fetched in parallel by one query (small objects: latency, not bandwidth, bounds it). */
const GET_CONCURRENCY = 8;
/** Conditional-write attempts on the lease before giving up for this round. */
const LEASE_ATTEMPTS = 4;
/** How many of the caller's own batch timings a query reports for clock calibration. */
const OWN_TIMINGS = 8;
/** The leases there are (a lease name becomes part of a key). */
const LEASE_NAMES: ReadonlySet<string> = new Set<LeaseName>(['compaction']);
const EMPTY = Buffer.alloc(0);
/** S3's limit on a key, in bytes, storage prefix included. */
const MAX_KEY_BYTES = 1024;

/**
 * The bytes the storage puts before every key (an S3 URL's prefix): they count against S3's
 * limit, which the storage layer checks without them. The Storage interface does not expose it;
 * the S3 adapter has it as `prefix`, the local adapter has none.
 */
function storagePrefixBytes(storage: Storage): number {
  const prefix = (storage as { prefix?: unknown }).prefix;
  return typeof prefix === 'string' ? Buffer.byteLength(prefix) : 0;
}

/** A batch found by a listing: carried in its key (`inline`), or to be fetched from `key`. */
interface ListedBatch {
  id: string;
  position: BatchPosition;
  key: string;
  storedAt: Date;
  inline?: Buffer;
}

interface LeaseBody {
  holder: string;
  expiresAt: string;
  released?: boolean;
}

export class BucketBackend implements SyncBackend {
  readonly type = 'bucket' as const;
  /** The key bytes left after the storage prefix. */
  private readonly keyBudget: number;

  constructor(private readonly storage: Storage) {
    this.keyBudget = MAX_KEY_BYTES - storagePrefixBytes(storage);
  }

  async ping(opts: CallOptions = {}): Promise<PingResult> {
    // A HEAD of a key that never exists: one cheap request that proves credentials and bucket.
    try {
      await this.storage.head('users/.ping', opts);
    } catch (e) {
      if (!isStorageError(e, 'NotFound')) throw e;
    }
    return { ok: true, type: this.type, location: this.storage.url };
  }

  async registerDevice(req: RegisterDeviceRequest, opts: CallOptions = {}): Promise<RegisterDeviceResult> {
    checkDevice(req);
    if (req.keyCheck !== undefined) {
      const key = keyCheckKey(req.userId);
      // The same bytes again: this init's own write, retried after a lost response.
      await this.putOnce(key, decode(req.keyCheck), undefined, opts, (cause) => new SyncError('Conflict', `an account for this secret already exists at ${this.storage.url}; join it instead of initialising it again`, { key, cause }));
    }
    const key = `${devicesPrefix(req.userId)}${req.deviceId}`;
    let alreadyRegistered = false;
    try {
      await this.storage.put(key, decode(req.device), { ifNoneMatch: '*', ...opts });
    } catch (e) {
      if (!isStorageError(e, 'PreconditionFailed')) throw e;
      alreadyRegistered = true;
    }
    // The store's own timestamp of the record just written: the device calibrates its clock by it.
    const info = await this.storage.head(key, opts);
    return { alreadyRegistered, serverTime: info.lastModified.toISOString() };
  }

  async submitEntries(req: SubmitRequest, opts: CallOptions = {}): Promise<SubmitResult> {
    checkDevice(req);
    const stored: { id: string }[] = [];
    for (const batch of req.batches) {
      if (batch.kind !== 'entries') throw new SyncError('InvalidEntry', 'submitEntries takes batches of kind "entries"; deletions go through addDeletionRequest');
      stored.push(await this.putBatch(req, batch, opts));
    }
    return { stored };
  }

  async addDeletionRequest(req: AddDeletionRequest, opts: CallOptions = {}): Promise<SubmitResult> {
    checkDevice(req);
    if (req.batch.kind !== 'deletions') throw new SyncError('InvalidEntry', 'addDeletionRequest takes a batch of kind "deletions"');
    return { stored: [await this.putBatch(req, req.batch, opts)] };
  }

  /**
   * Writes a batch once, at its position. A retry of the same bytes (a response lost, the
   * request retried by the storage layer or the HTTP client) succeeds, in either form:
   * - a body batch (log/{id}): created with ifNoneMatch '*'; on PreconditionFailed the stored
   *   bytes are read and compared, and other bytes are a Conflict;
   * - an inline batch (log/{id}/i/{data}, empty body): created with ifNoneMatch '*' on a key
   *   that is its bytes, so a PreconditionFailed means these very bytes are stored: success,
   *   with no read.
   * Other bytes at an inline batch's position would be another key, which no conditional PUT
   * sees; they are not looked for. Finding them would take a LIST of log/{id} on every push:
   * billed like a PUT, that costs more than all the GETs the inline form saves. Only two
   * processes writing as one device (a copied state directory) can write a position twice, and
   * only within the same millisecond (the writer seals every attempt at a fresh time), which the
   * body form never caught either when the times differ. Readers stay safe: every copy is
   * authenticated against the position, and one copy per batch id is returned (the first listed).
   */
  private async putBatch(req: DeviceRef, batch: SealedBatch, opts: CallOptions): Promise<{ id: string }> {
    assertPosition(batch);
    if (batch.deviceId !== req.deviceId) throw new SyncError('InvalidEntry', `device ${req.deviceId} cannot write into the log of device ${batch.deviceId}`);
    const id = batchId(batch);
    const body = decode(batch.data);
    // A long storage prefix leaves no room for the bytes in the key: the body form then.
    const name = batchLogName(batch, body, this.keyBudget - Buffer.byteLength(logPrefix(req.userId)));
    const key = `${logPrefix(req.userId)}${name}`;
    const conflict = (cause: unknown) =>
      new SyncError('Conflict', `batch ${batch.seq} of device ${batch.deviceId} already exists with other contents: two processes are writing as one device (never copy a sync state directory; join each device)`, { key, cause });
    if (name === id) {
      await this.putOnce(key, body, 'application/octet-stream', opts, conflict);
      return { id };
    }
    try {
      await this.storage.put(key, EMPTY, { ifNoneMatch: '*', contentType: 'application/octet-stream', ...opts });
    } catch (e) {
      if (isStorageError(e, 'PreconditionFailed')) return { id }; // the key is the bytes: stored already
      if (!isStorageError(e, 'InvalidKey')) throw e;
      const bodyKey = `${logPrefix(req.userId)}${id}`;
      // The local adapter cannot hold log/{id}/... beside an object log/{id}: a body batch is there.
      if (await objectExists(this.storage, bodyKey, opts)) throw conflict(e);
      // A key this storage refuses (a file system's own limits): the body form takes no bytes in the key.
      await this.putOnce(bodyKey, body, 'application/octet-stream', opts, conflict);
    }
    return { id };
  }

  /** Creates `key` once; the same bytes already there are a retried request (success), other bytes `conflict`. */
  private async putOnce(key: string, body: Buffer, contentType: string | undefined, opts: CallOptions, conflict: (cause: unknown) => SyncError): Promise<void> {
    try {
      await this.storage.put(key, body, { ifNoneMatch: '*', ...(contentType === undefined ? {} : { contentType }), ...opts });
    } catch (e) {
      if (!isStorageError(e, 'PreconditionFailed')) throw e;
      const existing = await this.readObject(key, opts);
      if (!existing?.equals(body)) throw conflict(e);
    }
  }

  async queryEntries(req: QueryRequest, opts: CallOptions = {}): Promise<QueryResult> {
    checkDevice(req);
    const prefix = logPrefix(req.userId);
    let floor = 0;
    let startAfter: string | undefined;
    if (req.afterBatchId !== undefined) {
      if (!parseBatchId(req.afterBatchId)) throw new SyncError('UnsupportedSyncFormat', `"${req.afterBatchId}" is not a batch id of this backend`);
      startAfter = startAfterForBatch(req.userId, req.afterBatchId);
    } else {
      floor = parseCursor(req.cursor);
      startAfter = startAfterForFloor(req.userId, floor);
    }
    const started = performance.now();
    let newestStoredAt = Number.NEGATIVE_INFINITY;
    const wanted: ListedBatch[] = [];
    const held: HeldBatch[] = [];
    const seen = new Set<string>();
    const ownTimings: QueryResult['ownTimings'] = [];
    for await (const item of this.storage.list({ prefix, ...(startAfter === undefined ? {} : { startAfter }), ...opts })) {
      const listed = listedBatch(prefix, item);
      if (!listed) continue; // not ours (a stray upload): nothing a reader could import
      const { position } = listed;
      newestStoredAt = Math.max(newestStoredAt, listed.storedAt.getTime());
      if (position.deviceId === req.deviceId) ownTimings.push({ time: position.time, storedAt: listed.storedAt.toISOString() });
      if (seen.has(listed.id)) continue;
      seen.add(listed.id);
      if (position.seq <= (req.known[position.deviceId] ?? 0)) {
        // Not fetched: the reader holds this position. Listed, so it can tell a copy it has not seen.
        held.push({ ...position, id: listed.id, storedAt: listed.storedAt.toISOString(), ...(listed.inline ? { data: listed.inline.toString('base64') } : {}) });
        continue;
      }
      wanted.push(listed);
    }
    // The listing began no earlier than `newest - elapsed` on the store's clock. Any batch not
    // in it became visible later, so its time is above that minus the skew and delay bounds.
    const elapsed = performance.now() - started;
    const nextFloor = Number.isFinite(newestStoredAt) ? Math.max(floor, Math.floor(newestStoredAt - elapsed - LIST_LOOKBACK_MS)) : floor;
    const batches = await this.fetchBatches(wanted, opts);
    return { batches, held, cursor: formatCursor(nextFloor), ownTimings: ownTimings.slice(-OWN_TIMINGS) };
  }

  async getDeletionRequests(req: GetDeletionRequestsRequest, opts: CallOptions = {}): Promise<DeletionRequestsResult> {
    checkDevice(req);
    const prefix = logPrefix(req.userId);
    const wanted: ListedBatch[] = [];
    const seen = new Set<string>();
    for await (const item of this.storage.list({ prefix, ...opts })) {
      const listed = listedBatch(prefix, item);
      if (listed?.position.kind !== 'deletions' || listed.position.seq <= (req.known?.[listed.position.deviceId] ?? 0) || seen.has(listed.id)) continue;
      seen.add(listed.id);
      wanted.push(listed);
    }
    return { requests: await this.fetchBatches(wanted, opts) };
  }

  /** The listed batches with their bytes: inline ones as listed, the others by one GET each. */
  private async fetchBatches(wanted: ListedBatch[], opts: CallOptions): Promise<StoredBatch[]> {
    const fetched = await mapConcurrently(wanted, GET_CONCURRENCY, async (w) => {
      const data = w.inline ?? (await this.readObject(w.key, opts));
      // Gone between the listing and the GET (collected): the reader sees a gap if it mattered.
      return data && { ...w.position, id: w.id, storedAt: w.storedAt.toISOString(), data: data.toString('base64') };
    });
    return fetched.filter((b): b is StoredBatch => b !== undefined);
  }

  async bootstrap(req: BootstrapRequest, opts: CallOptions = {}): Promise<BootstrapResult> {
    checkDevice(req);
    const keyCheck = req.keyCheck ? await this.readObject(keyCheckKey(req.userId), opts) : undefined;
    // A snapshot can be collected between the listing and the GET when a newer one lands: list again.
    for (let attempt = 0; ; attempt++) {
      const latestGeneration = await this.latestGeneration(req.userId, opts);
      if (latestGeneration === 0 || latestGeneration <= (req.newerThan ?? 0)) {
        return { keyCheck: keyCheck?.toString('base64') ?? null, snapshot: null, latestGeneration };
      }
      const key = snapshotKey(req.userId, latestGeneration);
      const got = await this.readObjectWithInfo(key, opts);
      if (got) {
        return {
          keyCheck: keyCheck?.toString('base64') ?? null,
          snapshot: { generation: latestGeneration, data: got.body.toString('base64'), storedAt: got.lastModified.toISOString() },
          latestGeneration,
        };
      }
      if (attempt >= 2) throw new SyncError('MissingBatch', `snapshot ${key} disappeared while being read, three times; try again`, { key });
    }
  }

  private async latestGeneration(userId: string, opts: CallOptions): Promise<number> {
    const prefix = snapshotsPrefix(userId);
    let latest = 0;
    for await (const item of this.storage.list({ prefix, ...opts })) {
      if (item.type !== 'object') continue;
      latest = Math.max(latest, parseGeneration(item.key.slice(prefix.length)) ?? 0);
    }
    return latest;
  }

  async uninstall(req: DeviceRef, opts: CallOptions = {}): Promise<void> {
    checkDevice(req);
    await this.storage.deleteMany([`${devicesPrefix(req.userId)}${req.deviceId}`, `${cursorsPrefix(req.userId)}${req.deviceId}`], opts);
  }

  async listDevices(req: UserRef, opts: CallOptions = {}): Promise<DeviceListing> {
    assertId(req.userId, 'user id');
    const byId = new Map<string, RegisteredDevice>();
    const entry = (deviceId: string) => {
      let d = byId.get(deviceId);
      if (!d) byId.set(deviceId, (d = { deviceId, record: null, registeredAt: null, cursor: null, cursorAt: null }));
      return d;
    };
    const reads: { key: string; apply: (data: string, at: string) => void }[] = [];
    for (const [prefix, isCursor] of [
      [devicesPrefix(req.userId), false],
      [cursorsPrefix(req.userId), true],
    ] as const) {
      for await (const item of this.storage.list({ prefix, ...opts })) {
        if (item.type !== 'object') continue;
        const device = entry(item.key.slice(prefix.length));
        reads.push({
          key: item.key,
          apply: (data, at) => {
            if (isCursor) Object.assign(device, { cursor: data, cursorAt: at });
            else Object.assign(device, { record: data, registeredAt: at });
          },
        });
      }
    }
    await mapConcurrently(reads, GET_CONCURRENCY, async (r) => {
      const got = await this.readObjectWithInfo(r.key, opts);
      if (got) r.apply(got.body.toString('base64'), got.lastModified.toISOString());
    });
    return { devices: [...byId.values()].filter((d) => d.record !== null || d.cursor !== null) };
  }

  async publishCursor(req: PublishCursorRequest, opts: CallOptions = {}): Promise<void> {
    checkDevice(req);
    // Only this device writes its cursor: a plain overwrite, no read, so no lost update.
    await this.storage.put(`${cursorsPrefix(req.userId)}${req.deviceId}`, decode(req.cursor), opts);
  }

  async acquireLease(req: LeaseRequest, opts: CallOptions = {}): Promise<LeaseResult> {
    checkDevice(req);
    checkLeaseName(req.name);
    const key = leaseKey(req.userId, req.name);
    const expiresAt = new Date(req.now + req.ttlMs).toISOString();
    const body = JSON.stringify({ holder: req.deviceId, expiresAt } satisfies LeaseBody);
    let last: LeaseBody | undefined;
    for (let attempt = 0; attempt < LEASE_ATTEMPTS; attempt++) {
      try {
        const put = await this.storage.put(key, body, { ifNoneMatch: '*', contentType: 'application/json', ...opts });
        return { acquired: true, token: put.etag, expiresAt, tookOver: false };
      } catch (e) {
        if (!isStorageError(e, 'PreconditionFailed')) throw e;
      }
      const current = await this.readObjectWithInfo(key, opts);
      if (!current) continue; // deleted in between: try to create it again
      last = parseLease(current.body);
      // Expired by the holder's clock, with a margin for the two clocks' skew.
      const expired = !last || last.released === true || Date.parse(last.expiresAt) + MAX_CLOCK_SKEW_MS < req.now;
      if (!expired && last) return { acquired: false, holder: last.holder, expiresAt: last.expiresAt };
      try {
        const put = await this.storage.put(key, body, { ifMatch: current.etag, contentType: 'application/json', ...opts });
        return { acquired: true, token: put.etag, expiresAt, tookOver: last?.released !== true };
      } catch (e) {
        if (!isStorageError(e, 'PreconditionFailed')) throw e; // another device took it first: look again
      }
    }
    return { acquired: false, holder: last?.holder ?? 'unknown', expiresAt: last?.expiresAt ?? expiresAt };
  }

  async releaseLease(req: ReleaseLeaseRequest, opts: CallOptions = {}): Promise<void> {
    checkDevice(req);
    checkLeaseName(req.name);
    const body = JSON.stringify({ holder: req.deviceId, expiresAt: new Date(0).toISOString(), released: true } satisfies LeaseBody);
    try {
      // Only if it is still ours: a lease that expired and was taken over is not touched.
      await this.storage.put(leaseKey(req.userId, req.name), body, { ifMatch: req.token, contentType: 'application/json', ...opts });
    } catch (e) {
      if (!isStorageError(e, 'PreconditionFailed') && !isStorageError(e, 'NotFound')) throw e;
    }
  }

  async putSnapshot(req: PutSnapshotRequest, opts: CallOptions = {}): Promise<void> {
    checkDevice(req);
    if (!Number.isSafeInteger(req.generation) || req.generation < 1) throw new SyncError('InvalidEntry', `snapshot generation ${req.generation} is out of range`);
    const covers = canonicalSeqRecord(req.covers, 'a snapshot’s covers');
    const key = snapshotKey(req.userId, req.generation);
    // The same bytes again: this compactor's own write, retried after a lost response.
    await this.putOnce(key, decode(req.data), 'application/octet-stream', opts, (cause) => new SyncError('Conflict', `snapshot generation ${req.generation} was written by another device first`, { key, cause }));
    // After the snapshot: a crash in between leaves a snapshot that covers nothing (safe: no
    // collection relies on it), never a coverage without its snapshot.
    const coversKey = snapshotCoversKey(req.userId, req.generation);
    await this.putOnce(coversKey, Buffer.from(covers), 'application/json', opts, (cause) => new SyncError('Conflict', `snapshot generation ${req.generation} already records another coverage`, { key: coversKey, cause }));
  }

  /**
   * The caller says what is safe to delete; the backend checks what it can, since the caller
   * may hold only a token (a server's) or only credentials (a bucket's), not the secret:
   * the newest snapshot stays, and every batch deleted is within what the newest snapshot's
   * recorded coverage reaches. That record is the writer's claim in the clear (the backend
   * cannot open a snapshot), so this stops a collection of everything, or one beyond any
   * snapshot, not a writer who also writes a false snapshot.
   */
  async collectGarbage(req: CollectGarbageRequest, opts: CallOptions = {}): Promise<CollectGarbageResult> {
    checkDevice(req);
    const through = JSON.parse(canonicalSeqRecord(req.through, 'collect-garbage through')) as Record<string, number>;
    const snaps = snapshotsPrefix(req.userId);
    const generations: number[] = [];
    for await (const item of this.storage.list({ prefix: snaps, ...opts })) {
      if (item.type !== 'object') continue;
      const generation = parseGeneration(item.key.slice(snaps.length));
      if (generation !== undefined) generations.push(generation);
    }
    const latest = Math.max(0, ...generations);
    if (latest > 0 && req.keepSnapshotsFrom > latest) {
      throw new SyncError('Conflict', `collect-garbage would delete every snapshot, the newest (${latest}) included; nothing was deleted`);
    }
    const collect = Object.entries(through).filter(([, seq]) => seq > 0);
    if (collect.length > 0) {
      const covers = latest > 0 ? await this.readCovers(req.userId, latest, opts) : undefined;
      if (!covers) throw new SyncError('Conflict', `collect-garbage of log batches needs a snapshot that records what it covers, and ${latest > 0 ? `snapshot ${latest} records none` : 'there is no snapshot'}; nothing was deleted (compact first)`);
      const beyond = collect.find(([device, seq]) => seq > (covers[device] ?? 0));
      if (beyond) {
        throw new SyncError('Conflict', `collect-garbage through batch ${beyond[1]} of device ${beyond[0]} goes beyond what the newest snapshot (${latest}) covers (${covers[beyond[0]] ?? 0}); nothing was deleted`);
      }
    }
    const log = logPrefix(req.userId);
    const batches: string[] = [];
    if (collect.length > 0) {
      for await (const item of this.storage.list({ prefix: log, ...opts })) {
        const listed = listedBatch(log, item);
        const limit = listed && through[listed.position.deviceId];
        if (listed && limit !== undefined && listed.position.seq <= limit) batches.push(listed.key);
      }
    }
    const old = generations.filter((g) => g < req.keepSnapshotsFrom);
    const snapshots = old.map((g) => snapshotKey(req.userId, g));
    if (batches.length + snapshots.length > 0) await this.storage.deleteMany([...batches, ...snapshots, ...old.map((g) => snapshotCoversKey(req.userId, g))], opts);
    return { deletedBatches: batches.length, deletedSnapshots: snapshots.length };
  }

  /** A snapshot's recorded coverage; undefined if it has none (written before coverage was recorded). */
  private async readCovers(userId: string, generation: number, opts: CallOptions): Promise<Record<string, number> | undefined> {
    const body = await this.readObject(snapshotCoversKey(userId, generation), opts);
    if (!body) return undefined;
    try {
      return JSON.parse(canonicalSeqRecord(JSON.parse(body.toString('utf8')) as Record<string, number>, 'a recorded coverage')) as Record<string, number>;
    } catch {
      return undefined; // not what putSnapshot writes: it covers nothing
    }
  }

  requestStats(): RequestStats {
    return this.storage.stats();
  }

  close(): Promise<void> {
    return this.storage.close();
  }


  private async readObject(key: string, opts: CallOptions): Promise<Buffer | undefined> {
    return (await this.readObjectWithInfo(key, opts))?.body;
  }

  private async readObjectWithInfo(key: string, opts: CallOptions): Promise<{ body: Buffer; etag: string; lastModified: Date } | undefined> {
    try {
      const { body, info } = await this.storage.get(key, opts);
      const chunks: Buffer[] = [];
      for await (const c of body) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
      return { body: Buffer.concat(chunks), etag: info.etag, lastModified: info.lastModified };
    } catch (e) {
      if (isStorageError(e, 'NotFound')) return undefined;
      throw e;
    }
  }
}

function checkDevice(req: UserRef & { deviceId?: string }): void {
  assertId(req.userId, 'user id');
  if (req.deviceId !== undefined) assertId(req.deviceId, 'device id');
}

function checkLeaseName(name: unknown): void {
  if (typeof name !== 'string' || !LEASE_NAMES.has(name)) throw new SyncError('InvalidEntry', `unknown lease "${String(name)}": the only lease is "compaction"`);
}

/**
 * A log listing's entry as a batch, in either form (bucket-keys.ts). An inline key with a body
 * was not written by this backend (it writes them empty): its body is taken as the batch, so a
 * changed object is authenticated like any body batch, never silently ignored.
 */
function listedBatch(prefix: string, item: ListEntry): ListedBatch | undefined {
  if (item.type !== 'object') return undefined;
  const name = parseLogName(item.key.slice(prefix.length));
  if (!name) return undefined;
  return { id: name.id, position: name.position, key: item.key, storedAt: item.lastModified, ...(name.inline && item.size === 0 ? { inline: name.inline } : {}) };
}

/** `record` (device id to seq) as JSON with sorted keys, so the same record is always the same bytes. */
function canonicalSeqRecord(record: Record<string, number>, what: string): string {
  if (typeof record !== 'object' || record === null || Array.isArray(record)) throw new SyncError('InvalidEntry', `${what} is an object of device ids to sequence numbers`);
  const entries = Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [device, seq] of entries) {
    assertId(device, 'device id');
    if (!Number.isSafeInteger(seq) || seq < 0) throw new SyncError('InvalidEntry', `${what}: sequence number ${String(seq)} of device ${device} is out of range`);
  }
  return JSON.stringify(Object.fromEntries(entries));
}

function decode(data: string): Buffer {
  if (typeof data !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(data)) throw new SyncError('InvalidEntry', 'sealed data must be base64');
  return Buffer.from(data, 'base64');
}

function parseLease(body: Buffer): LeaseBody | undefined {
  try {
    const v = JSON.parse(body.toString('utf8')) as Partial<LeaseBody>;
    return typeof v.holder === 'string' && typeof v.expiresAt === 'string' && !Number.isNaN(Date.parse(v.expiresAt)) ? (v as LeaseBody) : undefined;
  } catch {
    return undefined;
  }
}

/** Runs `fn` over `items` with at most `limit` in flight, keeping the order of results. */
export async function mapConcurrently<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
