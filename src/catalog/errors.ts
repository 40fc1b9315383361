/**
 * Catalog errors. Like the storage errors, each has a stable `code` to switch on, and messages
 * say what to do. SQLite's own errors are classified once, at the catalog's edge (see
 * classifySqliteError), so callers never need to know better-sqlite3's error codes.
 */

export type CatalogErrorCode =
  /** The catalog was written by a newer Offsite (its schema version is past ours). */
  | 'CatalogTooNew'
  /** The file is not an SQLite database, is damaged, or cannot be opened or created. */
  | 'CatalogUnreadable'
  /** Another process held the write lock for longer than the busy timeout. */
  | 'CatalogBusy'
  /** The archive is already 'done'; it is only ever replaced on purpose ({ force: true }). */
  | 'AlreadyDone'
  /** No row with that id. */
  | 'NotFound'
  /** The row is in a state that does not allow the call (e.g. completing a 'failed' archive). */
  | 'InvalidState'
  /** An argument the catalog refuses to store (a negative size, a URL with a secret, ...). */
  | 'InvalidInput'
  /** A manifest that does not match the manifest schema. */
  | 'InvalidManifest';

export class CatalogError extends Error {
  readonly code: CatalogErrorCode;

  constructor(code: CatalogErrorCode, message: string, opts: { cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = `${code}Error`;
    this.code = code;
  }
}

export function isCatalogError(e: unknown, code?: CatalogErrorCode): e is CatalogError {
  return e instanceof CatalogError && (code === undefined || e.code === code);
}

/** better-sqlite3's SqliteError carries SQLite's extended result code as `code`. */
function sqliteCode(e: unknown): string | undefined {
  if (e instanceof Error && e.name === 'SqliteError') {
    const code = (e as Error & { code?: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/**
 * Turns the SQLite failures a user can act on into CatalogErrors naming the file; anything
 * else (a constraint we did not expect, a bug) is returned unchanged so it is not disguised.
 */
export function classifySqliteError(e: unknown, file: string): unknown {
  const code = sqliteCode(e);
  if (code === undefined) return e;
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new CatalogError('CatalogBusy', `catalog ${file} stayed locked by another Offsite process; try again when it has finished`, { cause: e });
  }
  if (code.startsWith('SQLITE_NOTADB') || code.startsWith('SQLITE_CORRUPT')) {
    return new CatalogError(
      'CatalogUnreadable',
      `catalog ${file} is not a readable SQLite database (${code}); move it aside and run "offsite archive catalog rebuild" to recreate it from the bucket`,
      { cause: e },
    );
  }
  if (code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_PERM') || code.startsWith('SQLITE_IOERR')) {
    return new CatalogError('CatalogUnreadable', `catalog ${file} cannot be opened for writing (${code}); check the path and its permissions`, { cause: e });
  }
  return e;
}
