/**
 * The console's own state, `DATA_DIR/console.db` (SQLite, WAL, 0600 like its -wal and -shm
 * files): the S3 settings row (the secret sealed by secret-box.ts) and the admin token's hash.
 * Migrations are numbered and recorded in `schema_migrations`. Sessions of the page live in
 * memory only: a restart logs everyone out, and nothing about them reaches the disk.
 */
import Database from 'better-sqlite3';
import { closeSync, constants, fchmodSync, openSync } from 'node:fs';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import path from 'node:path';
import { ConsoleError } from './errors.js';
import { open, seal, sealedKeyId, type ConsoleKey, type SealedPlace } from './secret-box.js';

export const CONSOLE_DB_FILE = 'console.db';
/** A session of the page lasts this long after login. */
export const SESSION_TTL_MS = 12 * 60 * 60 * 1000;

const MIGRATIONS: string[] = [
  `CREATE TABLE settings (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     endpoint TEXT,
     bucket TEXT NOT NULL,
     region TEXT,
     access_key_id TEXT NOT NULL,
     prefix TEXT NOT NULL DEFAULT '',
     path_style INTEGER NOT NULL DEFAULT 1,
     secret_ct TEXT NOT NULL,
     updated_at TEXT NOT NULL
   );
   CREATE TABLE admin (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     token_hash TEXT NOT NULL,
     created_at TEXT NOT NULL
   );`,
];

/** The stored S3 settings, the secret opened. Kept in memory only while in use. */
export interface StoredSettings {
  endpoint: string | null;
  bucket: string;
  region: string | null;
  accessKeyId: string;
  prefix: string;
  pathStyle: boolean;
  secretAccessKey: string;
  updatedAt: string;
}

interface SettingsRow {
  endpoint: string | null;
  bucket: string;
  region: string | null;
  access_key_id: string;
  prefix: string;
  path_style: number;
  secret_ct: string;
  updated_at: string;
}

export const SECRET_PLACE: SealedPlace = { table: 'settings', field: 'secret_access_key', rowId: 1 };

/** Creates `file` 0600 if missing (SQLite gives -wal and -shm the database file's mode). */
function createPrivately(file: string): void {
  let fd: number;
  try {
    fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw e;
  }
  try {
    fchmodSync(fd, 0o600);
  } finally {
    closeSync(fd);
  }
}

export class ConsoleStore {
  readonly file: string;
  private readonly db: Database.Database;

  private constructor(file: string) {
    this.file = file;
    createPrivately(file);
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    // Replaced and deleted rows are overwritten, not left in free pages.
    this.db.pragma('secure_delete = ON');
    this.db.pragma('busy_timeout = 5000');
    this.migrate();
  }

  /** Opens (creating) DATA_DIR/console.db; the data directory must exist. */
  static open(dataDir: string): ConsoleStore {
    return new ConsoleStore(path.join(dataDir, CONSOLE_DB_FILE));
  }

