// SyncClient: one device of a user's sync account. The same code runs over any SyncBackend;
// it batches, seals, numbers and sends what is pushed here, reads and applies what other
// devices sent, carries deletions everywhere, and keeps everything in a local state directory.
import { randomBytes } from 'node:crypto';
import { rmSync, rmdirSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { openStorage } from '../storage/index.js';
import { BucketBackend } from './bucket.js';
import { assertId } from './bucket-keys.js';
import { calibratedOffset, registrationOffset } from './clock.js';
import { compact, recentSnapshotSuffices, type CompactOptions, type CompactResult } from './compaction.js';
import { deriveKeys, legacyUserId, open, seal, userIdFor, type SyncKeys } from './crypto.js';
import {
  countingRequests,
  requestsBetween,
  DEFAULT_BATCHING,
  DEFAULT_COMPACTION,
  DEFAULT_CURSOR_PUBLISH_INTERVAL_MS,
  DEFAULT_FRESHNESS_CHECK_INTERVAL_MS,
  deviceRecordContext,
  deviceRef,
  KEY_CHECK_CONTEXT,
  openSnapshot,
  publishCursor,
  serverNow,
  type BatchingPolicy,
  type CompactionPolicy,
  type DeviceContext,
  type RequestsUsed,
} from './device.js';
import { readServerToken, removeServerToken, saveServerToken, backendKindOfUrl, backendName } from './config.js';
import { SyncError } from './errors.js';
import { checkFreshness, pendingWithheld } from './freshness.js';
import { copyAccount, type CopyAccountResult } from './migrate.js';
import { HISTORY_SPOOL_DIR } from './history-hook.js';
import { HttpBackend, SYNC_TOKEN_ENV } from './http-backend.js';
import { mergeSnapshotCovering, readNewBatches, sweepLog, type SyncProblem } from './reader.js';
import { formatSecret, generateSecret, parseSecret } from './secret.js';
import { SyncState } from './state.js';
import { deviceStatus, type SyncStatus } from './status.js';
import { flush, flushIfDue } from './writer.js';
import type { SyncBackend, SyncEntry } from './types.js';

/** An entry's JSON may not exceed this: sync carries records, not files. */
export const MAX_ENTRY_BYTES = 64 * 1024;
const MAX_ID_LENGTH = 512;

export interface SyncClientOptions {
  /** The device's state directory (sync.db and the secret, 0600). */
  stateDir: string;
  /** Where the account lives: needed by init and join; later the URL saved in the state is used. */
  storageUrl?: string;
  /** A backend to use instead of one opened from the storage URL (it is then not closed by close()). */
  backend?: SyncBackend;
  /**
   * The token of an `offsite serve` server (an http:// or https:// URL). Default:
   * $OFFSITE_SYNC_TOKEN, else the one init, join or migrate kept in the state directory (0600).
   */
  token?: string;
  /** Explicit S3 keys (default: the AWS credential chain). Never stored by the client. */
  credentials?: S3Credentials;
  /** Shown in `status` on every device (sealed: the bucket does not see it). Default: the host name. */
  deviceName?: string;
  batching?: Partial<BatchingPolicy>;
  compaction?: Partial<CompactionPolicy>;
  /** How often this device publishes its read position for garbage collection. Default 1 h. */
  cursorPublishIntervalMs?: number;
  /**
   * How often a pull checks the other devices' published read positions for batches or a
   * snapshot the store withholds (2 LISTs and 2 GETs per device). Default 24 h; join and status
   * always check.
   */
  freshnessCheckIntervalMs?: number;
  /** The local wall clock in ms (tests simulate a skewed device). */
  clock?: () => number;
}

export interface PushResult {
  added: number;
  /** Ids this device already had. */
  duplicates: number;
  /** Ids deleted earlier: never synced again. */
  alreadyDeleted: number;
  /** Batches sent by this push. */
  batches: number;
  /** Entries still waiting to be sent (push with flush: false). */
  pending: number;
  requests: RequestsUsed;
}

export interface PullResult {
  /** Entries new on this device. */
  entries: SyncEntry[];
  /** Ids removed from this device by deletion requests. */
  deleted: string[];
  batches: number;
  /** What was refused (tampered, replayed, out of order, missing); nothing it concerns was imported. */
  problems: SyncProblem[];
  compaction?: CompactResult;
  requests: RequestsUsed;
}

export interface DeleteResult {
  /** Entries removed here (the deletion request goes to every device either way). */
  removed: number;
  batches: number;
  requests: RequestsUsed;
}

/**
 * The backend for `url`: an http:// or https:// URL is an `offsite serve` server (its token from
 * `opts.token`, else $OFFSITE_SYNC_TOKEN); anything else is the bucket backend over the storage
 * at `url` (a directory or s3://...).
 */
export function openSyncBackend(url: string, opts: { token?: string | undefined; credentials?: S3Credentials | undefined } = {}): SyncBackend {
  if (backendKindOfUrl(url) === 'http') {
    const token = opts.token || process.env[SYNC_TOKEN_ENV];
    if (!token) throw new SyncError('Unauthorized', `a sync server (an http:// or https:// URL) needs its token: set ${SYNC_TOKEN_ENV} to the content of the token file \`offsite serve\` printed`);
    return new HttpBackend(url, { token });
  }
  return new BucketBackend(openStorage(url, opts.credentials ? { credentials: opts.credentials } : {}));
}

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface MigrateResult {
  from: string;
  to: string;
  copy: CopyAccountResult;
  /** Requests made on the old backend (sending, reading, copying out). */
  sourceRequests: RequestsUsed;
  /** Requests made on the new backend (copying in, checking, the first read there). */
  targetRequests: RequestsUsed;
  /** Entries on this device after the move (unchanged by it). */
  entries: number;
}

export class SyncClient {
  private registered = false;

  private constructor(
    private readonly ctx: DeviceContext,
    private ownsBackend: boolean,
  ) {}

  get deviceId(): string {
    return this.ctx.deviceId;
  }

  /** The account's id on the backend in use (derived per backend: crypto.ts userIdFor). */
  get userId(): string {
    return this.ctx.userId;
  }

  get stateDir(): string {
    return this.ctx.state.dir;
  }

  /**
   * Creates a new account with a new secret, and this device as its first device. The secret
   * is returned once: show it to the user; it is kept only in the state directory (0600).
   */
  static async init(opts: SyncClientOptions): Promise<{ client: SyncClient; secret: string; requests: RequestsUsed }> {
    const secret = generateSecret();
    const client = await SyncClient.create(opts, secret);
    try {
      const { requests } = await countingRequests(client.ctx, async () => {
        await client.register(seal(client.ctx.keys, KEY_CHECK_CONTEXT, { createdAt: new Date(serverNow(client.ctx)).toISOString() }).toString('base64'));
        await publishCursor(client.ctx);
      });
      return { client, secret, requests };
    } catch (e) {
      await client.abandon();
      throw e;
    }
  }

  /**
   * Adds this device to the account of `secret`: checks the secret against the account's key
   * check, registers, then starts from the newest snapshot and reads the log after it.
   */
  static async join(secretText: string, opts: SyncClientOptions): Promise<{ client: SyncClient; entries: number; seconds: number; problems: SyncProblem[]; requests: RequestsUsed }> {
    const started = performance.now();
    const secret = formatSecret(parseSecret(secretText)); // InvalidSecret before any request
    const client = await SyncClient.create(opts, secret);
    try {
      const { result: problems, requests } = await countingRequests(client.ctx, async () => {
        const ctx = client.ctx;
        let boot = await ctx.backend.bootstrap({ ...deviceRef(ctx), keyCheck: true });
        if (boot.keyCheck === null) {
          // An account created before ids were per backend lives under the same id everywhere.
          const legacy = await ctx.backend.bootstrap({ userId: legacyUserId(ctx.keys), deviceId: ctx.deviceId, keyCheck: true });
          if (legacy.keyCheck !== null) {
            boot = legacy;
            client.useUserId(legacyUserId(ctx.keys));
          }
        }
        if (boot.keyCheck === null) {
          throw new SyncError('WrongSecret', `there is no sync account for this secret at ${ctx.state.get('storageUrl')}: check the secret, and that this is the storage URL the first device used (for S3, the same bucket and prefix)`);
        }
        open(ctx.keys, KEY_CHECK_CONTEXT, Buffer.from(boot.keyCheck, 'base64'), 'the account key check');
        await client.register();
        if (boot.snapshot) {
          const content = openSnapshot(ctx, boot.snapshot);
          ctx.state.mergeSnapshot(content, boot.snapshot.generation);
          ctx.state.setMeta({ cursor: content.cursor, batchesSinceSnapshot: 0 });
          const known = ctx.state.known();
          ctx.state.setStuck((content.stuck ?? []).filter((s) => (known[s.deviceId] ?? 0) < s.expected).map((s) => ({ ...s, code: 'MissingBatch', message: 'inherited from the snapshot', since: ctx.clock() })));
        }
        const pulled = await client.pullOnce({ allowCompaction: false });
        // Announce the read position at once: a device without one holds back all collection.
        if (ctx.state.get('cursorPublishedAt') === null) await publishCursor(ctx);
        // Is the snapshot this device started from the newest, and the log complete, by what the other devices published?
        const fresh = await checkFreshness(ctx, { resolve: true, latestGeneration: boot.latestGeneration });
        return [...pulled.problems, ...fresh.problems];
      });
      return { client, entries: client.ctx.state.entryCount(), seconds: (performance.now() - started) / 1000, problems, requests };
    } catch (e) {
      await client.abandon();
      throw e;
    }
  }

  /** Opens the device in `stateDir` (created by init or join). */
  static async open(opts: SyncClientOptions): Promise<SyncClient> {
    const state = SyncState.open(opts.stateDir);
    try {
      const keys = deriveKeys(parseSecret(state.readSecret()));
      // A state keeps the id it recorded: the backend's own, or (accounts from before ids were per backend) the legacy one.
      const userId = state.get('userId');
      if (userId !== userIdFor(keys, backendName(state.get('storageUrl'))) && userId !== legacyUserId(keys)) {
        throw new SyncError('WrongSecret', `the secret in ${opts.stateDir} does not belong to the account of its state; join again in a new directory`);
      }
      const backend = opts.backend ?? openSyncBackend(opts.storageUrl ?? state.get('storageUrl'), { token: opts.token ?? readServerToken(opts.stateDir), credentials: opts.credentials });
      return new SyncClient(contextFor(state, keys, backend, opts), opts.backend === undefined);
    } catch (e) {
      state.close();
      throw e;
    }
  }

  private static async create(opts: SyncClientOptions, secret: string): Promise<SyncClient> {
    const storageUrl = opts.storageUrl;
    if (!storageUrl) throw new SyncError('NotJoined', 'no storage URL: give one (--storage URL or OFFSITE_SYNC_URL) to init or join');
    const keys = deriveKeys(parseSecret(secret));
    const deviceId = randomBytes(16).toString('hex');
    const clock = opts.clock ?? Date.now;
    // The backend first: a bad URL or a missing token leaves no state directory behind.
    const backend = opts.backend ?? openSyncBackend(storageUrl, { token: opts.token, credentials: opts.credentials });
    let state: SyncState;
    try {
      state = await SyncState.create(opts.stateDir, { userId: userIdFor(keys, backendName(storageUrl)), deviceId, deviceName: opts.deviceName ?? hostname(), storageUrl }, secret, clock());
    } catch (e) {
      if (opts.backend === undefined) await backend.close();
      throw e;
    }
    const client = new SyncClient(contextFor(state, keys, backend, opts), opts.backend === undefined);
    try {
      await keepServerToken(state.dir, storageUrl, opts.token);
    } catch (e) {
      await client.abandon();
      throw e;
    }
    // A new device id has no batches anywhere yet, and nothing published about others is due for a check.
    client.ctx.ownLogChecked = true;
    state.setMeta({ freshnessCheckedAt: serverNow(client.ctx) });
    return client;
  }

  /** Switches the account id this device uses on its backend (join of a legacy account, migrate). */
  private useUserId(userId: string): void {
    this.ctx.userId = userId;
    this.ctx.state.setMeta({ userId });
  }

  /** Registers the device record; a fresh registration also calibrates the clock against the store's. */
  private async register(keyCheck?: string): Promise<void> {
    const ctx = this.ctx;
    this.registered = true; // from here on, a failed init or join also removes the record
    const record = { name: ctx.state.get('deviceName'), host: hostname(), platform: process.platform, registeredAt: new Date(ctx.clock()).toISOString() };
    const before = ctx.clock();
    const r = await ctx.backend.registerDevice({ ...deviceRef(ctx), device: seal(ctx.keys, deviceRecordContext(ctx.deviceId), record).toString('base64'), ...(keyCheck === undefined ? {} : { keyCheck }) });
    const offset = registrationOffset(Date.parse(r.serverTime) - before);
    if (!r.alreadyRegistered && offset !== 0) ctx.state.setMeta({ clockOffsetMs: offset });
  }

  /**
   * Stores entries here at once (local-first), then sends them: all of them when `flush` is true
   * (the default), otherwise only when a batch is due by count, size or age.
   */
  async push(entries: readonly unknown[], opts: { flush?: boolean } = {}): Promise<PushResult> {
    const bodies = entries.map(entryBody);
    const sendAll = opts.flush ?? true;
    const counts = this.ctx.state.addPending(bodies, this.ctx.clock(), !sendAll);
    const { result: batches, requests } = await countingRequests(this.ctx, () => (sendAll ? flush(this.ctx) : flushIfDue(this.ctx)));
    this.ctx.state.setMeta({ lastPushAt: this.ctx.clock() });
    return { ...counts, batches, pending: this.ctx.state.pendingSummary().entries, requests };
  }

  /** Sends everything pending, in batches. Returns the number of batches sent. */
  async flush(): Promise<number> {
    return flush(this.ctx);
  }

  /** New entries and deletions from the other devices. One request when there is nothing new. */
  async pull(): Promise<PullResult> {
    return this.pullOnce({ allowCompaction: true });
  }

  private async pullOnce(opts: { allowCompaction: boolean }): Promise<PullResult> {
    const ctx = this.ctx;
    const { result, requests } = await countingRequests(ctx, async () => {
      await flushIfDue(this.ctx);
      // Away for more than half the retention: a compactor may have counted this device as gone
      // and collected batches it never read. Catch up from the snapshot, and say it is back.
      const publishedAt = ctx.state.get('cursorPublishedAt');
      const away = publishedAt !== null && serverNow(ctx) - publishedAt > ctx.compaction.retentionMs / 2;
      const caughtUp = away ? await mergeSnapshotCovering(ctx) : undefined;
      if (away) await publishCursor(ctx);
      const outcome = await readNewBatches(ctx);
      if (caughtUp) {
        outcome.added.unshift(...caughtUp.added);
        outcome.deleted.unshift(...caughtUp.deleted);
      }
      this.calibrate(outcome.ownTimings);
      const checkedAt = ctx.state.get('freshnessCheckedAt');
      if (checkedAt === null || serverNow(ctx) - checkedAt >= ctx.freshnessCheckIntervalMs) {
        const fresh = await checkFreshness(ctx, { resolve: true });
        outcome.added.push(...fresh.added);
        outcome.deleted.push(...fresh.deleted);
        outcome.problems.push(...fresh.problems);
      } else {
        outcome.problems.push(...pendingWithheld(ctx));
      }
      const now = ctx.clock();
      ctx.state.setMeta({ lastPullAt: now });
      const lastPublished = ctx.state.get('cursorPublishedAt');
      if (outcome.applied > 0 && (lastPublished === null || serverNow(ctx) - lastPublished >= ctx.cursorPublishIntervalMs)) await publishCursor(ctx);
      let compaction: CompactResult | undefined;
      if (opts.allowCompaction && ctx.compaction.auto && outcome.applied > 0 && ctx.state.get('batchesSinceSnapshot') >= ctx.compaction.everyBatches) {
        const recent = await recentSnapshotSuffices(ctx);
        if (recent) {
          outcome.added.push(...recent.merged.added);
          outcome.deleted.push(...recent.merged.deleted);
          compaction = recent.result;
        } else {
          const swept = await sweepLog(ctx);
          outcome.added.push(...swept.added);
          outcome.deleted.push(...swept.deleted);
          // A view of the whole log replaces the incremental one (what is withheld stays reported).
          outcome.problems = [...swept.problems, ...outcome.problems.filter((p) => p.code === 'Withheld' || p.code === 'Forked')];
          compaction = await compact(ctx);
        }
      }
      return { outcome, compaction };
    });
    const { outcome, compaction } = result;
    return { entries: outcome.added, deleted: outcome.deleted, batches: outcome.applied, problems: outcome.problems, ...(compaction ? { compaction } : {}), requests };
  }

  private calibrate(timings: { time: number; storedAt: string }[]): void {
    const after = this.ctx.state.get('calibratedAfter');
    const samples = timings.filter((t) => t.time > after).map((t) => ({ time: t.time, storedAt: Date.parse(t.storedAt) }));
    const offset = this.ctx.state.get('clockOffsetMs');
    const corrected = calibratedOffset(offset, samples);
    if (corrected !== offset) this.ctx.state.setMeta({ clockOffsetMs: corrected, calibratedAfter: this.ctx.state.get('lastTime') });
  }

  /** Deletes entries on every device (and on devices that join later). */
  async delete(ids: readonly string[]): Promise<DeleteResult> {
    for (const id of ids) if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID_LENGTH) throw new SyncError('InvalidEntry', `an entry id is a string of 1-${MAX_ID_LENGTH} characters`);
    const { removed } = this.ctx.state.deleteLocal([...ids], this.ctx.clock());
    const { result: batches, requests } = await countingRequests(this.ctx, () => flush(this.ctx));
    return { removed, batches, requests };
  }

  /** Writes a snapshot and collects what every device has read, unless another device is compacting. */
  async compact(opts: CompactOptions = {}): Promise<CompactResult & { requests: RequestsUsed }> {
    const { result, requests } = await countingRequests(this.ctx, async () => {
      await flush(this.ctx);
      await this.pullOnce({ allowCompaction: false });
      await sweepLog(this.ctx);
      return compact(this.ctx, opts);
    });
    return { ...result, requests };
  }

  /**
   * Moves this device, and the account if it is not there yet, to another backend (a bucket, a
   * directory or an `offsite serve` server): sends what is pending and reads what is new, so
   * nothing exists only here; copies the whole account (migrate.ts: byte for byte, write-once,
   * checked by listing it back); then uses the new backend, reading its log from the start once
   * (only batches it lacks are fetched). Run it on every device; each run only adds what is
   * missing. The old backend is left as it was.
   */
  async migrate(toUrl: string, opts: { token?: string; credentials?: S3Credentials; backend?: SyncBackend } = {}): Promise<MigrateResult> {
    const ctx = this.ctx;
    const from = ctx.state.get('storageUrl');
    const target = opts.backend ?? openSyncBackend(toUrl, { token: opts.token, credentials: opts.credentials });
    const targetBefore = target.requestStats();
    let switched = false;
    try {
      const { result: copy, requests: sourceRequests } = await countingRequests(ctx, async () => {
        await flush(ctx);
        await this.pullOnce({ allowCompaction: false });
        return copyAccount(ctx, target, userIdFor(ctx.keys, backendName(toUrl)));
      });
      // From here on the device works on the new backend, under the account's id there.
      const old = ctx.backend;
      const ownedOld = this.ownsBackend;
      ctx.backend = target;
      this.ownsBackend = opts.backend === undefined;
      switched = true;
      ctx.state.setMeta({ storageUrl: toUrl, cursor: null });
      this.useUserId(copy.targetUserId);
      await keepServerToken(ctx.state.dir, toUrl, opts.token);
      if (ownedOld) await old.close();
      const published = ctx.state.get('cursorPublishedAt');
      await this.pullOnce({ allowCompaction: false });
      // The new backend needs this device's read position (else it holds back collection there).
      if (ctx.state.get('cursorPublishedAt') === published) await publishCursor(ctx);
      return { from, to: toUrl, copy, sourceRequests, targetRequests: requestsBetween(targetBefore, target.requestStats()), entries: ctx.state.entryCount() };
    } finally {
      if (!switched && opts.backend === undefined) await target.close();
    }
  }

  /** Every entry on this device, oldest first. */
  entries(): SyncEntry[] {
    return [...this.ctx.state.entries()];
  }

  entryCount(): number {
    return this.ctx.state.entryCount();
  }

  /** This device, every device of the account, pending work, problems, requests used. */
  async status(): Promise<SyncStatus> {
    return deviceStatus(this.ctx);
  }

  /**
   * Stops waiting for another device: removes its registration and read position from the
   * backend (so it holds back no collection, on any device) and ignores its log here. For a
   * device that is not this account's (a ForeignDevice problem), or one whose log is damaged
   * for good; batches of it already read stay.
   */
  async dropDevice(deviceId: string): Promise<{ deviceId: string; removedFromBackend: boolean; ignored: true }> {
    assertId(deviceId, 'device id');
    if (deviceId === this.ctx.deviceId) throw new SyncError('InvalidEntry', `${deviceId} is this device: to remove it, run uninstall`);
    const { devices } = await this.ctx.backend.listDevices({ userId: this.ctx.userId });
    const removedFromBackend = devices.some((d) => d.deviceId === deviceId);
    if (removedFromBackend) await this.ctx.backend.uninstall({ userId: this.ctx.userId, deviceId });
    this.ctx.state.setIgnoredDevice(deviceId, 'dropped');
    this.ctx.state.setStuck(this.ctx.state.stuck().filter((s) => s.deviceId !== deviceId));
    return { deviceId, removedFromBackend, ignored: true };
  }

  /** Removes this device from the account and deletes its local state (secret included). */
  async uninstall(): Promise<void> {
    await this.ctx.backend.uninstall(deviceRef(this.ctx));
    await this.discard();
  }

  async close(): Promise<void> {
    this.ctx.state.close();
    if (this.ownsBackend) await this.ctx.backend.close();
  }

  /**
   * Undoes a failed init or join: the device record (best effort: a registered device without a
   * cursor would hold back garbage collection until the retention passes) and the local state.
   */
  private async abandon(): Promise<void> {
    if (this.registered) await this.ctx.backend.uninstall(deviceRef(this.ctx)).catch(() => undefined);
    await this.discard();
  }

  /** Closes and removes the state files this device created (the directory too, if left empty). */
  private async discard(): Promise<void> {
    const dir = this.ctx.state.dir;
    await this.close();
    for (const f of ['sync.db', 'sync.db-wal', 'sync.db-shm', 'secret']) rmSync(path.join(dir, f), { force: true });
    removeServerToken(dir);
    // Commands the hook spooled and no pusher sent yet leave with the device.
    rmSync(path.join(dir, HISTORY_SPOOL_DIR), { recursive: true, force: true });
    try {
      rmdirSync(dir);
    } catch {
      // Not empty (the user keeps other files there): leave it.
    }
  }
}

