/**
 * The console engine's errors. `code` is stable (the HTTP shell maps it to a status): the
 * storage and backup layers' own codes pass through as they are; these are the console's.
 */
export type ConsoleErrorCode =
  | 'BadRequest'
  | 'NotFound'
  | 'Busy'
  | 'Conflict'
  | 'NotConfigured'
  /** Encrypted settings exist and the key that opens them is missing. */
  | 'KeyMissing'
  /** The settings were encrypted under another key. */
  | 'WrongKey'
  /** A sealed value failed to authenticate: altered, or moved from another row or field. */
  | 'Tampered'
  | 'InvalidKey'
  | 'Unauthorized';

export class ConsoleError extends Error {
  override name = 'ConsoleError';
  constructor(
    readonly code: ConsoleErrorCode,
    message: string,
    /** For BadRequest: the request field at fault, as `body.bucket`. */
    readonly field?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isConsoleError(e: unknown, code?: ConsoleErrorCode): e is ConsoleError {
  return e instanceof ConsoleError && (code === undefined || e.code === code);
}
