import assert from 'node:assert/strict';
import { mkdir, readFile, realpath, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { before, describe, it } from 'node:test';
import { isCodecError, listTar, packDirectory, unpackTar, type FileEntry } from '../../src/codec/index.js';
import { readAll } from '../support/data.js';
import { tempDir } from '../support/env.js';
import { craftTar, listAll, makeSampleTree, run, SAMPLE, snapshotTree, type RawEntry } from './helpers.js';

let scratch: string | undefined;
let made = 0;

/** A fresh destination inside its own directory, so anything landing beside it shows up. */
async function freshDest(): Promise<{ outer: string; dest: string }> {
  scratch ??= await tempDir('offsite-unpack-');
  const outer = path.join(scratch, String(++made));
  const dest = path.join(outer, 'dest');
  await mkdir(dest, { recursive: true });
  return { outer, dest };
}

describe('unpackTar', () => {
  let parent: string;
  let tar: Buffer;
  let entries: FileEntry[];
  before(async () => {
    parent = await tempDir('offsite-unpack-src-');
    await makeSampleTree(parent);
    const packed = packDirectory(parent, SAMPLE.root);
    tar = await readAll(packed.stream);
    entries = await packed.entries;
  });

  it('round-trips packDirectory against its manifest', async () => {
    const { dest } = await freshDest();
    const report = await unpackTar(Readable.from([tar]), dest, { expected: entries });
    assert.deepEqual(await snapshotTree(dest, SAMPLE.root, { times: true }), await snapshotTree(parent, SAMPLE.root, { times: true }));
    const files = entries.filter((e) => e.type === 'file');
    assert.equal(report.files, files.length);
    assert.equal(report.bytes, files.reduce((n, e) => n + e.size, 0));
    assert.equal(report.checked, entries.length);
  });

  it('extracts what GNU tar packed (GNU long names, ./ prefix)', async () => {
    const gnu = await run('/bin/tar', ['-C', parent, '-cf', '-', '--format=gnu', `./${SAMPLE.root}`]);
    const { dest } = await freshDest();
    const report = await unpackTar(Readable.from([gnu]), dest, { expected: entries });
    assert.equal(report.checked, entries.length);
    assert.deepEqual(await snapshotTree(dest, SAMPLE.root), await snapshotTree(parent, SAMPLE.root));
  });

  it('lists an archive with the same entries packDirectory reported, without extracting', async () => {
    const listing = listTar();
    await pipeline(Readable.from([tar]), listing.sink);
    assert.deepEqual(await listing.entries, entries);
  });

  it('lists, like it extracts, nothing unsafe or damaged', async () => {
    for (const [bytes, code] of [
      [craftTar([{ path: '../evil', body: 'x' }]), 'UnsafeArchiveEntry'],
      [craftTar([{ path: 'pipe', type: 'FIFO' }]), 'UnsafeArchiveEntry'],
      [tar.subarray(0, tar.length >> 1), 'InvalidArchive'],
    ] as const) {
      const listing = listTar();
      await assert.rejects(pipeline(Readable.from([bytes]), listing.sink), (e: unknown) => isCodecError(e, code));
      await assert.rejects(listing.entries, (e: unknown) => isCodecError(e, code));
    }
  });

  it('reports a corrupted file as ArchiveMismatch, naming it', async () => {
    const bad = Buffer.from(tar);
    const at = bad.indexOf(SAMPLE.textContent);
    assert.ok(at > 0, 'the text file body is in the tar');
    bad[at + 3] = (bad[at + 3] ?? 0) ^ 0x20;
    const { dest } = await freshDest();
    await assert.rejects(unpackTar(Readable.from([bad]), dest, { expected: entries }), (e: unknown) => {
      assert.ok(isCodecError(e, 'ArchiveMismatch'), String(e));
      assert.equal(e.problems.length, 1);
      assert.match(e.problems[0] ?? '', new RegExp(`^${SAMPLE.text}: SHA-256`));
      assert.match(e.message, /notes\/readme\.txt/);
      return true;
    });
  });

  it('reports missing, extra and changed entries', async () => {
    const expected = entries
      .filter((e) => e.path !== SAMPLE.empty)
      .map((e) => (e.path === SAMPLE.symlink ? { ...e, linkTarget: 'elsewhere' } : e))
      .concat([{ path: 'S1/ghost.txt', type: 'file', size: 1, sha256: '0'.repeat(64), mode: 0o644, mtime: new Date(0).toISOString() }]);
    const { dest } = await freshDest();
    await assert.rejects(unpackTar(Readable.from([tar]), dest, { expected }), (e: unknown) => {
      assert.ok(isCodecError(e, 'ArchiveMismatch'));
      assert.deepEqual([...e.problems].sort(), [
        `${SAMPLE.symlink}: links to "${SAMPLE.symlinkTarget}", the manifest says "elsewhere"`,
        `${SAMPLE.empty}: in the archive but not in the manifest`,
        'S1/ghost.txt: in the manifest but not in the archive',
      ].sort());
      return true;
    });
  });

  describe('refuses hostile archives, writing nothing outside the destination', () => {
    const hostile: Array<{ name: string; entries: RawEntry[]; culprit: string; code?: string }> = [
      { name: 'a ../ path', entries: [{ path: 'ok.txt', body: 'fine' }, { path: '../evil', body: 'pwned' }], culprit: '../evil' },
      { name: 'a .. in the middle', entries: [{ path: 'a/../../evil', body: 'pwned' }], culprit: 'a/../../evil' },
      { name: 'an absolute path', entries: [{ path: '/tmp/offsite-evil-abs', body: 'pwned' }], culprit: '/tmp/offsite-evil-abs' },
      { name: 'a symlink to ../../etc', entries: [{ path: 'etc', type: 'SymbolicLink', linkpath: '../../etc' }], culprit: 'etc' },
      { name: 'an absolute symlink', entries: [{ path: 'passwd', type: 'SymbolicLink', linkpath: '/etc/passwd' }], culprit: 'passwd' },
      { name: 'a hard link to ../', entries: [{ path: 'h', type: 'Link', linkpath: '../outside.txt' }], culprit: 'h' },
      { name: 'a hard link to an absolute path', entries: [{ path: 'h', type: 'Link', linkpath: '/etc/passwd' }], culprit: 'h' },
      {
        name: 'a file written through a symlink of the archive',
        entries: [{ path: 'sub/', type: 'Directory' }, { path: 'l', type: 'SymbolicLink', linkpath: 'sub' }, { path: 'l/f', body: 'x' }],
        culprit: 'l/f',
      },
      {
        name: 'a symlink chain that escapes only once both links exist',
        entries: [{ path: 'd/', type: 'Directory' }, { path: 'd/up', type: 'SymbolicLink', linkpath: '..' }, { path: 's', type: 'SymbolicLink', linkpath: 'd/up/../outside.txt' }],
        culprit: 's',
      },
      { name: 'a character device', entries: [{ path: 'null', type: 'CharacterDevice' }], culprit: 'null' },
      { name: 'a FIFO', entries: [{ path: 'pipe', type: 'FIFO' }], culprit: 'pipe' },
    ];
    for (const h of hostile) {
      it(h.name, async () => {
        const { outer, dest } = await freshDest();
        await writeFile(path.join(outer, 'outside.txt'), 'original');
        await assert.rejects(unpackTar(Readable.from([craftTar(h.entries)]), dest), (e: unknown) => {
          assert.ok(isCodecError(e, 'UnsafeArchiveEntry'), String(e));
          assert.equal(e.path, h.culprit);
          assert.ok(e.message.includes(`"${h.culprit}"`), e.message);
          return true;
        });
        const outside = (await listAll(outer)).filter((p) => p !== 'outside.txt' && p !== 'dest' && !p.startsWith('dest/'));
        assert.deepEqual(outside, [], 'nothing beside the destination');
        assert.equal(await readFile(path.join(outer, 'outside.txt'), 'utf8'), 'original');
        await assert.rejects(readFile('/tmp/offsite-evil-abs'), { code: 'ENOENT' });
        // Whatever was extracted stays inside dest and leads nowhere outside.
        for (const rel of await listAll(dest)) {
          const real = await realpath(path.join(dest, rel)).catch(() => path.join(dest, rel));
          assert.ok(real.startsWith(dest), `${rel} leads to ${real}`);
        }
      });
    }

    it('a path through a symlink already in the destination', async () => {
      const { outer, dest } = await freshDest();
      await mkdir(path.join(outer, 'elsewhere'));
      await symlink(path.join(outer, 'elsewhere'), path.join(dest, 'pre'));
      await assert.rejects(unpackTar(Readable.from([craftTar([{ path: 'pre/x', body: 'pwned' }])]), dest), (e: unknown) => isCodecError(e, 'UnsafeArchiveEntry') && e.path === 'pre/x');
      assert.deepEqual(await listAll(path.join(outer, 'elsewhere')), []);
    });

    it('replaces, never follows, a symlink where a file is to be written', async () => {
      const { outer, dest } = await freshDest();
      await writeFile(path.join(outer, 'outside.txt'), 'original');
      await symlink(path.join(outer, 'outside.txt'), path.join(dest, 'f'));
      await unpackTar(Readable.from([craftTar([{ path: 'f', body: 'new' }])]), dest);
      assert.equal(await readFile(path.join(outer, 'outside.txt'), 'utf8'), 'original');
      assert.equal(await readFile(path.join(dest, 'f'), 'utf8'), 'new');
    });

    it('allows symlinks and hard links that stay inside', async () => {
      const { dest } = await freshDest();
      const report = await unpackTar(
        Readable.from([
          craftTar([
            { path: 'a/', type: 'Directory' },
            { path: 'a/f', body: 'content' },
            { path: 'a/up', type: 'SymbolicLink', linkpath: '../a/f' },
            { path: 'hard', type: 'Link', linkpath: 'a/f' },
          ]),
        ]),
        dest,
      );
      assert.equal(report.files, 2);
      assert.equal(await readFile(path.join(dest, 'a/up'), 'utf8'), 'content');
      assert.equal(await readFile(path.join(dest, 'hard'), 'utf8'), 'content');
    });
  });

  it('rejects a truncated or garbage archive as InvalidArchive', async () => {
    for (const bad of [tar.subarray(0, tar.indexOf(SAMPLE.textContent) + 10), Buffer.alloc(4096, 'x')]) {
      const { dest } = await freshDest();
      await assert.rejects(unpackTar(Readable.from([bad]), dest), (e: unknown) => isCodecError(e, 'InvalidArchive'));
    }
  });

  it('rejects with the error of a source that fails mid-file', async () => {
    const { dest } = await freshDest();
    // Either before unpackTar is listening or while it writes: both must reject, not crash.
    for (const delay of [0, 30]) {
      const failing = new Readable({ read() {} });
      failing.push(tar.subarray(0, tar.length >> 1));
      setTimeout(() => failing.destroy(new Error('connection reset by peer')), delay);
      await assert.rejects(unpackTar(failing, path.join(dest, String(delay))), /connection reset by peer/);
    }
  });

  it('stops when aborted', async () => {
    const { dest } = await freshDest();
    const ac = new AbortController();
    // Half the archive, then nothing more: only the abort can end this.
    const slow = new Readable({ read() {} });
    slow.push(tar.subarray(0, tar.length >> 1));
    setTimeout(() => ac.abort(), 50);
    await assert.rejects(unpackTar(slow, dest, { signal: ac.signal }), { name: 'AbortError' });
  });
});
