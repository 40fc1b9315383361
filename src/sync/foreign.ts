// Devices a reader stops waiting for. Whoever can write into the account without its secret (a
// holder of the server's token, of the bucket's credentials, the server itself) can store
// batches for a made-up device. They never authenticate, so that device is stuck at its first
// batch, and before this every pull reported it (exit 8) forever, compaction included. Now:
// - a device that is stuck with nothing authentic ever read from it, and that has no
//   authentic registration (record or cursor), is reported once as ForeignDevice and ignored
//   from then on: its batches that fail authentication are skipped without a word. One of its
//   batches that does authenticate proves it a device of this account after all: it is read
//   again like any other (so a store that hid a device's record cannot make it ignored for good);
// - `drop-device` ignores a device outright (and removes its registration from the backend).
import { isSyncError } from './errors.js';
import { MisplacedError, open } from './crypto.js';
import { isOwnDevice, type DeviceContext } from './device.js';
import type { ReadOutcome } from './reader.js';
import type { StoredBatch } from './types.js';

/** The batches a reader should look at: none of a dropped device, a foreign device's only if one authenticates. */
export function withoutIgnoredDevices(ctx: DeviceContext, batches: StoredBatch[]): StoredBatch[] {
  const ignored = ctx.state.ignoredDevices();
  if (ignored.size === 0) return batches;
  const skip = new Set<string>();
  for (const [deviceId, reason] of ignored) {
    if (reason === 'dropped') skip.add(deviceId);
    else if (!batches.some((b) => b.deviceId === deviceId && authenticates(ctx, b))) skip.add(deviceId);
    else ctx.state.setIgnoredDevice(deviceId, null); // it is one of ours after all
  }
  return skip.size === 0 ? batches : batches.filter((b) => !skip.has(b.deviceId));
}

/**
 * Among the devices `outcome` left stuck, those no batch of which ever authenticated (none held,
 * none in `batches`) and that the backend lists no authentic registration for: marked foreign,
 * their problems replaced by one ForeignDevice problem each. Costs one listing of the devices,
 * only when there is such a candidate.
 */
export async function settleForeignDevices(ctx: DeviceContext, outcome: ReadOutcome, batches: StoredBatch[]): Promise<ReadOutcome> {
  const held = ctx.state.known();
  const candidates = outcome.stuck.filter((s) => {
    if ((held[s.deviceId] ?? 0) > 0) return false;
    const own = batches.filter((b) => b.deviceId === s.deviceId);
    return own.length > 0 && own.every((b) => !authenticates(ctx, b));
  });
  if (candidates.length === 0) return outcome;
  const { devices } = await ctx.backend.listDevices({ userId: ctx.userId });
  const registered = new Map(devices.map((d) => [d.deviceId, d]));
  const foreign = new Set(candidates.filter((s) => !registered.has(s.deviceId) || !isOwnDevice(ctx, registered.get(s.deviceId)!)).map((s) => s.deviceId));
  if (foreign.size === 0) return outcome;
  for (const deviceId of foreign) ctx.state.setIgnoredDevice(deviceId, 'foreign');
  return {
    ...outcome,
    stuck: outcome.stuck.filter((s) => !foreign.has(s.deviceId)),
    problems: [
      ...outcome.problems.filter((p) => !foreign.has(p.deviceId)),
      ...[...foreign].map((deviceId) => ({
        code: 'ForeignDevice' as const,
        deviceId,
        seq: Math.min(...batches.filter((b) => b.deviceId === deviceId).map((b) => b.seq)),
        message: `device ${deviceId} is not a device of this account: none of its batches authenticates, nor its registration; someone with the server's token or the bucket's credentials, but not the secret, wrote them. It is ignored from now on (\`offsite sync drop-device ${deviceId}\` also removes its registration)`,
      })),
    ],
  };
}

/** Whether a batch was sealed with this account's key (wherever it was sealed for). */
function authenticates(ctx: DeviceContext, b: StoredBatch): boolean {
  try {
    open(ctx.keys, { kind: b.kind }, Buffer.from(b.data, 'base64'));
    return true;
  } catch (e) {
    if (e instanceof MisplacedError) return true;
    // A newer envelope version cannot be checked here: not taken as foreign.
    return isSyncError(e, 'UnsupportedSyncFormat');
  }
}
