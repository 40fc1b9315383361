// The backup records restore checks against: one per (job, name), replaced by a new local copy
// under the same name (which is then no longer marked uploaded); and a new catalog that other
// users can neither read nor write, whatever the umask; read-only callers never create one.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { isCatalogError, openExistingCatalog } from '../../src/catalog/index.js';
import { tempDir } from '../support/env.js';
import { DEST, freshCatalog, sha } from './fixtures.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');

describe('catalog: backups of backup jobs', () => {
  it('records a backup, marks it uploaded, replaces it under the same name, forgets it', async () => {
    const catalog = await freshCatalog();
    const first = catalog.recordBackup({ job: 'app', name: 'app.sqlite', size: 10, sha256: sha(1), encrypted: false, compression: 'none' });
    assert.equal(first.destination, null);
    assert.equal(first.uploadedAt, null);
    catalog.markBackupUploaded('app', 'app.sqlite', DEST);
    const uploaded = catalog.getBackup('app', 'app.sqlite')!;
    assert.equal(uploaded.destination, DEST);
    assert.ok(uploaded.uploadedAt);
    assert.deepEqual([uploaded.size, uploaded.sha256, uploaded.encrypted, uploaded.compression], [10, sha(1), false, 'none']);

    // A fixed key_template: the next run's copy replaces the record, not yet uploaded.
    const second = catalog.recordBackup({ job: 'app', name: 'app.sqlite', size: 12, sha256: sha(2), encrypted: true, compression: 'gzip' });
    assert.equal(second.id, first.id);
    assert.deepEqual([second.size, second.sha256, second.encrypted, second.compression, second.destination, second.uploadedAt], [12, sha(2), true, 'gzip', null, null]);
    assert.equal(catalog.getBackup('other', 'app.sqlite'), undefined);

    assert.throws(() => catalog.markBackupUploaded('app', 'missing', DEST), (e: unknown) => isCatalogError(e, 'NotFound'));
    assert.throws(() => catalog.markBackupUploaded('app', 'app.sqlite', 's3://u:secret@b/x'), (e: unknown) => isCatalogError(e, 'InvalidInput'));
    assert.throws(() => catalog.recordBackup({ job: 'app', name: 'x', size: 1, sha256: 'nope', encrypted: false, compression: 'none' }), (e: unknown) => isCatalogError(e, 'InvalidInput'));
    catalog.forgetBackup('app', 'app.sqlite');
    catalog.forgetBackup('app', 'app.sqlite');
    assert.equal(catalog.getBackup('app', 'app.sqlite'), undefined);
    catalog.close();
  });

  it('creates a new catalog 0600 in 0700 directories under umask 000; openExistingCatalog creates none', async () => {
    const dir = await tempDir('offsite-catalog-mode-');
    const file = path.join(dir, 'a', 'b', 'catalog.db');
    assert.equal(openExistingCatalog(file), undefined);
    assert.equal(existsSync(path.join(dir, 'a')), false, 'a read-only open made directories');
    const code = `process.umask(0); const { openCatalog } = await import(${JSON.stringify(path.join(repoRoot, 'src/catalog/index.ts'))}); const c = openCatalog(${JSON.stringify(file)}); c.recordBackup({ job: 'j', name: 'n', size: 1, sha256: '${sha(1)}', encrypted: false, compression: 'none' }); c.close();`;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: repoRoot, encoding: 'utf8' });
    assert.equal(child.status, 0, child.stderr);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(path.join(dir, 'a')).mode & 0o777, 0o700);
    assert.equal(statSync(path.join(dir, 'a', 'b')).mode & 0o777, 0o700);
    const again = openExistingCatalog(file)!;
    assert.equal(again.getBackup('j', 'n')?.sha256, sha(1));
    again.close();
  });
});
