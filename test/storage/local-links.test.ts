// The local adapter against a hostile bucket directory: symbolic links (and other non-files)
// planted inside it must never be followed, served or listed, and nothing Offsite writes there
// is readable by other users whatever the umask. Local-only: S3 has no links.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstat, mkdir, readdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LocalStorage, type ListEntry } from '../../src/storage/index.js';
import { rejectsWith } from '../support/assert.js';
import { md5, readAll, sha256 } from '../support/data.js';
import { tempDir } from '../support/env.js';

const SECRET = 'outside-the-bucket: DB_PASSWORD=hunter2-s3cret\n';

interface Scene {
  bucket: string;
  outside: string;
  secretFile: string;
  storage: LocalStorage;
}

/** A bucket with one honest object, and a directory outside it holding a secret. */
async function scene(): Promise<Scene> {
  const base = await tempDir('offsite-links-');
  const bucket = path.join(base, 'bucket');
  const outside = path.join(base, 'outside');
  await mkdir(outside);
  const secretFile = path.join(outside, 'secret.txt');
  await writeFile(secretFile, SECRET);
  const storage = new LocalStorage(bucket);
  await storage.put('honest/object.txt', 'honest');
  return { bucket, outside, secretFile, storage };
}

async function collect(it: AsyncIterable<ListEntry>): Promise<ListEntry[]> {
  const out: ListEntry[] = [];
  for await (const e of it) out.push(e);
  return out;
}

/** Every refusal names the link and says a local bucket does not follow links. */
function isLinkRefusal(e: Error, link: string): void {
  assert.match(e.message, /symbolic link/, e.message);
  assert.ok(e.message.includes(`"${link}"`), `the message names the link "${link}": ${e.message}`);
  assert.ok(!e.message.includes('hunter2'), 'the message holds nothing of the target');
}

async function outsideUnchanged(s: Scene): Promise<void> {
  assert.equal(sha256(await readFile(s.secretFile)), sha256(SECRET), 'the file outside the bucket is unchanged');
  assert.deepEqual((await readdir(s.outside)).sort(), ['secret.txt'], 'nothing new outside the bucket');
}

