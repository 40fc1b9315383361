import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isCatalogError, openCatalog } from '../../src/catalog/index.js';
import { DEST, beginInput, catalogFile, sha } from './fixtures.js';

const childScript = fileURLToPath(new URL('./catalog-child.ts', import.meta.url));

/** Run a node script that holds the write lock of `file` for `ms`, resolving once it holds it. */
function holdWriteLock(file: string, ms: number): Promise<{ released: Promise<void>; release: () => void }> {
  const script = `
    const Database = require('better-sqlite3');
    const db = new Database(process.argv[1]);
    db.exec('BEGIN IMMEDIATE');
    process.stdout.write('locked\\n');
    setTimeout(() => { db.exec('COMMIT'); db.close(); }, Number(process.argv[2]));`;
  const child = spawn(process.execPath, ['-e', script, file, String(ms)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const released = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Killing the holder releases the lock too: SQLite locks die with their process.
  const release = () => void child.kill('SIGKILL');
  return new Promise((resolve) => createInterface({ input: child.stdout }).once('line', () => resolve({ released, release })));
}

describe('concurrent access', () => {
  it('two instances on one file see each other’s writes, and a done row stays done for both', async () => {
    const file = await catalogFile();
    const a = openCatalog(file);
    const b = openCatalog(file);
    const row = a.beginArchive(beginInput());
    assert.equal(b.getArchive(DEST, row.key)?.status, 'uploading');
    b.setUploadId(row.id, 'mpu-from-b');
    assert.equal(a.getArchive(DEST, row.key)?.uploadId, 'mpu-from-b');
    b.completeArchive(row.id, { size: 1, sha256: sha(9), etag: 'e', fileCount: 1, sourceBytes: 1 });
    assert.throws(() => a.beginArchive(beginInput()), (e: unknown) => isCatalogError(e, 'AlreadyDone'));
    assert.throws(() => a.failArchive(row.id, 'stale view'), (e: unknown) => isCatalogError(e, 'AlreadyDone'));
    const opA = a.startOperation('upload', {});
    const opB = b.startOperation('verify', {});
    assert.deepEqual(
      a.recentOperations(2).map((o) => o.id),
      [opB, opA],
    );
    a.close();
    b.close();
  });

  it('several processes opening a fresh file and writing at once all succeed', async () => {
    const file = await catalogFile();
    const writers = 4;
    const perWriter = 40;
    const children = Array.from({ length: writers }, (_, i) => {
      const child = spawn(process.execPath, ['--import', 'tsx', childScript, 'writer', file, `w${i}`, String(perWriter)], { stdio: ['pipe', 'pipe', 'inherit'] });
      const lines = createInterface({ input: child.stdout });
      const ready = new Promise<void>((resolve) => lines.once('line', () => resolve()));
      const result = new Promise<string>((resolve) => lines.on('line', (l) => l !== 'ready' && resolve(l)));
      return { child, ready, result };
    });
    await Promise.all(children.map((c) => c.ready));
    for (const c of children) c.child.stdin.end('go\n');
    assert.deepEqual(await Promise.all(children.map((c) => c.result)), Array(writers).fill('done'));

    const catalog = openCatalog(file);
    const rows = catalog.listArchives({ destination: 's3://shared/bucket' });
    assert.equal(rows.length, writers * perWriter);
    assert.ok(rows.every((r) => r.status === 'done' && r.uploadId === null));
    assert.equal(catalog.recentOperations(100).filter((o) => o.status === 'ok').length, writers);
    assert.equal(catalog.measuredThroughput('upload'), 1000);
    assert.deepEqual(
      catalog.totals().map((t) => [t.year, t.archives]),
      [
        [2020, 4 * 14],
        [2021, 4 * 13],
        [2022, 4 * 13],
      ],
    );
    catalog.close();
  });

  it('a writer waits for another process’s lock instead of failing at once', async () => {
    const file = await catalogFile();
    const catalog = openCatalog(file);
    const { released } = await holdWriteLock(file, 700);
    const t0 = Date.now();
    const row = catalog.beginArchive(beginInput());
    assert.ok(Date.now() - t0 >= 400, `waited ${Date.now() - t0} ms`);
    assert.equal(row.status, 'uploading');
    await released;
    catalog.close();
  });

  it('a lock held past the busy timeout is reported as CatalogBusy, naming the file', async () => {
    const file = await catalogFile();
    const catalog = openCatalog(file);
    catalog.beginArchive(beginInput());
    const { released, release } = await holdWriteLock(file, 60_000);
    // Readers are never blocked by a writer in WAL mode.
    const t0 = Date.now();
    assert.equal(catalog.listArchives().length, 1);
    assert.ok(Date.now() - t0 < 1000);
    assert.throws(() => catalog.startOperation('upload', {}), (e: unknown) => isCatalogError(e, 'CatalogBusy') && e.message.includes(file));
    release();
    await released;
    assert.doesNotThrow(() => catalog.startOperation('upload', {}));
    catalog.close();
  });
});
