/**
 * DuckDB sources: a transactionally consistent copy of a DuckDB database file, and a check that a
 * file (a restored backup) is readable from end to end. Measured on @duckdb/node-api 1.5.6-r.1;
 * docs/duckdb-notes.md has the details.
 *
 * The copy is DuckDB's own `COPY FROM DATABASE src TO dst` in one transaction: a logical copy
 * (schemas, types, sequences with their current values, tables, views, macros, indexes, comments)
 * read from one snapshot and written into a new file, which is compacted and carries only
 * committed data. It never copies the raw file, which another writer could be changing.
 *
 * Two ways in:
 * - By path: a private in-memory DuckDB instance ATTACHes the source READ_ONLY (a shared lock;
 *   no write lock, nothing written to the source). DuckDB lets one process hold a file for
 *   writing and then no other process may open it at all, not even read-only: that ends in
 *   SourceBusy (after retrying for `busyTimeoutMs`, for writers that close the file soon).
 * - Through `connection`: the caller's own DuckDBConnection to the instance that has the source
 *   open (the embedded app that writes the file). The copy runs inside that instance, so the app
 *   keeps writing while it runs and the copy is the snapshot at the start of its transaction.
 *
 * @duckdb/node-api is imported lazily: its native library is 70 MB and takes ~0.4 s to load, which
 * every other Offsite command would otherwise pay. Queries run on libuv's thread pool, not on
 * the event loop.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, realpath, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';

export type DuckdbSourceErrorCode = 'SourceMissing' | 'SourceFailed' | 'SourceBusy';

export class DuckdbSourceError extends Error {
  override name = 'DuckdbSourceError';
  constructor(
    readonly code: DuckdbSourceErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface DuckdbBackupOptions {
  signal?: AbortSignal;
  /**
   * A connection to the DuckDB instance that has `source` open (attached under any name). The
   * copy then runs in that instance while the app goes on writing through its other
   * connections. Use a connection of its own (`await instance.connect()`), not one that is in a
   * transaction or running other queries; it is left open.
   */
  connection?: DuckDBConnection;
  /**
   * How long to keep retrying while another process holds the source open for writing, for
   * writers that close it soon (a batch job). Default 5000 ms; 0 = fail at once.
   */
  busyTimeoutMs?: number;
}

const DEFAULT_BUSY_TIMEOUT_MS = 5_000;
const BUSY_RETRY_MS = 100;

// No extension may be installed or loaded behind our back: DuckDB would try to download
// sqlite_scanner for an SQLite file given as source (and hang without network).
const PRIVATE_INSTANCE_OPTIONS = { autoinstall_known_extensions: 'false', autoload_known_extensions: 'false' };

/**
 * Writes a new DuckDB file at `target` (replacing any file there) holding a transactionally
 * consistent copy of the DuckDB database `source`. The copy is written beside `target` under a
 * temporary name and renamed into place only when complete, so `target` never holds a partial
 * copy. Throws DuckdbSourceError, or `signal.reason` when aborted.
 */
export async function duckdbBackup(source: string, target: string, opts: DuckdbBackupOptions = {}): Promise<void> {
  const { signal } = opts;
  signal?.throwIfAborted();
  const sourceFile = await checkSourceFile(source);
  const targetFile = path.resolve(target);
  if ((await realpathOrUndefined(targetFile)) === sourceFile) {
    throw new DuckdbSourceError('SourceFailed', `the backup target ${target} is the source itself; write the copy to another file`);
  }
  const partial = `${targetFile}.partial-${randomBytes(6).toString('hex')}`;
  try {
    if (opts.connection) await copyThroughConnection(opts.connection, sourceFile, partial, signal);
    else await copyThroughPrivateInstance(sourceFile, partial, opts.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS, signal);
    signal?.throwIfAborted();
    // A WAL left beside the old target would be replayed into the new file when it is opened.
    await rm(`${targetFile}.wal`, { force: true });
    await rename(partial, targetFile);
  } catch (e) {
    throw await mapError(e, sourceFile, signal);
  } finally {
    await rm(partial, { force: true });
    await rm(`${partial}.wal`, { force: true });
  }
}

