// A device's local sync state: one SQLite file (sync.db) in the state directory, beside the
// secret (a 0600 file). Local-first: entries pushed here are stored at once and readable before
// any upload; every step that matters (a batch number assigned, a batch applied, a snapshot
// merged) is one transaction, so a crash leaves the state before or after it.
//
// The invariant the rest relies on: a (device, seq) pair always means the same entries. A batch
// number is assigned to a fixed set of entries (the outbox row) before anything is uploaded;
// a retried upload re-seals exactly that payload.
import Database from 'better-sqlite3';
import { chmodSync, existsSync } from 'node:fs';
import path from 'node:path';
import { mkdirPrivate, writePrivateFile } from '../files/index.js';
import { payloadDigest } from './crypto.js';
import { SyncError } from './errors.js';
import { readPrivateFile, secureStateDir, SERVER_TOKEN_FILE } from './state-dir.js';
import type { BatchKind, BatchPosition, SyncEntry } from './types.js';

export const STATE_FORMAT = 1;
export const DB_FILE = 'sync.db';
const SECRET_FILE = 'secret';
/** Every file Offsite keeps in a state directory (checked by secureStateDir on every open). */
const STATE_FILES = [DB_FILE, `${DB_FILE}-wal`, `${DB_FILE}-shm`, `${DB_FILE}-journal`, SECRET_FILE, SERVER_TOKEN_FILE];
const BUSY_TIMEOUT_MS = 10_000;

export interface StateMeta {
  format: number;
  userId: string;
  deviceId: string;
  deviceName: string;
  storageUrl: string;
  createdAt: number;
  /** The backend's query cursor after the last pull. */
  cursor: string | null;
  nextSeq: number;
  /** The time of this device's last batch: the next one is later, whatever the wall clock does. */
  lastTime: number;
  /** Added to the local clock to get the store's clock (calibration). */
  clockOffsetMs: number;
  /** Batches up to this time were timed before the last correction, or not by the clock: not evidence of drift. */
  calibratedAfter: number;
  lastPushAt: number | null;
  lastPullAt: number | null;
  cursorPublishedAt: number | null;
  /** The newest snapshot generation merged or written here (0: none). */
  snapshotGeneration: number;
  /** The newest generation looked at while stuck (so the same snapshot is not fetched again). */
  snapshotChecked: number;
  /** Batches applied or sent since that snapshot: compaction is due when this grows large. */
  batchesSinceSnapshot: number;
  /** Storage requests made by this device, by operation, across runs. */
  requests: Record<string, number>;
  /** When the last pull began listing, on the store's clock (what the freshness check compares claims with). */
  lastPullStartedAt: number | null;
  /** When the published read positions of the other devices were last checked (freshness.ts). */
  freshnessCheckedAt: number | null;
  /** What that check found withheld: reported by every pull until this device holds it. */
  withheld: WithheldRecord[];
}

/** Keys added after the first state format: a state written before them reads these. */
const META_DEFAULTS: Partial<StateMeta> = { lastPullStartedAt: null, freshnessCheckedAt: null, withheld: [] };

export interface WithheldRecord {
  deviceId: string;
  /** This device holds less than `expected` of that device's log (0: not about a log position). */
  expected: number;
  message: string;
  since: number;
}

/** The newest read position of a device that this device has seen (sealed, so authentic). */
export interface Claim {
  deviceId: string;
  publishedAt: number;
  frontier: Record<string, number>;
  snapshotGeneration: number;
}

export interface StuckDevice {
  deviceId: string;
  /** The sequence number this device waits for. */
  expected: number;
  code: string;
  message: string;
  since: number;
}

export type IgnoreReason = 'foreign' | 'dropped';

export interface OutboxBatch {
  seq: number;
  kind: BatchKind;
  /** The plaintext payload, JSON: fixed when the seq was assigned. */
  payload: string;
}

export interface SnapshotContent {
  format: number;
  frontier: Record<string, number>;
  positions: Record<string, string>;
  cursor: string | null;
  entries: SyncEntry[];
  tombstones: string[];
}

export interface ApplyResult {
  added: SyncEntry[];
  deleted: string[];
}

/** An opened batch's content. */
export interface BatchPayload {
  entries?: SyncEntry[];
  deletions?: string[];
}

