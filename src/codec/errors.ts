/**
 * Typed codec errors. Every transform classifies its failures into one of these codes (stable,
 * for callers to switch on); messages name the file or entry and say what to do. The original
 * error is kept as `cause`. Secrets (identities, passphrases) never appear in a message.
 */

export type CodecErrorCode =
  /** A tar entry that would land outside the destination, or a device/FIFO: refused, not stripped. */
  | 'UnsafeArchiveEntry'
  /** A tar entry type this layer does not restore (sparse files, tape volume headers, ...). */
  | 'UnsupportedArchiveEntry'
  /** Not a tar archive, truncated, or a header checksum failure. */
  | 'InvalidArchive'
  /** The extracted files differ from the manifest they were supposed to match. */
  | 'ArchiveMismatch'
  /** The directory to pack, or something in it, cannot be read. */
  | 'SourceUnreadable'
  /** A file changed (shrank, was replaced or removed) while it was being packed. */
  | 'SourceChanged'
  /** Extraction could not write a file or directory (disk full, permissions, a file in the way). */
  | 'ExtractFailed'
  | 'InvalidArgument'
  | 'InvalidRecipient'
  | 'InvalidIdentity'
  /** Wrong key or passphrase, or a corrupted or truncated age file. */
  | 'DecryptionFailed'
  | 'InvalidRate';

export class CodecError extends Error {
  readonly code: CodecErrorCode;
  /** The file or archive entry the error is about, when there is one. */
  readonly path: string | undefined;
  /** For ArchiveMismatch: the problems found (capped), one line each. */
  readonly problems: readonly string[];

  constructor(code: CodecErrorCode, message: string, opts: { path?: string; problems?: string[]; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = `${code}Error`;
    this.code = code;
    this.path = opts.path;
    this.problems = opts.problems ?? [];
  }
}

export function isCodecError(e: unknown, code?: CodecErrorCode): e is CodecError {
  return e instanceof CodecError && (code === undefined || e.code === code);
}

/** The message of anything thrown, for wrapping into a CodecError. */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