/**
 * Opens `file` read-only and reads every value of every table (which makes DuckDB verify the
 * checksum of each block it reads; a bare count(*) is answered from metadata and would not).
 * Not covered: the blocks of ART indexes (PRIMARY KEY, UNIQUE, CREATE INDEX), read only on use.
 */
export async function duckdbIntegrityCheck(file: string): Promise<{ ok: boolean; detail: string }> {
  const st = await stat(file).catch((e: unknown) => e as Error);
  if (st instanceof Error) return { ok: false, detail: `cannot read ${file}: ${st.message}` };
  if (!st.isFile()) return { ok: false, detail: `${file} is not a file` };
  const { DuckDBInstance } = await loadDuckdb();
  let instance: DuckDBInstance | undefined;
  let connection: DuckDBConnection | undefined;
  try {
    instance = await DuckDBInstance.create(':memory:', PRIVATE_INSTANCE_OPTIONS);
    connection = await instance.connect();
    await connection.run(`ATTACH ${sqlString(file)} AS checked (READ_ONLY, TYPE DUCKDB)`);
    const tables = await userTables(connection, 'checked');
    let rows = 0n;
    const perTable: string[] = [];
    for (const { schema, table } of tables) {
      const name = `checked.${sqlIdentifier(schema)}.${sqlIdentifier(table)}`;
      // hash() of every column forces every data block to be read and checksummed.
      const result = await connection.runAndReadAll(`SELECT count(*), bit_xor(hash(COLUMNS(*))) FROM ${name}`);
      const count = result.getRows()[0]?.[0];
      const n = typeof count === 'bigint' ? count : BigInt(Number(count ?? 0));
      rows += n;
      perTable.push(`${schema}.${table} ${n}`);
    }
    const listed = perTable.length > 20 ? `${perTable.slice(0, 20).join(', ')}, ...` : perTable.join(', ');
    return { ok: true, detail: `${tables.length} table(s), ${rows} row(s) read${listed ? `: ${listed}` : ''}` };
  } catch (e) {
    if (isLockConflict(e)) return { ok: false, detail: `${file} is open for writing in another process, which DuckDB lets no other process read: ${(e as Error).message}` };
    return { ok: false, detail: `${file} is not a readable DuckDB database: ${(e as Error).message}` };
  } finally {
    connection?.closeSync();
    instance?.closeSync();
  }
}

async function loadDuckdb(): Promise<typeof import('@duckdb/node-api')> {
  return import('@duckdb/node-api');
}

async function checkSourceFile(source: string): Promise<string> {
  const st = await stat(source).catch((cause: unknown) => {
    throw new DuckdbSourceError('SourceMissing', `cannot read the DuckDB database ${source}: ${(cause as Error).message}; check the path of the job's source`, { cause });
  });
  if (!st.isFile()) throw new DuckdbSourceError('SourceMissing', `${source} is not a file; a DuckDB source is the path of the database file`);
  return realpath(source);
}

async function copyThroughPrivateInstance(sourceFile: string, partial: string, busyTimeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
  await refuseIfThisProcessWrites(sourceFile);
  const { DuckDBInstance } = await loadDuckdb();
  const instance = await DuckDBInstance.create(':memory:', PRIVATE_INSTANCE_OPTIONS);
  try {
    const connection = await instance.connect();
    try {
      await attachReadOnlyRetrying(connection, sourceFile, busyTimeoutMs, signal);
      await connection.run(`ATTACH ${sqlString(partial)} AS copy (TYPE DUCKDB)`);
      await copyDatabase(connection, 'source', 'copy', signal);
    } finally {
      connection.closeSync();
    }
  } finally {
    // Closing the instance detaches both files: releases the source's lock, closes the copy.
    instance.closeSync();
  }
}