export class SyncState {
  private constructor(
    readonly dir: string,
    private readonly db: Database.Database,
  ) {}

  /** Creates the state of a new device; AlreadyJoined if the directory holds one. */
  static async create(dir: string, meta: Pick<StateMeta, 'userId' | 'deviceId' | 'deviceName' | 'storageUrl'>, secret: string, now: number): Promise<SyncState> {
    await mkdirPrivate(dir);
    // A directory that existed already keeps its mode from mkdir: tightened (or refused) here.
    secureStateDir(dir, STATE_FILES);
    const state = new SyncState(dir, openDb(path.join(dir, DB_FILE)));
    if (state.readMeta('deviceId') !== undefined) {
      state.close();
      throw new SyncError('AlreadyJoined', `${dir} already holds a sync device; use another --dir (OFFSITE_SYNC_DIR), or "offsite sync uninstall" first`);
    }
    const initial: StateMeta = {
      format: STATE_FORMAT,
      ...meta,
      createdAt: now,
      cursor: null,
      nextSeq: 1,
      lastTime: 0,
      clockOffsetMs: 0,
      calibratedAfter: 0,
      lastPushAt: null,
      lastPullAt: null,
      cursorPublishedAt: null,
      snapshotGeneration: 0,
      snapshotChecked: 0,
      batchesSinceSnapshot: 0,
      requests: {},
      lastPullStartedAt: null,
      freshnessCheckedAt: null,
      withheld: [],
    };
    try {
      // The secret first, 0600 from its creation, through a new temp file (O_EXCL, O_NOFOLLOW)
      // renamed into place: never written through whatever is at its name.
      await writePrivateFile(path.join(dir, SECRET_FILE), `${secret}\n`);
    } catch (e) {
      state.close();
      throw e;
    }
    state.write(() => state.setMeta(initial), true);
    return state;
  }

  /** Opens an existing state; NotJoined if there is none. */
  static open(dir: string): SyncState {
    // Check first: opening would create an empty database in a directory that has none.
    if (!existsSync(path.join(dir, DB_FILE))) throw new SyncError('NotJoined', `no sync device in ${dir}: run "offsite sync init" (first device) or "offsite sync join SECRET"`);
    secureStateDir(dir, STATE_FILES);
    const state = new SyncState(dir, openDb(path.join(dir, DB_FILE)));
    const format = state.readMeta('format');
    if (format === undefined) {
      state.close();
      throw new SyncError('NotJoined', `no sync device in ${dir}: run "offsite sync init" or "offsite sync join SECRET"`);
    }
    if (format > STATE_FORMAT) {
      state.close();
      throw new SyncError('UnsupportedSyncFormat', `${dir} was written by a newer Offsite (state format ${format}); upgrade Offsite`);
    }
    return state;
  }

  /**
   * Runs `fn` in one write transaction. `durable`: committed with a full fsync, for the
   * transactions that create data (pushed entries, deletions, the entries a batch number
   * stands for). The others only record progress (a batch sent, a batch applied), which a
   * power cut may undo and the next push or pull redoes, unchanged.
   */
  private write<T>(fn: () => T, durable = false): T {
    if (!durable) return this.db.transaction(fn).immediate();
    this.db.pragma('synchronous = FULL');
    try {
      return this.db.transaction(fn).immediate();
    } finally {
      this.db.pragma('synchronous = NORMAL');
    }
  }

  readSecret(): string {
    return readPrivateFile(path.join(this.dir, SECRET_FILE)).trim();
  }

  get<K extends keyof StateMeta>(key: K): StateMeta[K] {
    const stored = this.readMeta(key);
    const value = stored === undefined ? (META_DEFAULTS[key] as StateMeta[K] | undefined) : stored;
    if (value === undefined) throw new SyncError('NotJoined', `sync state in ${this.dir} is incomplete (no ${key}); join again in a new directory`);
    return value;
  }

  setMeta(values: Partial<StateMeta>): void {
    const put = this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
    this.db.transaction(() => {
      for (const [k, v] of Object.entries(values)) put.run(k, JSON.stringify(v));
    })();
  }

  private readMeta<K extends keyof StateMeta>(key: K): StateMeta[K] | undefined {
    const row = this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
    return row ? (JSON.parse(row.value) as StateMeta[K]) : undefined;
  }

