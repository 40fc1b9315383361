// Moving an account to another backend (http -> s3, s3 -> http, a bucket to another bucket).
// Everything is copied byte for byte through the SyncBackend interface: the key check, every
// device record and cursor, the newest snapshot and every log batch (entries and deletions).
// The envelopes bind user, device, seq, kind and time, not the backend, so a copy is exactly as
// authentic as the original and every device can read it. Every write on the target is
// write-once with "same bytes succeed", so a migration can be rerun (after a failure, or from
// each device in turn) and only adds what is missing.
import { legacyUserId, open } from './crypto.js';
import { deviceRef, KEY_CHECK_CONTEXT, openSnapshot, type DeviceContext } from './device.js';
import { isSyncError, SyncError } from './errors.js';
import type { SealedBatch, StoredBatch, SyncBackend } from './types.js';

/** Batches per submit request: bounded so an HTTP request stays small. */
const SUBMIT_CHUNK = 50;

export interface CopyAccountResult {
  /** The target already held this account (another device migrated first). */
  targetHadAccount: boolean;
  /** The account's id on the target: its own (derived from the target's name), or the one an earlier migration used there. */
  targetUserId: string;
  devices: number;
  cursors: number;
  snapshotGeneration: number | null;
  entryBatches: number;
  deletionBatches: number;
  /** Batches not copied because they failed authentication (they would be refused on every device). */
  refused: { batchId: string; code: string }[];
}

/**
 * Copies the account of `ctx` from its backend to `target`, under `targetUserId` (the account's
 * id derived for the target) unless an earlier migration by an Offsite from before per-backend
 * ids put it under the legacy id there; then checks that the target lists every batch the
 * source has. The device's own state is not changed. The envelopes bind the account, not its id
 * on a backend, so the copies open there as they did here.
 */
