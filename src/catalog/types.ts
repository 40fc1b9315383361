/**
 * The catalog: a local SQLite index of what was uploaded where. It is an index, not the truth:
 * every archive also has a manifest object beside it in the bucket, and rebuildFromManifests()
 * recreates the archive rows from those alone.
 *
 * All calls are synchronous (better-sqlite3) and each is atomic. Several Catalog instances,
 * in one process or many, may share a file: writers queue on SQLite's lock for up to 5 s, then
 * fail with CatalogBusy. Timestamps are ISO-8601 UTC strings. Nothing stored here may be a
 * secret: destinations are URLs without credentials (refused otherwise), and operation details
 * are the caller's responsibility.
 */
import type { ArchiveManifest } from './manifest.js';

export type ArchiveStatus = 'pending' | 'uploading' | 'done' | 'failed';
export type Compression = 'none' | 'gzip';

/**
 * What vouches for a done archive's facts (size, SHA-256, encryption, compression):
 * 'local': this catalog's own upload recorded them. Otherwise `catalog rebuild` read them from
 * the manifest in the bucket, and this is what checking that manifest's MAC with the user's
 * manifest key said: 'authentic'; 'unsigned' (no MAC: an older Offsite, or anyone); 'forged'
 * (a MAC of the user's key that does not match: altered); 'no-key' (signed, but the key was not
 * there to check); 'other-key' (signed by a key that is not the user's).
 */
export type ManifestAuth = 'local' | 'authentic' | 'unsigned' | 'forged' | 'no-key' | 'other-key';

/** One session archive at one destination. */
export interface ArchiveRow {
  id: number;
  sessionId: string;
  year: number;
  key: string;
  manifestKey: string;
  /** Storage URL without secrets. */
  destination: string;
  status: ArchiveStatus;
  /** S3 multipart upload id, kept for resume/abort; null once done. */
  uploadId: string | null;
  /** Stored object bytes. */
  size: number | null;
  /** SHA-256 of the stored object (after compression and encryption). */
  sha256: string | null;
  etag: string | null;
  storageClass: string | null;
  compression: Compression;
  encrypted: boolean;
  fileCount: number | null;
  sourceBytes: number | null;
  startedAt: string | null;
  completedAt: string | null;
  /** Why the last attempt failed; null unless status is 'failed'. */
  error: string | null;
  verifiedAt: string | null;
  /** Outcome of the last verify: true passed, false found a problem, null never verified. */
  verifyOk: boolean | null;
  /** What the last verify said ("head ok", "sha256 mismatch: ..."). */
  verifyResult: string | null;
  /** SHA-256 of the manifest's bytes as uploaded (or as read by a rebuild); null before that. */
  manifestSha256: string | null;
  /** What vouches for the facts of a done row; null until done. */
  manifestAuth: ManifestAuth | null;
}

export interface BeginArchiveInput {
  sessionId: string;
  year: number;
  key: string;
  manifestKey: string;
  destination: string;
  compression: Compression;
  encrypted: boolean;
  storageClass: string | null;
}

export interface BeginArchiveOptions {
  /** Restart an archive that is already 'done' (re-upload on purpose) instead of throwing AlreadyDone. */
  force?: boolean;
}

export interface CompleteArchiveInput {
  size: number;
  sha256: string;
  etag: string;
  fileCount: number;
  sourceBytes: number;
  /** SHA-256 of the manifest bytes written beside the archive. */
  manifestSha256?: string;
}

export interface ArchiveFilter {
  year?: number;
  status?: ArchiveStatus;
  destination?: string;
}

export interface NoteInput {
  sessionId: string;
  year: number;
  key: string;
  destination: string;
  sha256: string;
  size: number;
}

export interface NoteRow extends NoteInput {
  id: number;
  recordedAt: string;
}

export interface BackupRecordInput {
  job: string;
  /** The backup's file name, the same locally and in the bucket. */
  name: string;
  /** Bytes of the backup file (after compression and encryption). */
  size: number;
  /** SHA-256 of the backup file. */
  sha256: string;
  encrypted: boolean;
  compression: Compression;
}