  /** Adds the request counts of one operation to the device's running totals. */
  addRequests(requests: Record<string, number>): void {
    this.write(() => {
      const totals = { ...this.get('requests') };
      for (const [op, n] of Object.entries(requests)) if (n > 0) totals[op] = (totals[op] ?? 0) + n;
      this.setMeta({ requests: totals });
    });
  }

  /**
   * Stores entries pushed on this device (not yet in a batch). Existing ids and deleted ids are
   * skipped. `durable: false` when batches are assigned right after: that commit's fsync covers
   * this one too (WAL commits reach the disk in order).
   */
  addPending(entries: { id: string; body: string }[], now: number, durable = true): { added: number; duplicates: number; alreadyDeleted: number } {
    const me = this.get('deviceId');
    const tombstoned = this.db.prepare('SELECT 1 FROM tombstones WHERE id = ?');
    const insert = this.db.prepare('INSERT OR IGNORE INTO entries (id, body, device, seq, added_at) VALUES (?, ?, ?, NULL, ?)');
    return this.write(() => {
      const counts = { added: 0, duplicates: 0, alreadyDeleted: 0 };
      for (const e of entries) {
        if (tombstoned.get(e.id)) counts.alreadyDeleted++;
        else if (insert.run(e.id, e.body, me, now).changes > 0) counts.added++;
        else counts.duplicates++;
      }
      return counts;
    }, durable);
  }

  /** Deletes entries here and records tombstones to send. Returns how many entries were present. */
  deleteLocal(ids: string[], now: number): { removed: number; tombstones: number } {
    const me = this.get('deviceId');
    const remove = this.db.prepare('DELETE FROM entries WHERE id = ?');
    const tomb = this.db.prepare('INSERT OR IGNORE INTO tombstones (id, device, seq, deleted_at) VALUES (?, ?, NULL, ?)');
    return this.write(() => {
      const counts = { removed: 0, tombstones: 0 };
      for (const id of ids) {
        counts.removed += remove.run(id).changes;
        counts.tombstones += tomb.run(id, me, now).changes;
      }
      return counts;
    }, true);
  }

  pendingSummary(): { entries: number; deletions: number; outbox: number; bytes: number; oldestAt: number | null } {
    const e = this.db.prepare('SELECT COUNT(*) AS n, COALESCE(SUM(LENGTH(body)), 0) AS bytes, MIN(added_at) AS oldest FROM entries WHERE seq IS NULL').get() as { n: number; bytes: number; oldest: number | null };
    const d = this.db.prepare('SELECT COUNT(*) AS n, MIN(deleted_at) AS oldest FROM tombstones WHERE seq IS NULL').get() as { n: number; oldest: number | null };
    const o = this.db.prepare('SELECT COUNT(*) AS n FROM outbox').get() as { n: number };
    const oldest = [e.oldest, d.oldest].filter((x): x is number => x !== null);
    return { entries: e.n, deletions: d.n, outbox: o.n, bytes: e.bytes, oldestAt: oldest.length > 0 ? Math.min(...oldest) : null };
  }

