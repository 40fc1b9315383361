/**
 * Archive errors with a stable `code` (exit codes in src/cli/exit-codes.ts). The ones about
 * trust say what was found in the bucket and what the user can do; none carries a secret.
 */
export type ArchiveErrorCode =
  /** The stored object is not the one the catalog recorded (size or SHA-256): replaced or damaged. */
  | 'ArchiveCorrupted'
  /** A manifest that was altered: its MAC does not match, it changed since the catalog read it, or it drops encryption. */
  | 'ManifestForged'
  /** A manifest without a MAC, from the bucket alone: accepted only with --trust-unsigned-manifests. */
  | 'ManifestUnsigned'
  /** A signed manifest whose key is not here (or is another key): point OFFSITE_MANIFEST_KEY_FILE at it. */
  | 'ManifestKeyMissing'
  /** The restore target already holds the session. */
  | 'TargetExists'
  /** The catalog has no archive of that session at this destination. */
  | 'SessionNotArchived';

export class ArchiveError extends Error {
  readonly code: ArchiveErrorCode;

  constructor(code: ArchiveErrorCode, message: string, opts: { cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = `${code}Error`;
    this.code = code;
  }
}

export function isArchiveError(e: unknown, code?: ArchiveErrorCode): e is ArchiveError {
  return e instanceof ArchiveError && (code === undefined || e.code === code);
}
