import type { Database } from 'better-sqlite3';
import { CatalogError } from './errors.js';
import { MIGRATIONS } from './migrations.js';

export interface MigrationResult {
  /** Schema version found on disk. */
  from: number;
  /** Schema version after migrating (the length of the migration list). */
  to: number;
}

function userVersion(db: Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

function tooNew(file: string, found: number, known: number): CatalogError {
  return new CatalogError(
    'CatalogTooNew',
    `catalog ${file} has schema version ${found}, but this Offsite knows versions up to ${known}: it was written by a newer Offsite. Upgrade Offsite to use it (or point this one at another catalog file).`,
  );
}

/**
 * Brings the schema to the last version of `migrations`. All pending migrations and the new
 * user_version commit together or not at all. BEGIN IMMEDIATE takes the write lock before
 * reading the version, so two processes opening a fresh catalog at once cannot both run
 * migration 1: the second waits (busy_timeout), then finds nothing left to do.
 */
export function migrate(db: Database, file: string, migrations: readonly string[] = MIGRATIONS): MigrationResult {
  // A cheap check outside the transaction, so a too-new catalog is refused without a write lock.
  const seen = userVersion(db);
  if (seen > migrations.length) throw tooNew(file, seen, migrations.length);
  if (seen === migrations.length) return { from: seen, to: seen };

  const run = db.transaction((): MigrationResult => {
    const from = userVersion(db);
    if (from > migrations.length) throw tooNew(file, from, migrations.length);
    for (let v = from; v < migrations.length; v++) db.exec(migrations[v]!);
    const violations = db.pragma('foreign_key_check') as unknown[];
    if (violations.length > 0) {
      throw new CatalogError('CatalogUnreadable', `catalog ${file}: migrating to version ${migrations.length} left ${violations.length} foreign key violation(s); the catalog was not changed`);
    }
    // PRAGMA takes no bound parameters; the value is an integer we computed.
    db.pragma(`user_version = ${migrations.length}`);
    return { from, to: migrations.length };
  });
  return run.immediate();
}