  /**
   * Gives batch numbers to everything pending: entries in push order, at most `maxEntries` and
   * about `maxBytes` of JSON per batch, then deletions. Each batch's payload is fixed here.
   */
  assignBatches(limits: { maxEntries: number; maxBytes: number }, now: number): number {
    const addOutbox = this.db.prepare('INSERT INTO outbox (seq, kind, payload, created_at) VALUES (?, ?, ?, ?)');
    // Pending rows are read once in push order; a batch is a run of consecutive pending rowids,
    // so one UPDATE over its rowid range numbers it (rows already numbered are not touched).
    const numberEntries = this.db.prepare('UPDATE entries SET seq = ? WHERE seq IS NULL AND rowid BETWEEN ? AND ?');
    const numberTombstones = this.db.prepare('UPDATE tombstones SET seq = ? WHERE seq IS NULL AND rowid BETWEEN ? AND ?');
    return this.write(() => {
      let seq = this.get('nextSeq');
      const first = seq;
      let chosen: { rowid: number; body: string }[] = [];
      let bytes = 0;
      const closeEntries = () => {
        numberEntries.run(seq, chosen[0]!.rowid, chosen[chosen.length - 1]!.rowid);
        addOutbox.run(seq++, 'entries', `{"entries":[${chosen.map((r) => r.body).join(',')}]}`, now);
        chosen = [];
        bytes = 0;
      };
      // .all(): better-sqlite3 allows no write while a statement is being iterated.
      for (const r of this.db.prepare('SELECT rowid, body FROM entries WHERE seq IS NULL ORDER BY rowid').all() as { rowid: number; body: string }[]) {
        if (chosen.length > 0 && (chosen.length >= limits.maxEntries || bytes + r.body.length > limits.maxBytes)) closeEntries();
        chosen.push(r);
        bytes += r.body.length + 1;
      }
      if (chosen.length > 0) closeEntries();
      let ids: { rowid: number; id: string }[] = [];
      const closeTombstones = () => {
        numberTombstones.run(seq, ids[0]!.rowid, ids[ids.length - 1]!.rowid);
        addOutbox.run(seq++, 'deletions', JSON.stringify({ deletions: ids.map((r) => r.id) }), now);
        ids = [];
      };
      for (const r of this.db.prepare('SELECT rowid, id FROM tombstones WHERE seq IS NULL ORDER BY rowid').all() as { rowid: number; id: string }[]) {
        if (ids.length >= limits.maxEntries) closeTombstones();
        ids.push(r);
      }
      if (ids.length > 0) closeTombstones();
      this.setMeta({ nextSeq: seq });
      return seq - first;
    }, true);
  }

  outbox(): OutboxBatch[] {
    return this.db.prepare('SELECT seq, kind, payload FROM outbox ORDER BY seq').all() as OutboxBatch[];
  }

  /**
   * An outbox batch is stored remotely (as `batchId`, at `time`): it leaves the outbox, this
   * device's frontier moves to it, its time becomes the last one used (only now, after the store
   * took it: a time that never reached the store constrains nothing), and the copy is recorded.
   */
  markSent(seq: number, batchId: string, time: number, digest: Buffer, fromClock: boolean): void {
    const me = this.get('deviceId');
    this.write(() => {
      this.db.prepare('DELETE FROM outbox WHERE seq = ?').run(seq);
      this.db
        .prepare('INSERT INTO frontier (device, seq, position) VALUES (?, ?, ?) ON CONFLICT (device) DO UPDATE SET seq = excluded.seq, position = excluded.position WHERE excluded.seq > frontier.seq')
        .run(me, seq, batchId);
      this.recordCopy({ id: batchId, deviceId: me, seq, time }, digest);
      this.setMeta({ batchesSinceSnapshot: this.get('batchesSinceSnapshot') + 1 });
      this.timeUsed(time, fromClock);
    });
  }

  /** Another copy of a sent batch is stored (republished under a fresh time). */
  markCopySent(copy: { id: string; deviceId: string; seq: number; time: number }, digest: Buffer, fromClock: boolean): void {
    this.write(() => {
      this.recordCopy(copy, digest);
      this.timeUsed(copy.time, fromClock);
    });
  }

  /** A batch time the store took: the next is later; one not read from the clock does not calibrate it. */
  private timeUsed(time: number, fromClock: boolean): void {
    this.setMeta({ lastTime: Math.max(this.get('lastTime'), time), ...(fromClock ? {} : { calibratedAfter: Math.max(this.get('calibratedAfter'), time) }) });
  }

  /**
   * Remembers a stored copy of a batch by its id, with the digest of its payload (null: it was
   * refused). Copies seen again are not opened again, and a second copy of a (device, seq) is
   * compared with the first by digest.
   */
  recordCopy(copy: { id: string; deviceId: string; seq: number; time: number }, digest: Buffer | null): void {
    this.db.prepare('INSERT OR IGNORE INTO batch_copies (id, device, seq, time, digest) VALUES (?, ?, ?, ?, ?)').run(copy.id, copy.deviceId, copy.seq, copy.time, digest);
  }

  knowsCopy(id: string): boolean {
    return this.db.prepare('SELECT 1 FROM batch_copies WHERE id = ?').get(id) !== undefined;
  }

