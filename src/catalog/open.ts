import Database from 'better-sqlite3';
import { chmodSync, closeSync, constants, existsSync, fchmodSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { archiveMethods } from './archives.js';
import { backupMethods } from './backups.js';
import { CatalogError, classifySqliteError } from './errors.js';
import { migrate } from './migrate.js';
import { noteMethods } from './notes.js';
import { operationMethods } from './operations.js';
import { rebuildMethods } from './rebuild.js';
import { restoreMethods } from './restores.js';
import { throughputMethods } from './throughput.js';
import { totalsMethods } from './totals.js';
import type { Catalog } from './types.js';

/** How long a writer waits for another process's lock before CatalogBusy. */
export const BUSY_TIMEOUT_MS = 5000;

/** Every method reports SQLite failures as CatalogErrors naming the file (errors.ts). */
function classified<T extends object>(methods: T, file: string): T {
  const out = {} as Record<string, unknown>;
  for (const [name, fn] of Object.entries(methods)) {
    out[name] =
      typeof fn === 'function'
        ? (...args: unknown[]) => {
            try {
              return (fn as (...a: unknown[]) => unknown)(...args);
            } catch (e) {
              throw classifySqliteError(e, file);
            }
          }
        : fn;
  }
  return out as T;
}

/**
 * A new catalog is private whatever the umask: 0600, in 0700 directories made for it (restores
 * trust its backup records, so other users must not be able to write them). SQLite gives the
 * -wal and -shm files the mode of the database file. Synchronous, as openCatalog is; the same
 * rules as the files layer's mkdirPrivate and openNewPrivateFile.
 */
function createPrivately(file: string): void {
  const dir = path.dirname(path.resolve(file));
  const first = mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (first !== undefined) {
    for (let d = dir; ; d = path.dirname(d)) {
      chmodSync(d, 0o700);
      if (d === first || d === path.dirname(d)) break;
    }
  }
  let fd: number;
  try {
    fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return; // made meanwhile, or already there
    throw e;
  }
  try {
    fchmodSync(fd, 0o600);
  } finally {
    closeSync(fd);
  }
}

/**
 * The catalog at `file` if there is one (brought up to date like openCatalog), else undefined:
 * for commands that only read it, which must not leave a new catalog behind.
 */
export function openExistingCatalog(file: string): Catalog | undefined {
  if (file !== ':memory:' && !existsSync(file)) return undefined;
  return openCatalog(file);
}

/**
 * Open (creating it privately, and its directory, if needed) the catalog at `file` and bring its schema up
 * to date. Throws CatalogTooNew for a catalog written by a newer Offsite, CatalogUnreadable for
 * a file that is not an SQLite database or cannot be created, CatalogBusy if another process
 * keeps it locked.
 */
export function openCatalog(file: string): Catalog {
  const inMemory = file === ':memory:';
  let db: Database.Database;
  try {
    if (!inMemory && !existsSync(file)) createPrivately(file);
    db = new Database(file);
  } catch (e) {
    const classified = classifySqliteError(e, file);
    if (classified !== e) throw classified;
    throw new CatalogError('CatalogUnreadable', `catalog ${file} cannot be opened: ${(e as Error).message}`, { cause: e });
  }
  try {
    // Busy timeout first: the pragmas below may already need the lock another process holds.
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    // WAL: readers (status, the web page) never block the writer and vice versa, and a commit
    // is one append. It needs a local filesystem (shared memory); so does any SQLite locking.
    db.pragma('journal_mode = WAL');
    // NORMAL is durable across application crashes in WAL mode; a power cut may lose the last
    // commits, which the next run redoes from the bucket's state (the catalog is an index).
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    migrate(db, file);
  } catch (e) {
    db.close();
    throw classifySqliteError(e, file);
  }

  const methods = {
    ...archiveMethods(db),
    ...backupMethods(db),
    ...noteMethods(db),
    ...operationMethods(db),
    ...throughputMethods(db),
    ...restoreMethods(db),
    ...totalsMethods(db),
    ...rebuildMethods(db),
  };
  return {
    file,
    ...classified(methods, file),
    close() {
      if (db.open) db.close();
    },
  };
}