describe('local adapter: symbolic links planted in the bucket', () => {
  it('get, head and getTags refuse a link to a file outside, and never return its bytes or ETag', async () => {
    const s = await scene();
    await symlink(s.secretFile, path.join(s.bucket, 'link.txt'));
    isLinkRefusal(await rejectsWith(s.storage.get('link.txt'), 'AccessDenied'), 'link.txt');
    isLinkRefusal(await rejectsWith(s.storage.head('link.txt'), 'AccessDenied'), 'link.txt');
    isLinkRefusal(await rejectsWith(s.storage.getTags('link.txt'), 'AccessDenied'), 'link.txt');
    // A relative link that stays inside the bucket is refused too: links are not objects.
    await symlink('honest/object.txt', path.join(s.bucket, 'alias.txt'));
    isLinkRefusal(await rejectsWith(s.storage.get('alias.txt'), 'AccessDenied'), 'alias.txt');
    await outsideUnchanged(s);
  });

  it('get, head, put and delete refuse a path through a directory link', async () => {
    const s = await scene();
    await symlink(s.outside, path.join(s.bucket, 'dirlink'));
    isLinkRefusal(await rejectsWith(s.storage.get('dirlink/secret.txt'), 'AccessDenied'), 'dirlink');
    isLinkRefusal(await rejectsWith(s.storage.head('dirlink/secret.txt'), 'AccessDenied'), 'dirlink');
    isLinkRefusal(await rejectsWith(s.storage.put('dirlink/secret.txt', 'overwritten'), 'AccessDenied'), 'dirlink');
    isLinkRefusal(await rejectsWith(s.storage.put('dirlink/new/deeper.txt', 'planted'), 'AccessDenied'), 'dirlink');
    isLinkRefusal(await rejectsWith(s.storage.put('dirlink/secret.txt', 'x', { ifNoneMatch: '*' }), 'AccessDenied'), 'dirlink');
    isLinkRefusal(await rejectsWith(s.storage.delete('dirlink/secret.txt'), 'AccessDenied'), 'dirlink');
    await outsideUnchanged(s);
    // A link deeper down, under a real directory, is found as well.
    await symlink(s.outside, path.join(s.bucket, 'honest', 'sub'));
    isLinkRefusal(await rejectsWith(s.storage.get('honest/sub/secret.txt'), 'AccessDenied'), 'honest/sub');
    isLinkRefusal(await rejectsWith(s.storage.put('honest/sub/secret.txt', 'overwritten'), 'AccessDenied'), 'honest/sub');
    await outsideUnchanged(s);
  });

  it('put refuses to replace a link at the key, and leaves its target alone', async () => {
    const s = await scene();
    await symlink(s.secretFile, path.join(s.bucket, 'link.txt'));
    isLinkRefusal(await rejectsWith(s.storage.put('link.txt', 'overwritten'), 'AccessDenied'), 'link.txt');
    isLinkRefusal(await rejectsWith(s.storage.put('link.txt', 'overwritten', { ifMatch: md5(SECRET) }), 'AccessDenied'), 'link.txt');
    assert.ok((await lstat(path.join(s.bucket, 'link.txt'))).isSymbolicLink(), 'the link is left for the user to look at');
    await outsideUnchanged(s);
    // delete removes the link itself (it is not followed), as a user cleaning up expects.
    await s.storage.delete('link.txt');
    await assert.rejects(lstat(path.join(s.bucket, 'link.txt')), { code: 'ENOENT' });
    await outsideUnchanged(s);
  });

  it('list skips links (files and directories) and lists the real objects only', async () => {
    const s = await scene();
    await symlink(s.secretFile, path.join(s.bucket, 'link.txt'));
    await symlink(s.outside, path.join(s.bucket, 'dirlink'));
    await symlink(s.secretFile, path.join(s.bucket, 'honest', 'inner-link.txt'));
    await symlink(path.join(s.bucket, 'no-such-target'), path.join(s.bucket, 'dangling'));
    execFileSync('mkfifo', [path.join(s.bucket, 'honest', 'fifo')]);
    const all = await collect(s.storage.list());
    assert.deepEqual(all, [{ type: 'object', key: 'honest/object.txt', size: 6, etag: md5('honest'), lastModified: (all[0] as { lastModified: Date }).lastModified, storageClass: 'STANDARD' }]);
    const rolled = await collect(s.storage.list({ delimiter: '/' }));
    assert.deepEqual(rolled, [{ type: 'prefix', prefix: 'honest/' }], 'no common prefix for a directory link');
    assert.deepEqual(await collect(s.storage.list({ prefix: 'dirlink/' })), [], 'nothing under a directory link');
  });

  it('get of a FIFO planted at a key answers at once instead of hanging', { timeout: 10_000 }, async () => {
    const s = await scene();
    execFileSync('mkfifo', [path.join(s.bucket, 'pipe')]);
    const t0 = Date.now();
    await rejectsWith(s.storage.get('pipe'), 'NotFound');
    await rejectsWith(s.storage.head('pipe'), 'NotFound');
    assert.ok(Date.now() - t0 < 2000, `answered in ${Date.now() - t0} ms`);
  });

  it("put refuses when Offsite's own directories inside the bucket are links, and writes nothing outside", async () => {
    for (const internal of ['.offsite-local', '.offsite-local/tmp', '.offsite-local/meta']) {
      const s = await scene();
      const target = path.join(s.bucket, internal);
      await rm(target, { recursive: true, force: true });
      await mkdir(path.dirname(target), { recursive: true });
      await symlink(s.outside, target);
      isLinkRefusal(await rejectsWith(s.storage.put('fresh.txt', 'the object content'), 'AccessDenied'), internal);
      await outsideUnchanged(s);
    }
  });

  it('a directory swapped for a link while reads run never yields the outside file', async () => {
    const s = await scene();
    const real = path.join(s.bucket, 'swap');
    const aside = path.join(s.bucket, 'swap-aside');
    await s.storage.put('swap/secret.txt', 'inside');
    let stop = false;
    let swaps = 0;
    // The attacker: replaces the directory by a link to the outside one and back, as fast as it can.
    const attacker = (async () => {
      while (!stop) {
        await rename(real, aside);
        await symlink(s.outside, real);
        await new Promise((r) => setImmediate(r));
        await rm(real);
        await rename(aside, real);
        swaps++;
      }
    })();
    const seen = new Map<string, number>();
    // 3 s of reads, longer if none has come between two swaps yet (a loaded machine).
    const deadline = Date.now() + 3000;
    const latest = deadline + 20_000;
    while (Date.now() < deadline || (!seen.has('inside') && Date.now() < latest)) {
      try {
        const body = (await readAll((await s.storage.get('swap/secret.txt')).body)).toString();
        seen.set(body, (seen.get(body) ?? 0) + 1);
      } catch (e) {
        const code = (e as { code?: string }).code ?? 'raw';
        seen.set(code, (seen.get(code) ?? 0) + 1);
      }
    }
    stop = true;
    await attacker;
    process.stderr.write(`# swap race: ${swaps} swaps, reads: ${JSON.stringify(Object.fromEntries(seen))}\n`);
    assert.ok(!seen.has(SECRET), 'the outside file was never returned');
    assert.ok((seen.get('inside') ?? 0) > 0, 'the real object was read between swaps');
    assert.ok([...seen.keys()].every((k) => ['inside', 'AccessDenied', 'NotFound'].includes(k)), `only the object, AccessDenied or NotFound: ${[...seen.keys()].join(', ')}`);
  });
});

