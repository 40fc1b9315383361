// A SQLite database that another process keeps writing to while it is backed up (the job and
// console tests): rows 1, 2, 3, ... each with a payload derived from its id, so a copy can be
// checked for being a prefix of the writes with nothing torn.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import Database from 'better-sqlite3';

const repoRoot = path.resolve(import.meta.dirname, '../..');

export const payloadOf = (id: number) => createHash('sha256').update(`row ${id}`).digest('hex').repeat(8);

/** A WAL database with `rows` rows (512 bytes each), big enough for the progress bar to move. */
export function makeDatabase(file: string, rows: number): void {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE rows (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)');
  const ins = db.prepare('INSERT INTO rows (id, payload) VALUES (?, ?)');
  db.transaction(() => {
    for (let i = 1; i <= rows; i++) ins.run(i, payloadOf(i));
  })();
  db.close();
}

/** A process inserting the next rows, 50 every 20 ms (steady, without taking a whole core), until killed. */
export async function startWriter(file: string): Promise<ChildProcess> {
  const code = `
    const Database = require('better-sqlite3');
    const { createHash } = require('node:crypto');
    const db = new Database(${JSON.stringify(file)}, { timeout: 10000 });
    db.pragma('journal_mode = WAL');
    let id = db.prepare('SELECT COALESCE(MAX(id), 0) AS m FROM rows').get().m;
    const ins = db.prepare('INSERT INTO rows (id, payload) VALUES (?, ?)');
    const batch = db.transaction((n) => { for (let i = 0; i < n; i++) { id++; ins.run(id, createHash('sha256').update('row ' + id).digest('hex').repeat(8)); } });
    process.stdout.write('ready\\n');
    setInterval(() => batch(50), 20);
  `;
  const child = spawn(process.execPath, ['-e', code], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (c) => reject(new Error(`writer exited (${c})`)));
  });
  return child;
}

export function maxId(file: string): number {
  const db = new Database(file, { readonly: true, timeout: 10000 });
  try {
    return (db.prepare('SELECT COALESCE(MAX(id), 0) AS m FROM rows').get() as { m: number }).m;
  } finally {
    db.close();
  }
}

/** integrity_check, and the rows 1..n with their own payloads; returns n. */
export function checkPrefixOfWrites(file: string): { integrity: string; n: number; max: number; payloadsOk: boolean } {
  const db = new Database(file, { readonly: true });
  try {
    const integrity = (db.pragma('integrity_check') as Array<{ integrity_check: string }>)[0]?.integrity_check ?? '';
    const { n, max } = db.prepare('SELECT COUNT(*) AS n, MAX(id) AS max FROM rows').get() as { n: number; max: number };
    let payloadsOk = true;
    for (const row of db.prepare('SELECT id, payload FROM rows WHERE id % 97 = 0 OR id = ?').iterate(max) as Iterable<{ id: number; payload: string }>) {
      if (row.payload !== payloadOf(row.id)) payloadsOk = false;
    }
    return { integrity, n, max, payloadsOk };
  } finally {
    db.close();
  }
}