/** A backup a job made, as recorded when its local copy was written (and when it was uploaded). */
export interface BackupRecord extends BackupRecordInput {
  id: number;
  /** Storage URL (no secrets) it was uploaded to; null while it exists only locally. */
  destination: string | null;
  createdAt: string;
  uploadedAt: string | null;
}

export type OperationStatus = 'running' | 'ok' | 'failed' | 'interrupted';

export interface OperationResult {
  status: Exclude<OperationStatus, 'running'>;
  bytes: number;
  seconds: number;
  error?: string;
  /** Requests made, by type (as Storage.stats() counts them). */
  requests?: Record<string, number>;
}

export interface OperationRow {
  id: number;
  kind: string;
  /** The detail object given to startOperation, as stored (JSON round trip). */
  detail: unknown;
  status: OperationStatus;
  startedAt: string;
  finishedAt: string | null;
  bytes: number | null;
  seconds: number | null;
  error: string | null;
  requests: Record<string, number> | null;
  /** Process that ran it, and on which host. */
  pid: number;
  host: string;
}

export interface ThroughputSample {
  bytes: number;
  seconds: number;
  /** What was measured: 'upload', 'download', 'verify', ... Estimates never mix kinds. */
  kind: string;
}

export type RestoreTier = 'Expedited' | 'Standard' | 'Bulk';
export type RestoreStatus = 'requested' | 'ready' | 'done';

export interface RestoreRequestInput {
  sessionId: string;
  key: string;
  destination: string;
  tier: RestoreTier;
  /** How long the store keeps the restored copy readable. */
  days: number;
}

export interface RestoreRow extends RestoreRequestInput {
  id: number;
  status: RestoreStatus;
  requestedAt: string;
  readyAt: string | null;
  doneAt: string | null;
}

export interface TotalsRow {
  year: number;
  storageClass: string | null;
  /** Rows in any status. */
  archives: number;
  /** Stored bytes of the 'done' archives. */
  bytes: number;
  done: number;
  failed: number;
}

/** A manifest, with the key it was read from when that is not the usual `<key>.manifest.json`. */
export interface LocatedManifest {
  manifest: ArchiveManifest;
  manifestKey: string;
  /** SHA-256 of the manifest's bytes as read. */
  manifestSha256?: string;
  /** The check of its MAC (default 'unsigned': the catalog cannot know better). Never 'local'. */
  auth?: Exclude<ManifestAuth, 'local'>;
}

export interface RebuildResult {
  /** 'done' rows written from manifests. */
  archives: number;
  /** Rows of that destination that were deleted: done rows with no manifest any more. */
  removed: number;
  /** Incomplete rows without a manifest, left in place (their upload ids are still needed to abort). */
  keptIncomplete: number;
}

export interface Catalog {
  /** The database file. */
  readonly file: string;

  // Archives ---------------------------------------------------------------------------

  /**
   * Start (or restart) an upload: inserts the row, or resets an existing non-done row, to
   * 'uploading' with startedAt now and error, size, sha256 and verify results cleared. A reset
   * row keeps its uploadId: it belongs to the previous attempt, which the caller resumes or
   * aborts (read getArchive() first to see that attempt's settings).
   * A 'done' row is never reset silently: throws AlreadyDone unless `force`, which restarts it
   * (uploadId cleared, as a done row has none). Atomic against other writers.
   */
  beginArchive(input: BeginArchiveInput, opts?: BeginArchiveOptions): ArchiveRow;
  /** Record (or clear, with null) the multipart upload id of a non-done archive. Throws NotFound, AlreadyDone. */
  setUploadId(id: number, uploadId: string | null): void;
  /**
   * The only way to 'done': call it after the store confirmed the object and its checksum
   * matched. Only from 'uploading' (InvalidState otherwise, AlreadyDone if done, NotFound).
   * Clears uploadId and error, sets completedAt; manifestAuth becomes 'local'.
   */
  completeArchive(id: number, result: CompleteArchiveInput): ArchiveRow;
  /** Mark an attempt failed, keeping its uploadId. A done archive is never demoted: AlreadyDone. */
  failArchive(id: number, error: string): void;
  getArchive(destination: string, key: string): ArchiveRow | undefined;
  /**
   * The session's archive at `destination` that is done, whatever its key (the key depends on
   * the settings of the run that made it): the most recently completed one when there are several.
   */
  findDoneArchive(destination: string, sessionId: string): ArchiveRow | undefined;
  findArchivesBySession(sessionId: string): ArchiveRow[];
  /** Ordered by year, key, destination. */
  listArchives(filter?: ArchiveFilter): ArchiveRow[];
  /** Rows a run must resume or clean up: pending, uploading (a killed run) and failed; oldest first. */
  incompleteArchives(destination: string): ArchiveRow[];
  /** Record a verify outcome on a done archive (InvalidState otherwise). Does not change status. */
  recordVerify(id: number, ok: boolean, detail: string): void;