  private migrate(): void {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
    const done = (this.db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null }).v ?? 0;
    if (done > MIGRATIONS.length) throw new ConsoleError('Conflict', `${this.file} was written by a newer Offsite (schema ${done}); upgrade Offsite`);
    for (let v = done + 1; v <= MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v - 1]!);
        this.db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(v, new Date().toISOString());
      })();
    }
  }

  /** Every sealed value in the database, with where it lives (startup check, rekey). */
  sealedValues(): Array<{ place: SealedPlace; sealed: string }> {
    const row = this.db.prepare('SELECT secret_ct FROM settings WHERE id = 1').get() as { secret_ct: string } | undefined;
    return row ? [{ place: SECRET_PLACE, sealed: row.secret_ct }] : [];
  }

  /**
   * Refuses a key that cannot open every sealed value: a missing key file is reported by the
   * caller; here a key of another id (WrongKey) or a value that fails to authenticate (Tampered).
   */
  checkKey(key: ConsoleKey): void {
    for (const { place, sealed } of this.sealedValues()) open(key, place, sealed);
  }

  /** The key ids the sealed values name (none: nothing encrypted yet). */
  sealedKeyIds(): string[] {
    return [...new Set(this.sealedValues().map((v) => sealedKeyId(v.sealed) ?? '?'))];
  }

  settings(key: ConsoleKey): StoredSettings | undefined {
    const row = this.settingsRow();
    return row && { ...summaryOf(row), secretAccessKey: open(key, SECRET_PLACE, row.secret_ct) };
  }

  /** What GET shows without opening the secret. */
  settingsSummary(): Omit<StoredSettings, 'secretAccessKey'> | undefined {
    const row = this.settingsRow();
    return row && summaryOf(row);
  }

  private settingsRow(): SettingsRow | undefined {
    return this.db.prepare('SELECT * FROM settings WHERE id = 1').get() as SettingsRow | undefined;
  }

  /** Writes the one settings row, the secret sealed afresh (new nonce) under `key`. */
  saveSettings(key: ConsoleKey, s: Omit<StoredSettings, 'updatedAt'>): void {
    const sealed = seal(key, SECRET_PLACE, s.secretAccessKey);
    this.db
      .prepare(
        `INSERT INTO settings (id, endpoint, bucket, region, access_key_id, prefix, path_style, secret_ct, updated_at)
         VALUES (1, @endpoint, @bucket, @region, @access_key_id, @prefix, @path_style, @secret_ct, @updated_at)
         ON CONFLICT (id) DO UPDATE SET endpoint = excluded.endpoint, bucket = excluded.bucket, region = excluded.region,
           access_key_id = excluded.access_key_id, prefix = excluded.prefix, path_style = excluded.path_style,
           secret_ct = excluded.secret_ct, updated_at = excluded.updated_at`,
      )
      .run({
        endpoint: s.endpoint,
        bucket: s.bucket,
        region: s.region,
        access_key_id: s.accessKeyId,
        prefix: s.prefix,
        path_style: s.pathStyle ? 1 : 0,
        secret_ct: sealed,
        updated_at: new Date().toISOString(),
      });
  }

  deleteSettings(): void {
    this.db.prepare('DELETE FROM settings WHERE id = 1').run();
    // The old ciphertext must not linger in the WAL or free pages.
    this.db.pragma('wal_checkpoint(TRUNCATE)');
  }

  /**
   * Re-seals every sealed value under `next` in one transaction. Throws before changing
   * anything when `current` cannot open a value. The caller moves the new key into place.
   */
  rekey(current: ConsoleKey, next: ConsoleKey): number {
    const values = this.sealedValues().map((v) => ({ ...v, plain: open(current, v.place, v.sealed) }));
    this.db.transaction(() => {
      for (const v of values) {
        if (v.place.table !== 'settings' || v.place.field !== 'secret_access_key') throw new Error(`rekey: no writer for ${v.place.table}.${v.place.field}`);
        this.db.prepare('UPDATE settings SET secret_ct = ? WHERE id = ?').run(seal(next, v.place, v.plain), v.place.rowId);
      }
    })();
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    return values.length;
  }

  adminTokenHash(): string | undefined {
    return (this.db.prepare('SELECT token_hash FROM admin WHERE id = 1').get() as { token_hash: string } | undefined)?.token_hash;
  }

  setAdminTokenHash(hash: string): void {
    this.db
      .prepare('INSERT INTO admin (id, token_hash, created_at) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET token_hash = excluded.token_hash, created_at = excluded.created_at')
      .run(hash, new Date().toISOString());
  }

  close(): void {
    this.db.close();
  }
}

function summaryOf(row: SettingsRow): Omit<StoredSettings, 'secretAccessKey'> {
  return {
    endpoint: row.endpoint,
    bucket: row.bucket,
    region: row.region,
    accessKeyId: row.access_key_id,
    prefix: row.prefix,
    pathStyle: row.path_style === 1,
    updatedAt: row.updated_at,
  };
}

// Admin token ------------------------------------------------------------------------------

/** A new admin token: 32 random bytes, base64url. Only its SHA-256 is stored. */
export function newAdminToken(): { token: string; hash: string } {
  const token = randomBytes(32).toString('base64url');
  return { token, hash: hashToken(token) };
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Constant-time comparison of a presented token with the stored hash. */
export function tokenMatches(storedHash: string | undefined, presented: string | undefined): boolean {
  if (!storedHash || !presented) return false;
  const a = Buffer.from(hashToken(presented), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

// Sessions ---------------------------------------------------------------------------------

interface Session {
  csrf: string;
  expiresAt: number;
}

/** The page's sessions: random id (the cookie) → CSRF token, for 12 hours. In memory only. */
export class SessionTable {
  private readonly sessions = new Map<string, Session>();
  constructor(private readonly ttlMs = SESSION_TTL_MS) {}

  create(): { id: string; csrf: string } {
    this.sweep();
    const id = randomBytes(32).toString('base64url');
    const csrf = randomBytes(32).toString('base64url');
    this.sessions.set(id, { csrf, expiresAt: Date.now() + this.ttlMs });
    return { id, csrf };
  }

  /** The session's CSRF token, when the id names a live session. */
  csrfOf(id: string | undefined): string | undefined {
    if (!id) return undefined;
    const s = this.sessions.get(id);
    if (!s) return undefined;
    if (s.expiresAt <= Date.now()) {
      this.sessions.delete(id);
      return undefined;
    }
    return s.csrf;
  }

  /** Constant-time check of a CSRF header against the session's token. */
  csrfMatches(id: string | undefined, presented: string | undefined): boolean {
    const csrf = this.csrfOf(id);
    if (!csrf || !presented) return false;
    const a = Buffer.from(csrf);
    const b = Buffer.from(presented);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  delete(id: string | undefined): void {
    if (id) this.sessions.delete(id);
  }

  /** Every session ends (the admin token was reset). */
  clear(): void {
    this.sessions.clear();
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(id);
  }
}
