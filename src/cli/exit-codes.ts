// Every exit code of the CLI, and which error maps to which: scripts can switch on them. Errors
// are matched by their stable `code` (every layer's errors carry one), so this file does not
// load the layers it describes: `offsite put` starts without the archive engine's libraries.
import { UsageError } from './output.js';

export const EXIT = {
  ok: 0,
  /** Something failed (including a doctor check or a failed verification). */
  failure: 1,
  /** Bad arguments, a bad URL, key or config value. */
  usage: 2,
  notFound: 3,
  /** Credentials refused, or permission missing. */
  denied: 4,
  noSuchBucket: 5,
  /** A conditional write lost (the object exists or changed). */
  precondition: 6,
  /** The store stayed unreachable or overloaded after the retries. */
  transient: 7,
  /** Stored data failed its integrity check, or nothing proves Offsite wrote it. */
  corrupted: 8,
  /** The object is in an archive class and must be restored first. */
  archived: 9,
} as const;

const BY_CODE: Record<string, number> = {
  // storage
  NotFound: EXIT.notFound,
  InvalidCredentials: EXIT.denied,
  AccessDenied: EXIT.denied,
  NoSuchBucket: EXIT.noSuchBucket,
  PreconditionFailed: EXIT.precondition,
  Transient: EXIT.transient,
  ArchivedObject: EXIT.archived,
  InvalidUrl: EXIT.usage,
  InvalidKey: EXIT.usage,
  // snapshots
  SnapshotCorrupted: EXIT.corrupted,
  NotASnapshot: EXIT.corrupted,
  UnsupportedSnapshotFormat: EXIT.usage,
  InvalidSnapshotKey: EXIT.usage,
  InvalidSnapshotOptions: EXIT.usage,
  SnapshotMetadataTooLarge: EXIT.usage,
  NotSerializable: EXIT.usage,
  // archive configuration, policies
  InvalidConfig: EXIT.usage,
  SessionNotFound: EXIT.usage,
  // archive restore and verify: what the bucket holds is not what was uploaded, or cannot be vouched for
  ArchiveCorrupted: EXIT.corrupted,
  ManifestForged: EXIT.corrupted,
  ManifestUnsigned: EXIT.usage,
  ManifestKeyMissing: EXIT.usage,
  SessionNotArchived: EXIT.notFound,
  InvalidPolicy: EXIT.usage,
  // codec: damaged or hostile data, or bad keys and rates
  UnsafeArchiveEntry: EXIT.corrupted,
  UnsupportedArchiveEntry: EXIT.corrupted,
  InvalidArchive: EXIT.corrupted,
  ArchiveMismatch: EXIT.corrupted,
  DecryptionFailed: EXIT.corrupted,
  InvalidRecipient: EXIT.usage,
  InvalidIdentity: EXIT.usage,
  InvalidRate: EXIT.usage,
  InvalidArgument: EXIT.usage,
  // backup jobs
  SourceMissing: EXIT.notFound,
  SourceChanged: EXIT.failure,
  SourceFailed: EXIT.failure,
  SourceBusy: EXIT.failure,
  UnsupportedSource: EXIT.usage,
  Busy: EXIT.failure,
  SnapshotFailed: EXIT.failure,
  UploadFailed: EXIT.failure,
  Corrupted: EXIT.corrupted,
  Forged: EXIT.corrupted,
  Unauthenticated: EXIT.corrupted,
  NeedsManifestKey: EXIT.usage,
  CheckFailed: EXIT.corrupted,
  TargetExists: EXIT.usage,
  NeedsIdentity: EXIT.usage,
  InvalidTarget: EXIT.usage,
  // PostgreSQL tools (InvalidUrl above)
  AuthFailed: EXIT.denied,
  ConnectionFailed: EXIT.failure,
  ToolMissing: EXIT.failure,
  DumpFailed: EXIT.failure,
  RestoreFailed: EXIT.failure,
  // sync
  InvalidSecret: EXIT.usage,
  WrongSecret: EXIT.denied,
  Tampered: EXIT.corrupted,
  Replayed: EXIT.corrupted,
  OutOfOrder: EXIT.corrupted,
  MissingBatch: EXIT.corrupted,
  Forked: EXIT.corrupted,
  Withheld: EXIT.corrupted,
  UnsafeStateDir: EXIT.usage,
  Conflict: EXIT.precondition,
  NotJoined: EXIT.usage,
  AlreadyJoined: EXIT.usage,
  InvalidEntry: EXIT.usage,
  UnsupportedSyncFormat: EXIT.failure,
  Unauthorized: EXIT.denied,
  Forbidden: EXIT.denied,
  ServerUnreachable: EXIT.transient,
  BadRequest: EXIT.failure,
  ServerError: EXIT.failure,
  InvalidSyncConfig: EXIT.usage,
  // console: its key file and sealed settings
  KeyMissing: EXIT.usage,
  WrongKey: EXIT.denied,
  NotConfigured: EXIT.usage,
};

/** A stable code for --json error output and for the exit code. */
export function errorCodeOf(e: unknown): string {
  if (e instanceof UsageError) return 'Usage';
  const code = (e as { code?: unknown })?.code;
  return typeof code === 'string' ? code : 'Error';
}

export function exitCodeFor(e: unknown): number {
  if (e instanceof UsageError) return EXIT.usage;
  return BY_CODE[errorCodeOf(e)] ?? EXIT.failure;
}