export async function copyAccount(ctx: DeviceContext, target: SyncBackend, targetUserId: string): Promise<CopyAccountResult> {
  const source = ctx.backend;
  const ref = deviceRef(ctx);
  const sourceBoot = await source.bootstrap({ ...ref, keyCheck: true });
  if (sourceBoot.keyCheck === null) throw new SyncError('WrongSecret', 'the source backend holds no key check for this account; nothing to migrate');
  let to = { userId: targetUserId, deviceId: ctx.deviceId };
  let targetBoot = await target.bootstrap({ ...to, keyCheck: true });
  if (targetBoot.keyCheck === null && legacyUserId(ctx.keys) !== targetUserId) {
    const legacy = await target.bootstrap({ userId: legacyUserId(ctx.keys), deviceId: ctx.deviceId, keyCheck: true });
    if (legacy.keyCheck !== null) {
      to = { userId: legacyUserId(ctx.keys), deviceId: ctx.deviceId };
      targetBoot = legacy;
    }
  }
  if (targetBoot.keyCheck !== null) {
    // Another device moved the account first: it must be this very account.
    open(ctx.keys, KEY_CHECK_CONTEXT, Buffer.from(targetBoot.keyCheck, 'base64'), 'the target account key check');
  }

  const [sourceDevices, targetDevices] = await Promise.all([source.listDevices({ userId: ref.userId }), target.listDevices({ userId: to.userId })]);
  const registeredOnTarget = new Set(targetDevices.devices.filter((d) => d.record !== null).map((d) => d.deviceId));
  const cursorOnTarget = new Set(targetDevices.devices.filter((d) => d.cursor !== null).map((d) => d.deviceId));
  // This device first: a new account's key check is written with the first registration.
  const ordered = [...sourceDevices.devices].sort((a, b) => Number(b.deviceId === ctx.deviceId) - Number(a.deviceId === ctx.deviceId));
  let keyCheckWritten = targetBoot.keyCheck !== null;
  let devices = 0;
  let cursors = 0;
  for (const d of ordered) {
    if (d.record !== null && !registeredOnTarget.has(d.deviceId)) {
      await target.registerDevice({ userId: to.userId, deviceId: d.deviceId, device: d.record, ...(keyCheckWritten ? {} : { keyCheck: sourceBoot.keyCheck }) });
      keyCheckWritten = true;
      devices++;
    }
    // A cursor already on the target is newer (its device moved already): never overwrite it.
    if (d.cursor !== null && !cursorOnTarget.has(d.deviceId)) {
      await target.publishCursor({ userId: to.userId, deviceId: d.deviceId, cursor: d.cursor });
      cursors++;
    }
  }
  if (!keyCheckWritten) throw new SyncError('NotJoined', 'the source backend lists no registered device for this account; nothing to migrate');

  let snapshotGeneration: number | null = null;
  if (sourceBoot.snapshot !== null && sourceBoot.snapshot.generation > targetBoot.latestGeneration) {
    try {
      // Opened first: its frontier is the coverage the target records (and a snapshot that does not authenticate is not copied).
      const { frontier } = openSnapshot(ctx, sourceBoot.snapshot);
      await target.putSnapshot({ ...to, generation: sourceBoot.snapshot.generation, data: sourceBoot.snapshot.data, covers: frontier });
      snapshotGeneration = sourceBoot.snapshot.generation;
    } catch (e) {
      if (!isSyncError(e, 'Conflict')) throw e; // written by another migrating device meanwhile
    }
  }

  const { batches } = await source.queryEntries({ ...ref, cursor: null, known: {} });
  const refused: CopyAccountResult['refused'] = [];
  const refusedIds = new Set<string>();
  const entryBatches = new Map<string, SealedBatch[]>();
  const deletionBatches: SealedBatch[] = [];
  for (const b of batches) {
    // Copy only what every device would accept: a damaged batch stays behind, reported.
    try {
      open(ctx.keys, { kind: b.kind, deviceId: b.deviceId, seq: b.seq, time: b.time }, Buffer.from(b.data, 'base64'), b.id);
    } catch (e) {
      if (!isSyncError(e)) throw e;
      refused.push({ batchId: b.id, code: e.code });
      refusedIds.add(b.id);
      continue;
    }
    const sealed = sealedOf(b);
    if (b.kind === 'deletions') deletionBatches.push(sealed);
    else {
      const list = entryBatches.get(b.deviceId);
      if (list) list.push(sealed);
      else entryBatches.set(b.deviceId, [sealed]);
    }
  }
  for (const [deviceId, list] of entryBatches) {
    for (let i = 0; i < list.length; i += SUBMIT_CHUNK) await target.submitEntries({ userId: to.userId, deviceId, batches: list.slice(i, i + SUBMIT_CHUNK) });
  }
  for (const batch of deletionBatches) await target.addDeletionRequest({ userId: to.userId, deviceId: batch.deviceId, batch });

  // The proof: every batch copied is listed by the target.
  const copied = await target.queryEntries({ ...to, cursor: null, known: {} });
  const onTarget = new Set(copied.batches.map((b) => `${b.deviceId}/${b.seq}/${b.time}/${b.kind}`));
  const missing = batches.filter((b) => !refusedIds.has(b.id) && !onTarget.has(`${b.deviceId}/${b.seq}/${b.time}/${b.kind}`));
  if (missing.length > 0) {
    throw new SyncError('MissingBatch', `the target does not list ${missing.length} of the batches just copied (first: device ${missing[0]!.deviceId} seq ${missing[0]!.seq}); the device still uses the old backend; run the migration again`);
  }
  return {
    targetHadAccount: targetBoot.keyCheck !== null,
    targetUserId: to.userId,
    devices,
    cursors,
    snapshotGeneration,
    entryBatches: [...entryBatches.values()].reduce((n, list) => n + list.length, 0),
    deletionBatches: deletionBatches.length,
    refused,
  };
}

function sealedOf(b: StoredBatch): SealedBatch {
  return { deviceId: b.deviceId, seq: b.seq, time: b.time, kind: b.kind, data: b.data };
}
