/**
 * Consistent snapshots of a live source into a local file. Copying a database file that is being
 * written is how backups get silently torn, so each kind uses its engine's own way:
 * - SQLite: the online backup API (better-sqlite3's db.backup) on a connection of its own, in a
 *   worker thread so the host's event loop never waits on it. The whole copy is one backup step
 *   inside one read transaction: in WAL mode writers go on meanwhile and the copy is the database
 *   as of that transaction's start; in rollback-journal mode writers wait (busy timeout) until
 *   the copy is done. Smaller steps would let writes in between, and each one restarts the
 *   backup, so a busy writer could starve it.
 * - DuckDB: COPY FROM DATABASE in one transaction, from a read-only attach or through the app's
 *   own connection (duckdb.ts says why, and what a writer in another process means).
 * - PostgreSQL: `pg_dump --format=custom`, which reads the whole database in one snapshot
 *   transaction while the server keeps serving writes (see postgres.ts).
 * - file: a plain copy, refused if the file changed while it was read (size or mtime).
 * - dir: a tar of the directory (the archive codec's), which `tar -xf` reads, refused if a file
 *   changed while it was read.
 */
import { createWriteStream } from 'node:fs';
import { copyFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { packDirectory } from '../../codec/index.js';
import type { SourceSpec } from './config.js';
import type { DuckDBConnection } from '@duckdb/node-api';
import { duckdbBackup } from './duckdb.js';
import { dumpPostgres } from './postgres.js';

export class SourceError extends Error {
  override name = 'SourceError';
  constructor(
    readonly code: 'SourceMissing' | 'SourceFailed' | 'SourceChanged' | 'UnsupportedSource',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The extension a backup of this source gets (before .gz/.age). */
export function sourceExtension(source: SourceSpec): string {
  switch (source.kind) {
    case 'sqlite':
      return '.sqlite';
    case 'duckdb':
      return '.duckdb';
    case 'postgres':
      return '.dump';
    case 'dir':
      return '.tar';
    case 'file': {
      const m = /(\.[A-Za-z0-9]{1,10})$/.exec(source.location);
      return m ? m[1]! : '';
    }
  }
}

export interface SnapshotOptions {
  signal?: AbortSignal;
  /** DuckDB: the app's own connection to the instance that has the file open (see duckdb.ts). */
  duckdbConnection?: DuckDBConnection;
}

/** Writes a consistent copy of `source` to `target` (a new file). */
export async function snapshotSource(source: SourceSpec, target: string, opts: SnapshotOptions = {}): Promise<void> {
  opts.signal?.throwIfAborted();
  if (source.kind === 'sqlite') return sqliteBackup(source.location, target);
  if (source.kind === 'duckdb') {
    return duckdbBackup(source.location, target, { ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.duckdbConnection ? { connection: opts.duckdbConnection } : {}) });
  }
  if (source.kind === 'file') return fileCopy(source.location, target);
  if (source.kind === 'postgres') return postgresDump(source.location, target, opts.signal);
  if (source.kind === 'dir') return directoryTar(source.location, target, opts.signal);
  throw new SourceError('UnsupportedSource', `${String((source as SourceSpec).kind)} sources are not known; use sqlite:PATH, duckdb:PATH, postgres://... or file:PATH`);
}

/** Source spec location: a URL, or '' for libpq's PG* variables. */
async function postgresDump(url: string, target: string, signal: AbortSignal | undefined): Promise<void> {
  const { stream, done } = dumpPostgres(url ? { url } : {}, signal ? { signal } : {});
  // The stream errors if pg_dump fails, so the pipeline never ends on a truncated dump.
  await Promise.all([pipeline(stream, createWriteStream(target)), done]);
}

/** The archive codec's tar: sorted, symlinks kept, refused (SourceChanged) if a file changes while read. */
async function directoryTar(dir: string, target: string, signal: AbortSignal | undefined): Promise<void> {
  const st = await stat(dir).catch((cause: unknown) => {
    throw new SourceError('SourceMissing', `cannot read the directory ${dir}: ${(cause as Error).message}`, { cause });
  });
  if (!st.isDirectory()) throw new SourceError('SourceMissing', `${dir} is not a directory; for a single file use file:PATH`);
  const { stream, entries } = packDirectory(path.dirname(dir), path.basename(dir), signal ? { signal } : {});
  await Promise.all([pipeline(stream, createWriteStream(target)), entries]);
}

async function fileCopy(file: string, target: string): Promise<void> {
  const before = await stat(file).catch((cause: unknown) => {
    throw new SourceError('SourceMissing', `cannot read ${file}: ${(cause as Error).message}`, { cause });
  });
  if (!before.isFile()) throw new SourceError('SourceMissing', `${file} is not a regular file${before.isDirectory() ? '; for a directory use dir:PATH' : ''}`);
  await copyFile(file, target);
  const after = await stat(file);
  if (after.size !== before.size || after.mtimeMs !== before.mtimeMs) {
    throw new SourceError('SourceChanged', `${file} changed while it was copied; for a live database use sqlite:PATH (or duckdb:PATH), which copies consistently`);
  }
}

// The worker is plain CommonJS evaluated from a string, so it runs the same from src/ (tsx, in
// tests) and from dist/; it loads better-sqlite3 from the path resolved here.
const SQLITE_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
let db;
try {
  db = new Database(workerData.source, { readonly: true, fileMustExist: true, timeout: workerData.busyTimeoutMs });
  db.backup(workerData.target, { progress: () => 2147483647 })
    .then(() => { db.close(); parentPort.postMessage({ ok: true }); })
    .catch((e) => { try { db.close(); } catch {} parentPort.postMessage({ ok: false, code: e.code, message: e.message }); });
} catch (e) {
  try { if (db) db.close(); } catch {}
  parentPort.postMessage({ ok: false, code: e.code, message: e.message });
}
`;

async function sqliteBackup(file: string, target: string): Promise<void> {
  const st = await stat(file).catch((cause: unknown) => {
    throw new SourceError('SourceMissing', `cannot read the SQLite database ${file}: ${(cause as Error).message}`, { cause });
  });
  if (!st.isFile()) throw new SourceError('SourceMissing', `${file} is not a file`);
  const module = createRequire(import.meta.url).resolve('better-sqlite3');
  // execArgv: [] so a host's own flags (say --input-type=module) never change how the CommonJS worker is read.
  const worker = new Worker(SQLITE_WORKER, { eval: true, execArgv: [], workerData: { module, source: file, target, busyTimeoutMs: 30_000 } });
  const result = await new Promise<{ ok: boolean; code?: string; message?: string }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => resolve({ ok: false, message: `the backup worker exited (${code})` }));
  });
  await worker.terminate();
  if (!result.ok) {
    const notDb = result.code === 'SQLITE_NOTADB';
    throw new SourceError('SourceFailed', `SQLite backup of ${file} failed: ${notDb ? 'it is not an SQLite database' : result.message ?? 'unknown error'}`);
  }
}
