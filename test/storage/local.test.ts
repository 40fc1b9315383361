import assert from 'node:assert/strict';
import { readFile, writeFile, mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { LocalStorage, isStorageError } from '../../src/storage/index.js';
import { md5, readAll } from '../support/data.js';
import { tempDir } from '../support/env.js';
import { storageContract } from './contract.js';

storageContract('local directory', async () => {
  const dir = await tempDir('offsite-local-');
  return { storage: new LocalStorage(dir), url: dir, childEnv: {} };
});

describe('local adapter specifics', () => {
  it('stores objects as plain files at their key path', async () => {
    const dir = await tempDir();
    const s = new LocalStorage(dir);
    await s.put('a/b/c.txt', 'plain');
    assert.equal(await readFile(path.join(dir, 'a/b/c.txt'), 'utf8'), 'plain');
    assert.deepEqual((await readdir(path.join(dir, '.offsite-local', 'tmp'))).length, 0, 'no temp files left behind');
  });

  it('serves files copied in by other tools, computing their ETag', async () => {
    const dir = await tempDir();
    await mkdir(path.join(dir, 'imported'), { recursive: true });
    await writeFile(path.join(dir, 'imported/f.bin'), 'from elsewhere');
    const s = new LocalStorage(dir);
    const head = await s.head('imported/f.bin');
    assert.equal(head.etag, md5('from elsewhere'));
    assert.equal(head.storageClass, 'STANDARD');
    const listed = [];
    for await (const e of s.list()) listed.push(e);
    assert.deepEqual(listed.map((e) => e.type === 'object' && e.key), ['imported/f.bin']);
  });

  it('ignores a stale sidecar (crash between data rename and metadata write)', async () => {
    const dir = await tempDir();
    const s = new LocalStorage(dir);
    await s.put('k', 'old', { metadata: { v: 'old' } });
    // Simulate the crash: new data renamed into place, sidecar still describing the old inode.
    await writeFile(path.join(dir, 'k.new'), 'new data');
    const { rename } = await import('node:fs/promises');
    await rename(path.join(dir, 'k.new'), path.join(dir, 'k'));
    const head = await s.head('k');
    assert.equal(head.etag, md5('new data'));
    assert.deepEqual(head.metadata, {}, 'old metadata is not attributed to new data');
    assert.equal((await readAll((await s.get('k')).body)).toString(), 'new data');
  });

  it('refuses keys a file system cannot hold, with a clear reason', async () => {
    const dir = await tempDir();
    const s = new LocalStorage(dir);
    for (const key of ['../escape', 'a//b', 'trailing/', '/abs', '.offsite-local/x']) {
      await assert.rejects(s.put(key, 'x'), (e: unknown) => isStorageError(e, 'InvalidKey'), key);
    }
    await s.put('conflict', 'file');
    await assert.rejects(s.put('conflict/child', 'x'), (e: unknown) => isStorageError(e, 'InvalidKey') && /conflicts/.test(e.message));
  });

  it('removes empty directories when their last object is deleted', async () => {
    const dir = await tempDir();
    const s = new LocalStorage(dir);
    await s.put('deep/er/obj', 'x');
    await s.delete('deep/er/obj');
    assert.deepEqual((await readdir(dir)).filter((n) => n !== '.offsite-local'), []);
    await s.put('deep/er/obj', 'again');
    assert.equal((await readAll((await s.get('deep/er/obj')).body)).toString(), 'again');
  });
});