  /** The payload digests of the authentic copies of (device, seq) seen here. */
  digestsAt(deviceId: string, seq: number): Buffer[] {
    const rows = this.db.prepare('SELECT digest FROM batch_copies WHERE device = ? AND seq = ? AND digest IS NOT NULL').all(deviceId, seq) as { digest: Buffer }[];
    return rows.map((r) => r.digest);
  }

  /** Forgets copies of batches timed before `time` (the retention): a copy that old is not expected again. */
  pruneCopies(time: number): void {
    this.db.prepare('DELETE FROM batch_copies WHERE time < ?').run(time);
  }

  /** Records a fork of a device's log at `seq`; false if it was known already. */
  recordFork(deviceId: string, seq: number, now: number): boolean {
    return this.db.prepare('INSERT OR IGNORE INTO forks (device, seq, detected_at) VALUES (?, ?, ?)').run(deviceId, seq, now).changes > 0;
  }

  forks(): { deviceId: string; seq: number; detectedAt: number }[] {
    return this.db.prepare('SELECT device AS deviceId, seq, detected_at AS detectedAt FROM forks ORDER BY device, seq').all() as { deviceId: string; seq: number; detectedAt: number }[];
  }

  claim(deviceId: string): Claim | undefined {
    const row = this.db.prepare('SELECT published_at AS publishedAt, frontier, generation FROM claims WHERE device = ?').get(deviceId) as { publishedAt: number; frontier: string; generation: number } | undefined;
    return row && { deviceId, publishedAt: row.publishedAt, frontier: JSON.parse(row.frontier) as Record<string, number>, snapshotGeneration: row.generation };
  }

  claims(): Claim[] {
    const rows = this.db.prepare('SELECT device, published_at AS publishedAt, frontier, generation FROM claims ORDER BY device').all() as { device: string; publishedAt: number; frontier: string; generation: number }[];
    return rows.map((r) => ({ deviceId: r.device, publishedAt: r.publishedAt, frontier: JSON.parse(r.frontier) as Record<string, number>, snapshotGeneration: r.generation }));
  }

  setClaim(c: Claim): void {
    this.db
      .prepare('INSERT INTO claims (device, published_at, frontier, generation) VALUES (?, ?, ?, ?) ON CONFLICT (device) DO UPDATE SET published_at = excluded.published_at, frontier = excluded.frontier, generation = excluded.generation')
      .run(c.deviceId, c.publishedAt, JSON.stringify(c.frontier), c.snapshotGeneration);
  }

  /**
   * This device's log is known to reach `seq` (found in the store, or read by other devices): its
   * next batches are numbered after it. Outbox batches numbered at or below it that are not
   * stored already (no copy with the same payload there) are numbered again after it, with
   * their entries and deletions: otherwise one number would carry two different batches (a
   * fork). Returns how many were renumbered.
   */
  continueAfterOwnSeq(seq: number): number {
    const me = this.get('deviceId');
    return this.write(() => {
      let next = Math.max(this.get('nextSeq'), seq + 1);
      let renumbered = 0;
      const relabelEntry = this.db.prepare('UPDATE entries SET seq = ? WHERE id = ? AND device = ? AND seq = ?');
      const relabelTombstone = this.db.prepare('UPDATE tombstones SET seq = ? WHERE id = ? AND device = ? AND seq = ?');
      for (const b of this.db.prepare('SELECT seq, kind, payload FROM outbox WHERE seq <= ? ORDER BY seq').all(seq) as OutboxBatch[]) {
        const digest = payloadDigest(b.payload);
        if (this.digestsAt(me, b.seq).some((d) => d.equals(digest))) {
          this.db.prepare('DELETE FROM outbox WHERE seq = ?').run(b.seq); // stored already: sent
          continue;
        }
        const p = JSON.parse(b.payload) as { entries?: { id: string }[]; deletions?: string[] };
        for (const e of p.entries ?? []) relabelEntry.run(next, e.id, me, b.seq);
        for (const id of p.deletions ?? []) relabelTombstone.run(next, id, me, b.seq);
        this.db.prepare('UPDATE outbox SET seq = ? WHERE seq = ?').run(next, b.seq);
        next++;
        renumbered++;
      }
      this.setMeta({ nextSeq: next });
      return renumbered;
    }, true);
  }