function contextFor(state: SyncState, keys: SyncKeys, backend: SyncBackend, opts: SyncClientOptions): DeviceContext {
  return {
    state,
    keys,
    backend,
    userId: state.get('userId'),
    deviceId: state.get('deviceId'),
    ownLogChecked: false,
    lastAttemptTime: 0,
    freshnessCheckIntervalMs: opts.freshnessCheckIntervalMs ?? DEFAULT_FRESHNESS_CHECK_INTERVAL_MS,
    clock: opts.clock ?? Date.now,
    batching: { ...DEFAULT_BATCHING, ...opts.batching },
    compaction: { ...DEFAULT_COMPACTION, ...opts.compaction },
    cursorPublishIntervalMs: opts.cursorPublishIntervalMs ?? DEFAULT_CURSOR_PUBLISH_INTERVAL_MS,
  };
}

function entryBody(entry: unknown, index: number): { id: string; body: string } {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new SyncError('InvalidEntry', `entry ${index + 1} is not a JSON object`);
  const id = (entry as { id?: unknown }).id;
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID_LENGTH) throw new SyncError('InvalidEntry', `entry ${index + 1} needs an "id" string of 1-${MAX_ID_LENGTH} characters`);
  const body = JSON.stringify(entry);
  if (Buffer.byteLength(body) > MAX_ENTRY_BYTES) throw new SyncError('InvalidEntry', `entry ${index + 1} is larger than ${MAX_ENTRY_BYTES / 1024} KiB of JSON`);
  return { id, body };
}

/** An http backend's token given explicitly (or by environment) is kept for later runs (0600). */
async function keepServerToken(stateDir: string, url: string, token: string | undefined): Promise<void> {
  const t = token ?? process.env[SYNC_TOKEN_ENV];
  if (backendKindOfUrl(url) === 'http' && t) await saveServerToken(stateDir, t);
}