async function attachReadOnlyRetrying(connection: DuckDBConnection, file: string, busyTimeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
  const deadline = Date.now() + busyTimeoutMs;
  for (;;) {
    try {
      await connection.run(`ATTACH ${sqlString(file)} AS source (READ_ONLY, TYPE DUCKDB)`);
      return;
    } catch (e) {
      if (!isLockConflict(e) || Date.now() + BUSY_RETRY_MS > deadline) throw e;
    }
    await sleep(BUSY_RETRY_MS, undefined, signal ? { signal } : undefined);
  }
}

async function copyThroughConnection(connection: DuckDBConnection, sourceFile: string, partial: string, signal: AbortSignal | undefined): Promise<void> {
  const databases = await connection.runAndReadAll(`SELECT database_name, path FROM duckdb_databases() WHERE path IS NOT NULL`);
  let sourceDb: string | undefined;
  for (const [name, dbPath] of databases.getRows()) {
    if ((await realpathOrUndefined(String(dbPath))) === sourceFile) sourceDb = String(name);
  }
  if (sourceDb === undefined) {
    throw new DuckdbSourceError('SourceFailed', `the DuckDB connection given has no database at ${sourceFile} attached; pass a connection to the instance that has it open, or leave the connection out`);
  }
  const copyDb = `offsite_copy_${randomBytes(6).toString('hex')}`;
  await connection.run(`ATTACH ${sqlString(partial)} AS ${sqlIdentifier(copyDb)} (TYPE DUCKDB)`);
  try {
    await copyDatabase(connection, sourceDb, copyDb, signal);
  } catch (e) {
    await connection.run(`DETACH ${sqlIdentifier(copyDb)}`).catch(() => undefined);
    throw e;
  }
  // DETACH closes the file: the caller's instance must not keep the copy, which is renamed next.
  await connection.run(`DETACH ${sqlIdentifier(copyDb)}`);
}

/**
 * Copies database `from` into the empty attached database `to` in one transaction (one
 * snapshot of `from`), then checkpoints `to` so the file is complete without a WAL.
 */
async function copyDatabase(connection: DuckDBConnection, from: string, to: string, signal: AbortSignal | undefined): Promise<void> {
  signal?.throwIfAborted();
  const interrupt = () => connection.interrupt();
  signal?.addEventListener('abort', interrupt, { once: true });
  let inTransaction = false;
  try {
    await connection.run('BEGIN TRANSACTION');
    inTransaction = true;
    const foreignKeys = await foreignKeyEdges(connection, from);
    if (foreignKeys.length === 0) {
      await connection.run(`COPY FROM DATABASE ${sqlIdentifier(from)} TO ${sqlIdentifier(to)}`);
    } else {
      await copyWithForeignKeys(connection, from, to, foreignKeys, signal);
    }
    signal?.throwIfAborted();
    await connection.run('COMMIT');
    inTransaction = false;
    await connection.run(`CHECKPOINT ${sqlIdentifier(to)}`);
  } finally {
    signal?.removeEventListener('abort', interrupt);
    // After an error DuckDB keeps the transaction open (some errors do not even abort it):
    // never leave it to a later COMMIT on the caller's connection.
    if (inTransaction) await connection.run('ROLLBACK').catch(() => undefined);
  }
}

interface ForeignKeyEdge {
  schema: string;
  table: string;
  referenced: string;
}

async function foreignKeyEdges(connection: DuckDBConnection, database: string): Promise<ForeignKeyEdge[]> {
  const result = await connection.runAndReadAll(
    `SELECT schema_name, table_name, referenced_table FROM duckdb_constraints() WHERE database_name = $db AND constraint_type = 'FOREIGN KEY'`,
    { db: database },
  );
  return result.getRows().map(([schema, table, referenced]) => ({ schema: String(schema), table: String(table), referenced: String(referenced) }));
}