  /** Per device: the highest seq held with nothing missing below it, and that batch's id. */
  frontier(): Map<string, { seq: number; position: string | null }> {
    const rows = this.db.prepare('SELECT device, seq, position FROM frontier').all() as { device: string; seq: number; position: string | null }[];
    return new Map(rows.map((r) => [r.device, { seq: r.seq, position: r.position }]));
  }

  known(): Record<string, number> {
    return Object.fromEntries([...this.frontier()].map(([d, f]) => [d, f.seq]));
  }

  /**
   * Applies one opened batch if it is the next one of its device (else returns undefined:
   * another process applied it first, or it is not next). Entries whose id was deleted, or is
   * already present, are not added.
   */
  applyBatch(position: BatchPosition, batchId: string, payload: BatchPayload, digest: Buffer): ApplyResult | undefined {
    return this.write((): ApplyResult | undefined => {
      const current = (this.db.prepare('SELECT seq FROM frontier WHERE device = ?').get(position.deviceId) as { seq: number } | undefined)?.seq ?? 0;
      if (position.seq !== current + 1) return undefined;
      const result = this.applyPayload(position, payload);
      this.db.prepare('INSERT INTO frontier (device, seq, position) VALUES (?, ?, ?) ON CONFLICT (device) DO UPDATE SET seq = excluded.seq, position = excluded.position').run(position.deviceId, position.seq, batchId);
      this.recordCopy({ id: batchId, ...position }, digest);
      this.setMeta({ batchesSinceSnapshot: this.get('batchesSinceSnapshot') + 1 });
      return result;
    });
  }

  /**
   * Imports another authentic batch found at a position already held (a fork's other branch):
   * its entries and deletions, as for any batch (entries are a set and deletions win, so the
   * order does not matter and nothing is lost), without moving the frontier.
   */
  importCopy(position: BatchPosition, batchId: string, payload: BatchPayload, digest: Buffer): ApplyResult {
    return this.write(() => {
      const result = this.applyPayload(position, payload);
      this.recordCopy({ id: batchId, ...position }, digest);
      return result;
    });
  }

  /** Entries whose id was deleted, or is already present, are not added. */
  private applyPayload(position: BatchPosition, payload: BatchPayload): ApplyResult {
    const result: ApplyResult = { added: [], deleted: [] };
    if (position.kind === 'entries') {
      const tombstoned = this.db.prepare('SELECT 1 FROM tombstones WHERE id = ?');
      const insert = this.db.prepare('INSERT OR IGNORE INTO entries (id, body, device, seq, added_at) VALUES (?, ?, ?, ?, ?)');
      for (const entry of payload.entries ?? []) {
        if (tombstoned.get(entry.id)) continue;
        if (insert.run(entry.id, JSON.stringify(entry), position.deviceId, position.seq, Date.now()).changes > 0) result.added.push(entry);
      }
    } else {
      const remove = this.db.prepare('DELETE FROM entries WHERE id = ?');
      const tomb = this.db.prepare('INSERT OR IGNORE INTO tombstones (id, device, seq, deleted_at) VALUES (?, ?, ?, ?)');
      for (const id of payload.deletions ?? []) {
        if (remove.run(id).changes > 0) result.deleted.push(id);
        tomb.run(id, position.deviceId, position.seq, Date.now());
      }
    }
    return result;
  }

  /**
   * Folds a snapshot in: its tombstones delete, its entries are added unless deleted or present,
   * and each device's frontier becomes the larger of the two. Safe to repeat.
   */
  mergeSnapshot(snapshot: SnapshotContent, generation: number): ApplyResult {
    return this.write((): ApplyResult => {
      const result: ApplyResult = { added: [], deleted: [] };
      const remove = this.db.prepare('DELETE FROM entries WHERE id = ?');
      const tomb = this.db.prepare("INSERT OR IGNORE INTO tombstones (id, device, seq, deleted_at) VALUES (?, '', 0, ?)");
      for (const id of snapshot.tombstones) {
        if (remove.run(id).changes > 0) result.deleted.push(id);
        tomb.run(id, Date.now());
      }
      const tombstoned = this.db.prepare('SELECT 1 FROM tombstones WHERE id = ?');
      const insert = this.db.prepare("INSERT OR IGNORE INTO entries (id, body, device, seq, added_at) VALUES (?, ?, '', 0, ?)");
      const now = Date.now();
      for (const entry of snapshot.entries) {
        if (tombstoned.get(entry.id)) continue;
        if (insert.run(entry.id, JSON.stringify(entry), now).changes > 0) result.added.push(entry);
      }
      const frontier = this.db.prepare('INSERT INTO frontier (device, seq, position) VALUES (?, ?, ?) ON CONFLICT (device) DO UPDATE SET seq = excluded.seq, position = excluded.position WHERE excluded.seq > frontier.seq');
      for (const [device, seq] of Object.entries(snapshot.frontier)) frontier.run(device, seq, snapshot.positions[device] ?? null);
      if (generation > this.get('snapshotGeneration')) this.setMeta({ snapshotGeneration: generation });
      return result;
    });
  }

