import type { RequestStats } from '../storage/index.js';

/**
 * The sync backend: where sealed batches from every device of one user meet. Modelled on the
 * shell-history seed's sync API (registerDevice, submitEntries, queryEntries, bootstrap,
 * addDeletionRequest, getDeletionRequests, uninstall, ping, type), with the few calls a client
 * needs for status and compaction added.
 *
 * Contract shared by every backend:
 * - The backend only ever handles ciphertext. Entries, deletion requests, device records,
 *   cursors and snapshots arrive sealed (SealedData, base64) and leave exactly as stored; ids
 *   are random or derived (userId from the secret and the backend's name by HKDF and HMAC,
 *   deviceId random). A backend can
 *   lose or withhold data, never read or forge it: the client authenticates everything.
 * - Arguments and results are plain JSON (strings, numbers, arrays, records), so an HTTP
 *   backend can carry them unchanged. The optional second argument (an AbortSignal) is local.
 * - A batch is written once: submitting (device, seq, time) again with the same bytes succeeds
 *   (a retried request). With other bytes it fails with Conflict where the backend can tell
 *   at no extra request (a batch stored as a body; any batch in a local directory); a small
 *   batch carried in its S3 key may instead be stored a second time, and then readers take the
 *   first copy listed and authenticate it against its position like any other. Only two
 *   processes writing as one device, in the same millisecond, could cause that.
 * - Delivery is at least once: queryEntries may return a batch again; the client dedupes by
 *   (deviceId, seq) and never applies a sequence number twice. Two different batches at one
 *   (deviceId, seq) (a device's state directory restored or copied) are both imported and
 *   reported as a fork.
 * - Errors are SyncErrors or the storage layer's StorageErrors (Transient is retried inside
 *   the storage adapter before it escapes).
 */
export interface SyncBackend {
  /** Which kind of backend this is (for status output and migration). */
  readonly type: SyncBackendType;

  /** Checks that the backend is reachable with the configured credentials. */
  ping(opts?: CallOptions): Promise<PingResult>;

  /**
   * Registers a device (its sealed record, written once). With `keyCheck` (only at init) it
   * also stores the account's key-check object, written once: a second init of the same user
   * fails with Conflict. Registering an already registered device id succeeds
   * (`alreadyRegistered`), so a join interrupted after this call can be rerun.
   */
  registerDevice(req: RegisterDeviceRequest, opts?: CallOptions): Promise<RegisterDeviceResult>;

  /** Stores entry batches (kind 'entries'), each write-once at its position. */
  submitEntries(req: SubmitRequest, opts?: CallOptions): Promise<SubmitResult>;

  /**
   * The batches stored after `cursor` (or after `afterBatchId`), of every kind, from every
   * device, except those at or below the caller's `known` sequence number for their device:
   * those are listed in `held` (bytes only when the listing carried them at no cost).
   * Guarantee: a batch that is stored at any time is returned by some query that continues
   * from the cursor chain (each query's returned cursor passed to the next), or was already
   * returned; it may be returned more than once. A query that finds nothing new costs the
   * bucket backend exactly one request.
   */
  queryEntries(req: QueryRequest, opts?: CallOptions): Promise<QueryResult>;

  /**
   * What a new device starts from: the account's key-check object (to tell a wrong secret
   * from a right one) and the newest compacted snapshot (only if newer than `newerThan`).
   * The client then reads the log tail with queryEntries from the snapshot's cursor.
   */
  bootstrap(req: BootstrapRequest, opts?: CallOptions): Promise<BootstrapResult>;

  /**
   * Stores a deletion request (a batch of kind 'deletions') in the sender's log. It travels
   * with the entries: every device receives it through queryEntries, including devices that
   * join later (from the log tail, or folded into the next snapshot as tombstones).
   */
  addDeletionRequest(req: AddDeletionRequest, opts?: CallOptions): Promise<SubmitResult>;