/**
 * COPY FROM DATABASE's data step inserts into the tables in catalog order, so a child table
 * can come before its parent and fail "Violates foreign key constraint" on valid data (DuckDB
 * issue 24215, open in 1.5.6). So: the schema step, then each table's rows, parents first
 * (DuckDB foreign keys stay within one schema and cannot form cycles: a table can only
 * reference tables that exist when it is created). A table that references itself cannot be
 * copied by one INSERT, whose rows DuckDB checks against the table as it was before it.
 */
async function copyWithForeignKeys(connection: DuckDBConnection, from: string, to: string, foreignKeys: ForeignKeyEdge[], signal: AbortSignal | undefined): Promise<void> {
  const selfReferencing = foreignKeys.find((fk) => fk.table === fk.referenced);
  if (selfReferencing) {
    throw new DuckdbSourceError(
      'SourceFailed',
      `table ${selfReferencing.schema}.${selfReferencing.table} has a foreign key to itself, which DuckDB cannot copy in one statement; back up this database with the file closed (file:PATH) or drop that constraint`,
    );
  }
  await connection.run(`COPY FROM DATABASE ${sqlIdentifier(from)} TO ${sqlIdentifier(to)} (SCHEMA)`);
  const tables = await userTables(connection, from);
  const key = (schema: string, table: string) => `${schema}\u0000${table}`;
  const parents = new Map<string, Set<string>>();
  for (const fk of foreignKeys) {
    const child = key(fk.schema, fk.table);
    if (!parents.has(child)) parents.set(child, new Set());
    parents.get(child)!.add(key(fk.schema, fk.referenced));
  }
  const done = new Set<string>();
  const visit = async (schema: string, table: string): Promise<void> => {
    const k = key(schema, table);
    if (done.has(k)) return;
    done.add(k);
    for (const parent of parents.get(k) ?? []) await visit(schema, parent.slice(parent.indexOf('\u0000') + 1));
    signal?.throwIfAborted();
    const columns = await insertableColumns(connection, from, schema, table);
    const list = columns.map(sqlIdentifier).join(', ');
    const qualified = (db: string) => `${sqlIdentifier(db)}.${sqlIdentifier(schema)}.${sqlIdentifier(table)}`;
    await connection.run(`INSERT INTO ${qualified(to)} (${list}) SELECT ${list} FROM ${qualified(from)}`);
  };
  for (const { schema, table } of tables) await visit(schema, table);
}

/**
 * The columns of a table minus its generated ones (which cannot be inserted into). No catalog
 * function flags them: duckdb_columns() gives a generated column its expression as
 * column_default, while DESCRIBE shows no default for it.
 */
async function insertableColumns(connection: DuckDBConnection, database: string, schema: string, table: string): Promise<string[]> {
  const qualified = `${sqlIdentifier(database)}.${sqlIdentifier(schema)}.${sqlIdentifier(table)}`;
  const described = await connection.runAndReadAll(`SELECT column_name, "default" FROM (DESCRIBE ${qualified})`);
  const describedDefault = new Map(described.getRows().map(([name, def]) => [String(name), def]));
  const columns = await connection.runAndReadAll(
    `SELECT column_name, column_default FROM duckdb_columns() WHERE database_name = $db AND schema_name = $schema AND table_name = $table ORDER BY column_index`,
    { db: database, schema, table },
  );
  return columns
    .getRows()
    .filter(([name, def]) => !(def !== null && describedDefault.get(String(name)) === null))
    .map(([name]) => String(name));
}

async function userTables(connection: DuckDBConnection, database: string): Promise<Array<{ schema: string; table: string }>> {
  const result = await connection.runAndReadAll(
    `SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = $db AND NOT internal AND NOT temporary ORDER BY schema_name, table_name`,
    { db: database },
  );
  return result.getRows().map(([schema, table]) => ({ schema: String(schema), table: String(table) }));
}

/**
 * Within one process DuckDB's file lock does not keep a second instance out (POSIX locks are
 * per process): measured, an in-memory instance here could ATTACH a file that another instance
 * of this process was writing, and would read it while it changes. Linux lists the locks in
 * /proc/locks; elsewhere this check is skipped.
 */