  /**
   * What a snapshot of this device's state holds, as JSON text: the entries and tombstones that
   * came in batches up to each device's frontier (or from an earlier snapshot), never entries
   * still waiting to be sent.
   */
  snapshotJson(cursor: string | null): { json: string; entries: number; frontier: Record<string, number> } {
    // Devices this one is stuck on: a device starting from the snapshot must re-read them from
    // their last good batch, because the cursor may already be past their later batches.
    const stuck = this.stuck().map((s) => ({ deviceId: s.deviceId, expected: s.expected }));
    const frontier = this.frontier();
    const covered = (device: string, seq: number | null) => seq === 0 || (seq !== null && seq <= (frontier.get(device)?.seq ?? 0));
    const bodies: string[] = [];
    for (const r of this.db.prepare('SELECT body, device, seq FROM entries ORDER BY rowid').iterate() as IterableIterator<{ body: string; device: string; seq: number | null }>) {
      if (covered(r.device, r.seq)) bodies.push(r.body);
    }
    const tombstones: string[] = [];
    for (const r of this.db.prepare('SELECT id, device, seq FROM tombstones').iterate() as IterableIterator<{ id: string; device: string; seq: number | null }>) {
      if (covered(r.device, r.seq)) tombstones.push(r.id);
    }
    const seqs = Object.fromEntries([...frontier].map(([d, f]) => [d, f.seq]));
    const positions = Object.fromEntries([...frontier].filter(([, f]) => f.position !== null).map(([d, f]) => [d, f.position]));
    const head = JSON.stringify({ format: 1, frontier: seqs, positions, cursor, stuck, tombstones });
    // Entries are stored as JSON text already: splice them in instead of parsing 100,000 objects.
    return { json: `${head.slice(0, -1)},"entries":[${bodies.join(',')}]}`, entries: bodies.length, frontier: seqs };
  }

  stuck(): StuckDevice[] {
    return this.db.prepare('SELECT device AS deviceId, expected, code, message, since FROM stuck ORDER BY device').all() as StuckDevice[];
  }