describe('local adapter: modes whatever the umask', () => {
  let savedUmask: number;
  before(() => {
    savedUmask = process.umask();
  });
  after(() => {
    process.umask(savedUmask);
  });

  for (const umask of [0o000, 0o022]) {
    it(`umask ${umask.toString(8).padStart(3, '0')}: objects, sidecars and temp files 0600, directories 0700`, async () => {
      process.umask(umask);
      const base = await tempDir('offsite-modes-');
      const bucket = path.join(base, 'new', 'bucket');
      const s = new LocalStorage(bucket);
      await s.put('a/b/c/object.bin', 'private', { metadata: { who: 'me' }, tags: { t: '1' } });
      await s.put('top.txt', 'private too');
      await s.put('a/b/c/object.bin', 'replaced', { ifMatch: md5('private') });
      await s.delete('top.txt');
      process.umask(savedUmask);
      const modes: string[] = [];
      const walk = async (dir: string): Promise<void> => {
        for (const name of await readdir(dir)) {
          const p = path.join(dir, name);
          const st = await lstat(p);
          modes.push(`${path.relative(base, p)} ${st.isDirectory() ? 'd' : 'f'}${(st.mode & 0o777).toString(8)}`);
          if (st.isDirectory()) await walk(p);
        }
      };
      await walk(base);
      const wrong = modes.filter((m) => !/ (d700|f600)$/.test(m));
      assert.deepEqual(wrong, [], `every file 0600 and directory 0700:\n${modes.join('\n')}`);
      assert.ok(modes.some((m) => m.endsWith('a/b/c/object.bin f600')), 'the object');
      assert.ok(modes.some((m) => /\.offsite-local\/meta\/.*\.json f600$/.test(m)), 'its sidecar');
      assert.ok(modes.some((m) => m === 'new d700') && modes.some((m) => m === 'new/bucket d700'), 'the bucket directory and its parent created by Offsite');
      assert.equal((await readAll((await s.get('a/b/c/object.bin')).body)).toString(), 'replaced');
      assert.equal(((await stat(path.join(bucket, 'a/b/c/object.bin'))).mode & 0o777), 0o600);
    });
  }
});
