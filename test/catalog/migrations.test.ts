import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { MIGRATIONS, isCatalogError, openCatalog } from '../../src/catalog/index.js';
import { migrate } from '../../src/catalog/migrate.js';
import { tempDir } from '../support/env.js';
import { beginInput, catalogFile } from './fixtures.js';

function raw(file: string): Database.Database {
  return new Database(file);
}

describe('catalog migrations', () => {
  it('creates the file, its directories and the whole schema on first open', async () => {
    const file = await catalogFile();
    assert.equal(existsSync(path.dirname(file)), false);
    const catalog = openCatalog(file);
    catalog.close();

    const db = raw(file);
    try {
      assert.equal(db.pragma('user_version', { simple: true }), MIGRATIONS.length);
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
      const tables = db.prepare<[], { name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).all().map((t) => t.name);
      assert.deepEqual(tables, ['archives', 'backups', 'operations', 'restores', 'session_notes', 'throughput']);
    } finally {
      db.close();
    }
  });

  it('reopening is idempotent: data kept, nothing migrated again', async () => {
    const file = await catalogFile();
    const first = openCatalog(file);
    const row = first.beginArchive(beginInput());
    first.close();

    for (let i = 0; i < 3; i++) {
      const again = openCatalog(file);
      assert.deepEqual(again.getArchive(row.destination, row.key), row);
      again.close();
    }
    const db = raw(file);
    assert.equal(db.pragma('user_version', { simple: true }), MIGRATIONS.length);
    db.close();
  });

  it('refuses a catalog from a newer Offsite, telling the user to upgrade, and leaves it alone', async () => {
    const file = await catalogFile();
    openCatalog(file).close();
    const db = raw(file);
    db.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    db.exec(`CREATE TABLE from_the_future (x)`);
    db.close();

    assert.throws(
      () => openCatalog(file),
      (e: unknown) => isCatalogError(e, 'CatalogTooNew') && /newer Offsite/.test(e.message) && /[Uu]pgrade Offsite/.test(e.message) && e.message.includes(file),
    );
    const after = raw(file);
    assert.equal(after.pragma('user_version', { simple: true }), MIGRATIONS.length + 1);
    after.close();
  });

  it('upgrades an older schema step by step, keeping its rows', async () => {
    const file = path.join(await tempDir(), 'steps.db');
    const v1 = [`CREATE TABLE t (a TEXT NOT NULL);`];
    const v2 = [...v1, `ALTER TABLE t ADD COLUMN b INTEGER NOT NULL DEFAULT 7;`, `CREATE INDEX t_b ON t (b);`];
    const db = raw(file);
    try {
      assert.deepEqual(migrate(db, file, v1), { from: 0, to: 1 });
      db.prepare(`INSERT INTO t (a) VALUES ('kept')`).run();
      assert.deepEqual(migrate(db, file, v2), { from: 1, to: 3 });
      assert.deepEqual(migrate(db, file, v2), { from: 3, to: 3 });
      assert.deepEqual(db.prepare(`SELECT a, b FROM t`).all(), [{ a: 'kept', b: 7 }]);
    } finally {
      db.close();
    }
  });

  it('marks done rows of older catalogs: uploaded here (started_at) as local, rebuilt from a manifest as unsigned', async () => {
    const file = path.join(await tempDir(), 'before-auth.db');
    const auth = MIGRATIONS.findIndex((m) => m.includes('manifest_auth'));
    assert.ok(auth > 0, 'the migration that adds manifest_auth');
    const db = raw(file);
    migrate(db, file, MIGRATIONS.slice(0, auth));
    const insert = db.prepare(`INSERT INTO archives (session_id, year, key, manifest_key, destination, status, size, sha256, compression, encrypted, started_at, completed_at)
      VALUES (?, 2024, ?, ?, 'file:///b', ?, 1, '${'a'.repeat(64)}', 'none', 0, ?, ?)`);
    insert.run('uploaded', 'u.tar', 'u.tar.manifest.json', 'done', '2024-01-01T00:00:00.000Z', '2024-01-01T01:00:00.000Z');
    insert.run('rebuilt', 'r.tar', 'r.tar.manifest.json', 'done', null, '2024-01-01T01:00:00.000Z');
    insert.run('running', 'x.tar', 'x.tar.manifest.json', 'uploading', '2024-01-01T00:00:00.000Z', null);
    db.close();
    const catalog = openCatalog(file);
    assert.deepEqual(
      catalog.listArchives().map((r) => [r.sessionId, r.manifestAuth, r.manifestSha256]),
      [
        ['rebuilt', 'unsigned', null],
        ['uploaded', 'local', null],
        ['running', null, null],
      ],
    );
    catalog.close();
  });

  it('a failing migration changes nothing: earlier steps of the same run are rolled back too', async () => {
    const file = path.join(await tempDir(), 'rollback.db');
    const db = raw(file);
    try {
      migrate(db, file, [`CREATE TABLE t (a);`]);
      assert.throws(() => migrate(db, file, [`CREATE TABLE t (a);`, `CREATE TABLE u (a);`, `THIS IS NOT SQL;`]), /syntax error/);
      assert.equal(db.pragma('user_version', { simple: true }), 1);
      assert.deepEqual(db.prepare(`SELECT count(*) AS n FROM sqlite_master WHERE name = 'u'`).get(), { n: 0 });
    } finally {
      db.close();
    }
  });

  it('reports a file that is not a database as CatalogUnreadable, suggesting a rebuild', async () => {
    const file = path.join(await tempDir(), 'not-a-db.db');
    writeFileSync(file, 'this is a text file, not SQLite, and long enough to have a header'.repeat(20));
    assert.throws(() => openCatalog(file), (e: unknown) => isCatalogError(e, 'CatalogUnreadable') && /rebuild/.test(e.message));
  });

  it('works in memory', () => {
    const catalog = openCatalog(':memory:');
    assert.equal(catalog.beginArchive(beginInput()).status, 'uploading');
    catalog.close();
  });
});