  setStuck(devices: StuckDevice[]): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM stuck').run();
      const add = this.db.prepare('INSERT INTO stuck (device, expected, code, message, since) VALUES (?, ?, ?, ?, ?)');
      for (const d of devices) add.run(d.deviceId, d.expected, d.code, d.message, d.since);
    })();
  }

  /**
   * Devices whose log this device no longer waits for (foreign.ts): 'foreign', found to be no
   * device of this account; 'dropped', by `drop-device`.
   */
  ignoredDevices(): Map<string, IgnoreReason> {
    const row = this.db.prepare("SELECT value FROM meta WHERE key = 'ignoredDevices'").get() as { value: string } | undefined;
    return new Map(Object.entries(row ? (JSON.parse(row.value) as Record<string, IgnoreReason>) : {}));
  }

  /** Marks a device ignored for `reason`, or (null) no longer. */
  setIgnoredDevice(deviceId: string, reason: IgnoreReason | null): void {
    this.write(() => {
      const all = Object.fromEntries(this.ignoredDevices());
      if (reason === null) delete all[deviceId];
      else all[deviceId] = reason;
      this.db.prepare("INSERT INTO meta (key, value) VALUES ('ignoredDevices', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(JSON.stringify(all));
    });
  }

  entryCount(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM entries').get() as { n: number }).n;
  }

  /** Every entry here, in the order they arrived. */
  *entries(): IterableIterator<SyncEntry> {
    for (const r of this.db.prepare('SELECT body FROM entries ORDER BY rowid').iterate() as IterableIterator<{ body: string }>) yield JSON.parse(r.body) as SyncEntry;
  }

  /**
   * Entries whose string `field` contains `text`, case-insensitively (Unicode lower case, not
   * only ASCII as LIKE would be), with no wildcards: `%`, `_` and `*` match themselves. `equals`:
   * fields that must hold exactly these strings. Ordered by the string `orderBy` field, largest
   * first (ISO times: newest first), then the most recently arrived; at most `limit`.
   */
  searchEntries(q: { field: string; text: string; equals?: Record<string, string>; orderBy: string; limit: number }): SyncEntry[] {
    const jsonPath = (name: string) => {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new SyncError('InvalidEntry', `"${name}" is not a field name to search by`);
      return `$.${name}`;
    };
    // A function of this connection (re-registering replaces it): text → its lower case.
    this.db.function('offsite_fold', { deterministic: true }, (v: unknown) => (typeof v === 'string' ? v.normalize('NFC').toLowerCase() : null));
    const where = ['instr(offsite_fold(json_extract(body, ?)), ?) > 0'];
    const params: unknown[] = [jsonPath(q.field), q.text.normalize('NFC').toLowerCase()];
    for (const [name, value] of Object.entries(q.equals ?? {})) {
      where.push('json_extract(body, ?) = ?');
      params.push(jsonPath(name), value);
    }
    const sql = `SELECT body FROM entries WHERE ${where.join(' AND ')} ORDER BY json_extract(body, ?) DESC, rowid DESC LIMIT ?`;
    const rows = this.db.prepare(sql).all(...params, jsonPath(q.orderBy), q.limit) as { body: string }[];
    return rows.map((r) => JSON.parse(r.body) as SyncEntry);
  }

  get isOpen(): boolean {
    return this.db.open;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

function openDb(file: string): Database.Database {
  const db = new Database(file);
  try {
    chmodSync(file, 0o600);
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    db.pragma('journal_mode = WAL');
    // Commits survive a crash of the process; only write(…, durable) also waits for the disk.
    db.pragma('synchronous = NORMAL');
    db.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      -- seq NULL: pushed here, not in a batch yet. device '' and seq 0: came from a snapshot.
      CREATE TABLE IF NOT EXISTS entries (id TEXT PRIMARY KEY, body TEXT NOT NULL, device TEXT NOT NULL, seq INTEGER, added_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS tombstones (id TEXT PRIMARY KEY, device TEXT NOT NULL, seq INTEGER, deleted_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, payload TEXT NOT NULL, created_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS frontier (device TEXT PRIMARY KEY, seq INTEGER NOT NULL, position TEXT);
      CREATE TABLE IF NOT EXISTS stuck (device TEXT PRIMARY KEY, expected INTEGER NOT NULL, code TEXT NOT NULL, message TEXT NOT NULL, since INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS entries_pending ON entries (seq) WHERE seq IS NULL;
      -- Copies of batches applied, sent or examined here, by id (time: when the batch was sealed; digest: of its payload, NULL if refused).
      CREATE TABLE IF NOT EXISTS batch_copies (id TEXT PRIMARY KEY, device TEXT NOT NULL, seq INTEGER NOT NULL, time INTEGER NOT NULL, digest BLOB);
      CREATE INDEX IF NOT EXISTS batch_copies_position ON batch_copies (device, seq);
      CREATE INDEX IF NOT EXISTS batch_copies_time ON batch_copies (time);
      CREATE TABLE IF NOT EXISTS forks (device TEXT NOT NULL, seq INTEGER NOT NULL, detected_at INTEGER NOT NULL, PRIMARY KEY (device, seq));
      -- The newest sealed read position seen of each device (freshness.ts): a store cannot lower it later.
      CREATE TABLE IF NOT EXISTS claims (device TEXT PRIMARY KEY, published_at INTEGER NOT NULL, frontier TEXT NOT NULL, generation INTEGER NOT NULL);
    `);
  } catch (e) {
    db.close();
    throw e;
  }
  return db;
}
