import assert from 'node:assert/strict';
import { lstat, mkdir, readFile, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { mkdirPrivate, openNewPrivateFile, writePrivateFile } from '../../src/files/index.js';
import { tempDir } from '../support/env.js';

/** Runs `fn` under a permissive umask, the case where a careless writer makes world-readable files. */
async function withUmask<T>(mask: number, fn: () => Promise<T>): Promise<T> {
  const old = process.umask(mask);
  try {
    return await fn();
  } finally {
    process.umask(old);
  }
}

describe('private files', () => {
  it('writes 0600 files and 0700 directories under umask 000', async () => {
    const dir = await tempDir();
    await withUmask(0o000, async () => {
      await mkdirPrivate(path.join(dir, 'a/b/c'));
      await writePrivateFile(path.join(dir, 'a/b/c/secret'), 'hush');
    });
    for (const d of ['a', 'a/b', 'a/b/c']) assert.equal((await stat(path.join(dir, d))).mode & 0o777, 0o700, d);
    assert.equal((await stat(path.join(dir, 'a/b/c/secret'))).mode & 0o777, 0o600);
    assert.equal(await readFile(path.join(dir, 'a/b/c/secret'), 'utf8'), 'hush');
  });

  it('keeps the mode of directories that already exist', async () => {
    const dir = await tempDir();
    await mkdir(path.join(dir, 'home'), { mode: 0o755 });
    await withUmask(0o022, () => mkdirPrivate(path.join(dir, 'home/app')));
    assert.equal((await stat(path.join(dir, 'home'))).mode & 0o777, 0o755);
    assert.equal((await stat(path.join(dir, 'home/app'))).mode & 0o777, 0o700);
  });

  it('replaces a planted symlink instead of writing through it', async () => {
    const dir = await tempDir();
    const victim = path.join(dir, 'victim.txt');
    await writeFile(victim, 'original');
    await symlink(victim, path.join(dir, 'out'));
    await writePrivateFile(path.join(dir, 'out'), 'new content');
    assert.equal(await readFile(victim, 'utf8'), 'original');
    assert.ok((await lstat(path.join(dir, 'out'))).isFile());
    assert.equal(await readFile(path.join(dir, 'out'), 'utf8'), 'new content');
  });

  it('openNewPrivateFile refuses an existing file and a symlink', async () => {
    const dir = await tempDir();
    await writeFile(path.join(dir, 'there'), 'x');
    await symlink(path.join(dir, 'elsewhere'), path.join(dir, 'link'));
    await assert.rejects(openNewPrivateFile(path.join(dir, 'there')), { code: 'EEXIST' });
    await assert.rejects(openNewPrivateFile(path.join(dir, 'link')), { code: 'EEXIST' });
    assert.equal(await readlink(path.join(dir, 'link')), path.join(dir, 'elsewhere'));
    await assert.rejects(stat(path.join(dir, 'elsewhere')), { code: 'ENOENT' });
  });
});