  /**
   * The deletion requests still in the log (not yet folded into a snapshot) above `known`.
   * Pulls do not need it (queryEntries returns deletions too, so one request answers "anything
   * new?"); it is for audits and for migrating an account between backends.
   */
  getDeletionRequests(req: GetDeletionRequestsRequest, opts?: CallOptions): Promise<DeletionRequestsResult>;

  /**
   * Removes a device: its registration and its published cursor. Its batches stay until every
   * other device has read them and garbage collection removes them.
   */
  uninstall(req: DeviceRef, opts?: CallOptions): Promise<void>;

  /** Every registered device with its sealed record and its last published cursor. */
  listDevices(req: UserRef, opts?: CallOptions): Promise<DeviceListing>;

  /**
   * Publishes the caller's read position (sealed; the client puts its per-device frontier in
   * it), overwriting its previous one. Only the device itself writes this object.
   */
  publishCursor(req: PublishCursorRequest, opts?: CallOptions): Promise<void>;

  /**
   * Takes a named lease (compaction) for `ttlMs`, unless another device holds an unexpired
   * one. Of several callers at once, at most one acquires it. An expired lease is taken over.
   */
  acquireLease(req: LeaseRequest, opts?: CallOptions): Promise<LeaseResult>;

  /** Gives a lease back (a no-op if it expired and someone else took it). */
  releaseLease(req: ReleaseLeaseRequest, opts?: CallOptions): Promise<void>;

  /**
   * Stores a compacted snapshot, write-once per generation (Conflict if the generation exists),
   * with `covers`, the per-device frontier it holds, recorded in the clear beside it: the one
   * thing about a snapshot that the backend can hold collection to.
   */
  putSnapshot(req: PutSnapshotRequest, opts?: CallOptions): Promise<void>;

  /**
   * Deletes log batches at or below `through[deviceId]` (which the caller computed as read by
   * every active device and contained in a snapshot) and snapshots older than
   * `keepSnapshotsFrom`. Batches of devices not in `through` are kept. Refused (Conflict,
   * nothing deleted) if it would delete the newest snapshot, or batches that the newest
   * snapshot's recorded `covers` does not reach: whatever the caller claims, what is deleted
   * stays in a snapshot that stays.
   */
  collectGarbage(req: CollectGarbageRequest, opts?: CallOptions): Promise<CollectGarbageResult>;

  /** Requests this backend instance made, by operation (local, not part of the wire API). */
  requestStats(): RequestStats;

  /** Releases connections. */
  close(): Promise<void>;
}

export type SyncBackendType = 'bucket' | 'http';

/** Base64 of a sealed envelope (see crypto.ts). The backend stores it and never opens it. */
export type SealedData = string;

export interface CallOptions {
  signal?: AbortSignal;
}

/** What a log batch carries. Deletion requests travel in the same logs as entries. */
export type BatchKind = 'entries' | 'deletions';

/**
 * Where a batch sits: chosen by the writing device and bound into the batch's AEAD associated
 * data, so a batch found anywhere else fails authentication.
 */
export interface BatchPosition {
  deviceId: string;
  /** 1, 2, 3, ... per device; never reused, never skipped. */
  seq: number;
  /** Milliseconds since the epoch on the writer's server-calibrated clock; increases per device. */
  time: number;
  kind: BatchKind;
}

export interface SealedBatch extends BatchPosition {
  data: SealedData;
}

/** A listed copy at a position the caller holds: its bytes only if they came with the listing. */
export interface HeldBatch extends BatchPosition {
  id: string;
  storedAt: string;
  data?: SealedData;
}

export interface StoredBatch extends SealedBatch {
  /** The backend's name for this stored batch; ordered like the log; usable as `afterBatchId`. */
  id: string;
  /** When the backend stored it, on the backend's clock (ISO 8601). */
  storedAt: string;
}

export interface UserRef {
  /** Derived from the secret (hex); never reveals it. */
  userId: string;
}

export interface DeviceRef extends UserRef {
  deviceId: string;
}

