/**
 * Sync errors. Like the other layers' errors, each has a stable `code` to switch on, and the
 * message says what to do. No message ever contains the user secret or an entry's content.
 */

export type SyncErrorCode =
  /** The secret is malformed or mistyped (its checksum does not match). */
  | 'InvalidSecret'
  /** A well-formed secret with no sync data for it at this storage URL. */
  | 'WrongSecret'
  /** A stored object fails authentication: changed, truncated or forged. */
  | 'Tampered'
  /** An authentic batch found where a newer one belongs: an old batch copied to a new place. */
  | 'Replayed'
  /** An authentic batch found at a position it was not sealed for (swapped or moved). */
  | 'OutOfOrder'
  /** A device's log skips a sequence number that never arrived. */
  | 'MissingBatch'
  /**
   * Two different authentic batches carry one (device, seq): two copies of one device's state
   * directory wrote (restored from a backup while the original ran on, or copied).
   */
  | 'Forked'
  /**
   * The store shows this device less than other devices have read, or an older snapshot or read
   * position than one already seen: it withholds data, or serves devices different views.
   */
  | 'Withheld'
  /** The state directory, or a file in it, belongs to another user or is a symbolic link. */
  | 'UnsafeStateDir'
  /** A write-once object already holds something else (a reused sequence number, a taken snapshot generation). */
  | 'Conflict'
  /** The state directory holds no sync device: run init or join first. */
  | 'NotJoined'
  /** The state directory already holds a device. */
  | 'AlreadyJoined'
  /** An entry that cannot be synced (not an object, no string id, too large). */
  | 'InvalidEntry'
  /** An object or state written by a newer Offsite, or in a format this one does not know. */
  | 'UnsupportedSyncFormat'
  /** The sync server refused the token (or none was given): set OFFSITE_SYNC_TOKEN. */
  | 'Unauthorized'
  /** The token is valid but not for this account (an account token reaches only its own account). */
  | 'Forbidden'
  /** The sync server could not be reached, or stayed overloaded, after the retries. */
  | 'ServerUnreachable'
  /** The sync server refused the request's shape (a client and server of different versions). */
  | 'BadRequest'
  /** The sync server failed, or answered something this client does not understand. */
  | 'ServerError'
  /** The sync config file or OFFSITE_SYNC_* variables are wrong or incomplete. */
  | 'InvalidSyncConfig';

export class SyncError extends Error {
  readonly code: SyncErrorCode;
  /** The bucket key or batch id the error is about, when there is one. */
  readonly key: string | undefined;

  constructor(code: SyncErrorCode, message: string, opts: { key?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = `${code}Error`;
    this.code = code;
    this.key = opts.key;
  }
}

export function isSyncError(e: unknown, code?: SyncErrorCode): e is SyncError {
  return e instanceof SyncError && (code === undefined || e.code === code);
}
