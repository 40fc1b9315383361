// Every exit code of the CLI, and which error maps to which: scripts can switch on them.
import { isStorageError } from '../storage/index.js';
import { isSnapshotError } from '../snapshot/index.js';
import { UsageError } from './output.js';

export const EXIT = {
  ok: 0,
  /** Something failed (including a doctor check or a failed verification). */
  failure: 1,
  /** Bad arguments, a bad URL or key. */
  usage: 2,
  notFound: 3,
  /** Credentials refused, or permission missing. */
  denied: 4,
  noSuchBucket: 5,
  /** A conditional write lost (the object exists or changed). */
  precondition: 6,
  /** The store stayed unreachable or overloaded after the retries. */
  transient: 7,
  /** Stored data failed its integrity check. */
  corrupted: 8,
  /** The object is in an archive class and must be restored first. */
  archived: 9,
} as const;

export function exitCodeFor(e: unknown): number {
  if (e instanceof UsageError) return EXIT.usage;
  if (isSnapshotError(e)) {
    if (e.code === 'SnapshotCorrupted' || e.code === 'NotASnapshot') return EXIT.corrupted;
    return EXIT.usage;
  }
  if (isStorageError(e)) {
    switch (e.code) {
      case 'NotFound':
        return EXIT.notFound;
      case 'InvalidCredentials':
      case 'AccessDenied':
        return EXIT.denied;
      case 'NoSuchBucket':
        return EXIT.noSuchBucket;
      case 'PreconditionFailed':
        return EXIT.precondition;
      case 'Transient':
        return EXIT.transient;
      case 'ArchivedObject':
        return EXIT.archived;
      case 'InvalidUrl':
      case 'InvalidKey':
        return EXIT.usage;
      default:
        return EXIT.failure;
    }
  }
  return EXIT.failure;
}

/** A stable code for --json error output. */
export function errorCodeOf(e: unknown): string {
  if (e instanceof UsageError) return 'Usage';
  if (isSnapshotError(e) || isStorageError(e)) return e.code;
  const code = (e as { code?: unknown })?.code;
  return typeof code === 'string' ? code : 'Error';
}
