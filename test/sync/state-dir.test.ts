// The state directory holds the account's secret: whoever created it, it ends up 0700 with 0600
// files; a directory owned by another user is refused; a symlink planted at the secret's name is
// neither written nor read through. The backend does not matter here: a local directory.
import assert from 'node:assert/strict';
import { chmod, chown, lstat, mkdir, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { isSyncError, SyncClient } from '../../src/sync/index.js';
import { rejectsWithCode } from '../support/assert.js';
import { historyEntries, localTarget, scratchDir } from './helpers.js';

const isSyncErr = (e: unknown): e is Error & { code: string } => isSyncError(e);
const mode = async (p: string) => (await stat(p)).mode & 0o777;

/** A directory that belongs to another user: made here and given away as root (CI and this machine), else one root owns. */
async function othersDirectory(): Promise<string> {
  if (process.getuid?.() !== 0) return tmpdir(); // /tmp: root's
  const dir = path.join(await scratchDir('others-'), 'state');
  await mkdir(dir);
  await chmod(dir, 0o777);
  await chown(dir, 65534, 65534);
  return dir;
}

describe('the sync state directory', () => {
  it('a directory made beforehand with 0777 is 0700 after init, and loosened modes are tightened again at open', async () => {
    const dir = path.join(await scratchDir('loose-'), 'state');
    await mkdir(dir);
    await chmod(dir, 0o777);
    const url = await localTarget.newBucket('state-loose');
    const { client } = await SyncClient.init({ stateDir: dir, storageUrl: url });
    await client.push(historyEntries('a', 1));
    await client.close();
    assert.equal(await mode(dir), 0o700, 'the directory');
    for (const f of await readdir(dir)) assert.equal(await mode(path.join(dir, f)), 0o600, f);

    await chmod(dir, 0o777);
    await chmod(path.join(dir, 'secret'), 0o644);
    await chmod(path.join(dir, 'sync.db'), 0o666);
    const again = await SyncClient.open({ stateDir: dir });
    await again.close();
    assert.equal(await mode(dir), 0o700, 'the directory, at open');
    assert.equal(await mode(path.join(dir, 'secret')), 0o600, 'the secret, at open');
    assert.equal(await mode(path.join(dir, 'sync.db')), 0o600, 'the database, at open');
  });

  it('a directory that belongs to another user is refused, at init and at open', async () => {
    const url = await localTarget.newBucket('state-others');
    const others = await othersDirectory();
    const e = await rejectsWithCode(SyncClient.init({ stateDir: others, storageUrl: url }), isSyncErr, 'UnsafeStateDir');
    assert.match(e.message, /belongs to user \d+, not to you/);
    assert.ok(!(await readdir(others)).includes('secret'), 'no secret was written there');

    if (process.getuid?.() === 0) {
      // A device's own directory given to another user later.
      const dir = path.join(await scratchDir('given-'), 'state');
      const { client } = await SyncClient.init({ stateDir: dir, storageUrl: url });
      await client.close();
      await chown(dir, 65534, 65534);
      await rejectsWithCode(SyncClient.open({ stateDir: dir }), isSyncErr, 'UnsafeStateDir');
    }
  });

  it('a symlink planted at the secret’s name is not written through: init is refused and the linked file is untouched', async () => {
    const root = await scratchDir('planted-');
    const dir = path.join(root, 'state');
    await mkdir(dir);
    await chmod(dir, 0o777); // open to everyone: another user plants a link
    const victim = path.join(root, 'readable-by-the-planter.txt');
    await writeFile(victim, 'planted\n', { mode: 0o644 });
    await symlink(victim, path.join(dir, 'secret'));
    const url = await localTarget.newBucket('state-planted');
    const e = await rejectsWithCode(SyncClient.init({ stateDir: dir, storageUrl: url }), isSyncErr, 'UnsafeStateDir');
    assert.match(e.message, /secret is a symbolic link/);
    assert.equal(await readFile(victim, 'utf8'), 'planted\n', 'the linked file does not hold the secret');
    assert.equal(await mode(victim), 0o644, 'nor was it chmod-ed through the link');

    // An existing state whose secret was swapped for a link: refused, not read.
    const own = path.join(await scratchDir('swapped-'), 'state');
    const { client } = await SyncClient.init({ stateDir: own, storageUrl: url });
    await client.close();
    const secret = await readFile(path.join(own, 'secret'), 'utf8');
    await writeFile(victim, secret);
    await rm(path.join(own, 'secret'));
    await symlink(victim, path.join(own, 'secret'));
    await rejectsWithCode(SyncClient.open({ stateDir: own }), isSyncErr, 'UnsafeStateDir');
    assert.ok((await lstat(path.join(own, 'secret'))).isSymbolicLink(), 'left for the user to look at');
  });
});
