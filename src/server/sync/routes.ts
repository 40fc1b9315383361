// The endpoints of `offsite serve` under /api/v1: for each, the SyncBackend call it makes, the
// JSON schema of its body, and the largest body it takes. The schemas check types, shapes and
// sizes only (every map and list has a maximum, so a request's size says how much the server
// holds for it); ids, ranges and base64 are checked by the backend itself, so a bad value gives
// the same SyncError (InvalidEntry...) through HTTP as against a bucket.
import type { CallOptions, SyncBackend } from '../../sync/index.js';

/** Room for a compacted snapshot of far more than 100,000 entries (one is ~2 MB of base64). */
export const DEFAULT_SYNC_BODY_LIMIT = 64 * 1024 * 1024;
/** Devices an account may have had (every per-device map in a request is at most this long). */
export const MAX_ACCOUNT_DEVICES = 10_000;
/** Batches in one submit (a device sends one at a time; a migration 50). */
export const MAX_SUBMIT_BATCHES = 100;
/** Base64 characters of one sealed batch: a batch is about 512 KiB of JSON before gzip. */
export const MAX_SEALED_BATCH = 8 * 1024 * 1024;

const KiB = 1024;
const MiB = 1024 * KiB;

type Schema = Record<string, unknown>;
const str = (maxLength = 256): Schema => ({ type: 'string', maxLength });
const sealed = (maxLength: number): Schema => ({ type: 'string', maxLength });
/** Per device id, a sequence number (the backend checks that the ids are ids). */
const seqRecord: Schema = {
  type: 'object',
  maxProperties: MAX_ACCOUNT_DEVICES,
  propertyNames: { maxLength: 64 },
  additionalProperties: { type: 'integer', minimum: 0, maximum: 9_999_999_999 },
};
const leaseName: Schema = { type: 'string', enum: ['compaction'] };
const device = { userId: str(64), deviceId: str(64) };
const object = (properties: Record<string, Schema>, required: string[]): Schema => ({ type: 'object', additionalProperties: false, required, properties });
const batch = object({ deviceId: str(64), seq: { type: 'number' }, time: { type: 'number' }, kind: str(32), data: sealed(MAX_SEALED_BATCH) }, ['deviceId', 'seq', 'time', 'kind', 'data']);
const ref = ['userId', 'deviceId'];

export interface SyncRoute {
  path: string;
  body: Schema;
  /** The largest body this endpoint takes, in bytes (refused with 413 before it is read). */
  bodyLimit: number;
  call: (b: SyncBackend, req: never, opts: CallOptions) => Promise<unknown>;
}

/** The body limit of the endpoints that take no more than ids and small records. */
export const SMALL_BODY_LIMIT = 16 * KiB;

/** Every POST endpoint but ping; `snapshotLimit` is the snapshot's (the largest body there is). */
export function syncRoutes(snapshotLimit = DEFAULT_SYNC_BODY_LIMIT): SyncRoute[] {
  return [
    { path: 'register', bodyLimit: 256 * KiB, body: object({ ...device, device: sealed(64 * KiB), keyCheck: sealed(16 * KiB) }, [...ref, 'device']), call: (b, r, o) => b.registerDevice(r, o) },
    {
      path: 'submit',
      bodyLimit: Math.max(snapshotLimit, 16 * MiB),
      body: object({ ...device, batches: { type: 'array', maxItems: MAX_SUBMIT_BATCHES, items: batch } }, [...ref, 'batches']),
      call: (b, r, o) => b.submitEntries(r, o),
    },
    {
      path: 'query',
      bodyLimit: MiB,
      body: object({ ...device, cursor: { type: ['string', 'null'], maxLength: 256 }, afterBatchId: str(), known: seqRecord }, [...ref, 'known']),
      call: (b, r, o) => b.queryEntries(r, o),
    },
    { path: 'bootstrap', bodyLimit: SMALL_BODY_LIMIT, body: object({ ...device, keyCheck: { type: 'boolean' }, newerThan: { type: 'number' } }, ref), call: (b, r, o) => b.bootstrap(r, o) },
    { path: 'add-deletion-request', bodyLimit: 16 * MiB, body: object({ ...device, batch }, [...ref, 'batch']), call: (b, r, o) => b.addDeletionRequest(r, o) },
    { path: 'get-deletion-requests', bodyLimit: MiB, body: object({ ...device, known: seqRecord }, ref), call: (b, r, o) => b.getDeletionRequests(r, o) },
    { path: 'uninstall', bodyLimit: SMALL_BODY_LIMIT, body: object(device, ref), call: (b, r, o) => b.uninstall(r, o) },
    { path: 'devices', bodyLimit: SMALL_BODY_LIMIT, body: object({ userId: str(64) }, ['userId']), call: (b, r, o) => b.listDevices(r, o) },
    // A cursor holds a frontier: one sequence number per device, sealed.
    { path: 'publish-cursor', bodyLimit: 2 * MiB, body: object({ ...device, cursor: sealed(MiB) }, [...ref, 'cursor']), call: (b, r, o) => b.publishCursor(r, o) },
    {
      path: 'lease/acquire',
      bodyLimit: SMALL_BODY_LIMIT,
      body: object({ ...device, name: leaseName, ttlMs: { type: 'number' }, now: { type: 'number' } }, [...ref, 'name', 'ttlMs', 'now']),
      call: (b, r, o) => b.acquireLease(r, o),
    },
    { path: 'lease/release', bodyLimit: SMALL_BODY_LIMIT, body: object({ ...device, name: leaseName, token: str(1024) }, [...ref, 'name', 'token']), call: (b, r, o) => b.releaseLease(r, o) },
    {
      path: 'snapshot',
      bodyLimit: snapshotLimit,
      body: object({ ...device, generation: { type: 'number' }, data: sealed(snapshotLimit), covers: seqRecord }, [...ref, 'generation', 'data', 'covers']),
      call: (b, r, o) => b.putSnapshot(r, o),
    },
    {
      path: 'collect-garbage',
      bodyLimit: MiB,
      body: object({ ...device, through: seqRecord, keepSnapshotsFrom: { type: 'number' } }, [...ref, 'through', 'keepSnapshotsFrom']),
      call: (b, r, o) => b.collectGarbage(r, o),
    },
  ];
}