async function refuseIfThisProcessWrites(file: string): Promise<void> {
  const locks = await readFile('/proc/locks', 'utf8').catch(() => undefined);
  if (locks === undefined) return;
  const st = await stat(file, { bigint: true });
  const major = ((st.dev >> 8n) & 0xfffn) | ((st.dev >> 32n) & ~0xfffn);
  const minor = (st.dev & 0xffn) | ((st.dev >> 12n) & ~0xffn);
  for (const line of locks.split('\n')) {
    // "1: POSIX  ADVISORY  WRITE 964 fe:00:2154655 0 EOF" (blocked waiters start with "->").
    const m = /^\d+:\s+POSIX\s+\S+\s+WRITE\s+(\d+)\s+([0-9a-f]+):([0-9a-f]+):(\d+)\s/.exec(line);
    if (!m || Number(m[1]) !== process.pid) continue;
    if (BigInt(`0x${m[2]}`) === major && BigInt(`0x${m[3]}`) === minor && BigInt(m[4]!) === st.ino) {
      throw new DuckdbSourceError(
        'SourceBusy',
        `this process already has the DuckDB database ${file} open for writing; back it up through that instance: duckdbBackup(source, target, { connection: await instance.connect() })`,
      );
    }
  }
}

function isLockConflict(e: unknown): boolean {
  return e instanceof Error && /Could not set lock on file/.test(e.message);
}

async function mapError(e: unknown, source: string, signal: AbortSignal | undefined): Promise<unknown> {
  if (signal?.aborted) return signal.reason;
  if (e instanceof DuckdbSourceError) return e;
  const message = e instanceof Error ? e.message : String(e);
  if (isLockConflict(e)) {
    const holder = /Conflicting lock is held in (.+?) \(PID (\d+)\)/.exec(message);
    const who = holder ? `process ${holder[2]} (${holder[1]})` : 'another process';
    return new DuckdbSourceError(
      'SourceBusy',
      `${who} has the DuckDB database ${source} open for writing, and DuckDB lets no other process open a database file while one writes it, not even to read. ` +
        `Back it up from inside that app (duckdbBackup with its connection), close the writer during the backup, or schedule the backup when the app is idle. DuckDB said: ${message}`,
      { cause: e },
    );
  }
  if (/not a valid DuckDB database file/.test(message)) {
    const hint = (await looksLikeSqlite(source)) ? 'it is an SQLite database: use sqlite:PATH as the source' : 'use file:PATH to back up any other file';
    return new DuckdbSourceError('SourceFailed', `${source} is not a DuckDB database (${hint}). DuckDB said: ${message}`, { cause: e });
  }
  if (/Corrupt database file|Could not read enough bytes/.test(message)) {
    return new DuckdbSourceError('SourceFailed', `the DuckDB database ${source} is damaged; restore it from an earlier backup. DuckDB said: ${message}`, { cause: e });
  }
  if (/transaction within a transaction/.test(message)) {
    return new DuckdbSourceError('SourceFailed', `the DuckDB connection given is inside a transaction; pass a connection of its own (await instance.connect()). DuckDB said: ${message}`, { cause: e });
  }
  return new DuckdbSourceError('SourceFailed', `DuckDB backup of ${source} failed: ${message}`, { cause: e });
}

async function realpathOrUndefined(file: string): Promise<string | undefined> {
  return realpath(file).catch(() => undefined);
}

function sqlString(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

function sqlIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

async function looksLikeSqlite(file: string): Promise<boolean> {
  const handle = await open(file, 'r').catch(() => undefined);
  if (!handle) return false;
  try {
    const { bytesRead, buffer } = await handle.read(Buffer.alloc(16), 0, 16, 0);
    return bytesRead === 16 && buffer.toString('latin1') === 'SQLite format 3\u0000';
  } finally {
    await handle.close();
  }
}