export interface RegisterDeviceRequest extends DeviceRef {
  device: SealedData;
  keyCheck?: SealedData;
}

export interface RegisterDeviceResult {
  alreadyRegistered: boolean;
  /** The backend's clock when the device record was stored, for calibrating the device clock. */
  serverTime: string;
}

export interface SubmitRequest extends DeviceRef {
  batches: SealedBatch[];
}

export interface SubmitResult {
  stored: { id: string }[];
}

export interface QueryRequest extends DeviceRef {
  /** The cursor the previous query returned; null or absent: from the beginning. */
  cursor?: string | null;
  /** Instead of the cursor: the batches stored after this one (for refilling a gap). */
  afterBatchId?: string;
  /** Per device, the highest sequence number the caller holds with nothing missing below it. */
  known: Record<string, number>;
}

export interface QueryResult {
  batches: StoredBatch[];
  /**
   * The copies the listing found at positions the caller holds (seq <= known), fetched only if
   * their bytes came with the listing (a batch carried in its key). A reader checks a copy it has
   * not seen for a second, different batch at a position it holds (a fork), and a writer sees
   * its own newest batch here. Absent from servers older than this field.
   */
  held?: HeldBatch[];
  cursor: string;
  /**
   * The caller's own recent batches as the backend saw them (its time, the backend's
   * storedAt): lets a device notice that its clock drifted from the backend's.
   */
  ownTimings: { time: number; storedAt: string }[];
}

export interface BootstrapRequest extends DeviceRef {
  /** Return the key-check object (join does; maintenance does not need it). */
  keyCheck?: boolean;
  /** Only return the snapshot if its generation is greater than this. */
  newerThan?: number;
}

export interface BootstrapResult {
  keyCheck: SealedData | null;
  snapshot: StoredSnapshot | null;
  /** The newest generation present (0: none), whether or not it was returned. */
  latestGeneration: number;
}

export interface StoredSnapshot {
  generation: number;
  data: SealedData;
  storedAt: string;
}

export interface AddDeletionRequest extends DeviceRef {
  batch: SealedBatch;
}

export interface GetDeletionRequestsRequest extends DeviceRef {
  known?: Record<string, number>;
}

export interface DeletionRequestsResult {
  requests: StoredBatch[];
}

export interface DeviceListing {
  devices: RegisteredDevice[];
}

export interface RegisteredDevice {
  deviceId: string;
  /** The sealed device record; null for a cursor whose device was removed. */
  record: SealedData | null;
  registeredAt: string | null;
  cursor: SealedData | null;
  cursorAt: string | null;
}

export interface PublishCursorRequest extends DeviceRef {
  cursor: SealedData;
}

export type LeaseName = 'compaction';

export interface LeaseRequest extends DeviceRef {
  name: LeaseName;
  ttlMs: number;
  /** The caller's server-calibrated clock (ms): leases expire by it, with a margin for skew. */
  now: number;
}

export type LeaseResult =
  | { acquired: true; token: string; expiresAt: string; tookOver: boolean }
  | { acquired: false; holder: string; expiresAt: string };

export interface ReleaseLeaseRequest extends DeviceRef {
  name: LeaseName;
  token: string;
}

export interface PutSnapshotRequest extends DeviceRef {
  generation: number;
  data: SealedData;
  /** Per device, the highest seq the snapshot holds with nothing missing below (its frontier). */
  covers: Record<string, number>;
}

export interface CollectGarbageRequest extends DeviceRef {
  through: Record<string, number>;
  keepSnapshotsFrom: number;
}

export interface CollectGarbageResult {
  deletedBatches: number;
  deletedSnapshots: number;
}

export interface PingResult {
  ok: true;
  type: SyncBackendType;
  /** Where (a storage URL or server address, without secrets). */
  location: string;
}

/** One synced record: any JSON object with a string id (a shell command, a note, ...). */
export interface SyncEntry {
  id: string;
  [field: string]: unknown;
}