  // Session notes ----------------------------------------------------------------------

  /** Insert or update the note object at (destination, key). */
  recordNote(note: NoteInput): NoteRow;
  listNotes(sessionId?: string): NoteRow[];

  // Backups of backup jobs -------------------------------------------------------------

  /**
   * Record the backup file a run just wrote. A row with the same job and name (a fixed
   * key_template) is replaced, and is no longer marked uploaded.
   */
  recordBackup(input: BackupRecordInput): BackupRecord;
  /** The store confirmed the object (size and SHA-256). NotFound if the backup is not recorded. */
  markBackupUploaded(job: string, name: string, destination: string): void;
  getBackup(job: string, name: string): BackupRecord | undefined;
  /** The backup is gone from both sides (prune). No error if it was not recorded. */
  forgetBackup(job: string, name: string): void;

  // Operation log ----------------------------------------------------------------------

  /** Log the start of a run; returns its id for finishOperation. `detail` is stored as JSON. */
  startOperation(kind: string, detail: object): number;
  /** Record how a run ended. Overrides 'interrupted' too: the run's own word is better. NotFound. */
  finishOperation(opId: number, result: OperationResult): void;
  /** Newest first; with `kind`, only those. */
  recentOperations(limit: number, kind?: string): OperationRow[];
  /**
   * Mark 'interrupted' the running operations of this host whose process is gone (killed,
   * crashed); returns how many. Runs of other hosts are left alone: we cannot see their
   * processes. A dead run's pid reused by an unrelated process hides it until that one ends.
   */
  markStaleOperations(): number;

  // Throughput -------------------------------------------------------------------------

  /** Remember how fast a run went. Runs that moved nothing or took no time say nothing and are ignored. */
  recordThroughput(sample: ThroughputSample): void;
  /**
   * Bytes per second over the last `window` runs of `kind`, each run weighted by its duration
   * (total bytes / total seconds): undefined if there are none.
   */
  measuredThroughput(kind: string, window?: number): number | undefined;

  // Restores (archived storage classes) ------------------------------------------------

  /** Record a restore request; asking again for an object with an open request updates its tier and days. */
  recordRestoreRequest(input: RestoreRequestInput): RestoreRow;
  /** Requested or ready, oldest first. */
  pendingRestores(destination?: string): RestoreRow[];
  /** The restored copy is readable. Idempotent; InvalidState if already done, NotFound. */
  markRestoreReady(id: number): void;
  /** The data was fetched. Idempotent; NotFound. */
  markRestoreDone(id: number): void;

  // Status and rebuild -----------------------------------------------------------------

  /** Archive counts and stored bytes per (year, storage class), ordered by both. */
  totals(destination?: string): TotalsRow[];
  /**
   * In one transaction, make the destination's archive rows match its manifests: a 'done' row
   * per manifest (replacing whatever row had that key), done rows without a manifest removed.
   * Incomplete rows without a manifest are kept (see RebuildResult). Where the old row was
   * the same object (same size, SHA-256, encryption and compression), its local history
   * (startedAt, completedAt, verify results) is kept, and so is manifestAuth 'local' (with the
   * manifest SHA-256 recorded at upload, unless the new manifest is authentic); otherwise
   * completedAt is the manifest's createdAt and manifestAuth the manifest's `auth`.
   * A bare manifest is assumed to live at `<key>.manifest.json` (manifestKeyFor).
   */
  rebuildFromManifests(destination: string, manifests: Iterable<ArchiveManifest | LocatedManifest>): RebuildResult;

  /** Close the database. Further calls throw. */
  close(): void;
}
