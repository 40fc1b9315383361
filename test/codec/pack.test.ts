import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { before, describe, it } from 'node:test';
import { isCodecError, packDirectory, type FileEntry } from '../../src/codec/index.js';
import { readAll, sha256 } from '../support/data.js';
import { tempDir } from '../support/env.js';
import { BIG_FILE_SIZE, makeSampleTree, run, SAMPLE, snapshotTree } from './helpers.js';

describe('packDirectory', () => {
  let parent: string;
  before(async () => {
    parent = await tempDir('offsite-pack-');
    await makeSampleTree(parent);
  });

  it('produces a tar that GNU tar extracts to an identical tree', async () => {
    const out = await tempDir('offsite-pack-x-');
    const packed = packDirectory(parent, SAMPLE.root);
    await run('/bin/tar', ['-xf', '-', '-C', out], packed.stream);
    await packed.entries;
    const original = await snapshotTree(parent, SAMPLE.root, { times: true });
    const restored = await snapshotTree(out, SAMPLE.root, { times: true });
    assert.deepEqual(restored, original);
    // The tree really has what the test claims to cover.
    const byPath = new Map(original.map((n) => [n.path, n]));
    assert.equal(byPath.get(SAMPLE.big)?.size, BIG_FILE_SIZE);
    assert.equal(byPath.get(SAMPLE.empty)?.size, 0);
    assert.equal(byPath.get(SAMPLE.symlink)?.linkTarget, SAMPLE.symlinkTarget);
    assert.ok(byPath.has(SAMPLE.unicode) && byPath.has(SAMPLE.longPath) && byPath.has(SAMPLE.emptyDir));
  });

  it('reports every entry, with the SHA-256 and size of each file, in sorted order', async () => {
    const seen: FileEntry[] = [];
    const packed = packDirectory(parent, SAMPLE.root, { onFile: (e) => seen.push(e) });
    const tarBytes = await readAll(packed.stream);
    const entries = await packed.entries;
    assert.deepEqual(seen, entries);
    const snapshot = await snapshotTree(parent, SAMPLE.root);
    assert.deepEqual(
      entries.map((e) => e.path),
      snapshot.map((n) => n.path).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
    );
    for (const node of snapshot) {
      const e = entries.find((x) => x.path === node.path);
      assert.ok(e, node.path);
      assert.equal(e.type, node.type, node.path);
      if (node.type === 'file') {
        assert.equal(e.sha256, node.sha256, node.path);
        assert.equal(e.size, node.size, node.path);
        assert.equal(e.mode, node.mode, node.path);
      } else {
        assert.equal(e.sha256, undefined);
        assert.equal(e.size, 0);
      }
      if (node.type === 'symlink') assert.equal(e.linkTarget, node.linkTarget);
    }
    assert.equal(entries.find((e) => e.path === SAMPLE.big)?.mtime, '2024-03-01T12:34:56.000Z');
    // GNU tar sees the same names, all relative and under S1/.
    const listed = (await run('/bin/tar', ['-tf', '-'], tarBytes)).toString().trim().split('\n');
    assert.deepEqual(
      listed.map((p) => p.replace(/\/$/, '')),
      entries.map((e) => e.path),
    );
    assert.ok(listed.every((p) => p.startsWith(`${SAMPLE.root}/`) || p === `${SAMPLE.root}/`));
  });

  it('is deterministic: the same tree gives the same bytes', async () => {
    const a = await readAll(packDirectory(parent, SAMPLE.root).stream);
    const b = await readAll(packDirectory(parent, SAMPLE.root).stream);
    assert.equal(sha256(a), sha256(b));
    assert.equal(a.length % 512, 0);
  });

  it('packs a nested name with paths that start with it', async () => {
    const packed = packDirectory(parent, `${SAMPLE.root}/raw`);
    const listed = (await run('/bin/tar', ['-tf', '-'], packed.stream)).toString().trim().split('\n');
    assert.deepEqual(listed, ['S1/raw/', 'S1/raw/a.fits', 'S1/raw/run.sh']);
  });

  it('refuses names that are absolute or climb out, before any I/O', () => {
    for (const bad of ['/etc', '../x', 'a/../../b', '', '.']) {
      assert.throws(() => packDirectory(parent, bad), (e: unknown) => isCodecError(e, 'InvalidArgument'), bad);
    }
  });

  it('fails with SourceUnreadable when the directory is missing or is a file', async () => {
    for (const name of ['does-not-exist', SAMPLE.empty]) {
      const packed = packDirectory(parent, name);
      await assert.rejects(readAll(packed.stream), (e: unknown) => isCodecError(e, 'SourceUnreadable') && e.message.includes(name));
      await assert.rejects(packed.entries, (e: unknown) => isCodecError(e, 'SourceUnreadable'));
    }
  });

  it('leaves out FIFOs with a warning instead of hanging on them', async () => {
    const dir = await tempDir('offsite-pack-fifo-');
    await mkdir(path.join(dir, 'd'));
    await writeFile(path.join(dir, 'd', 'f'), 'x');
    execFileSync('mkfifo', [path.join(dir, 'd', 'pipe')]);
    const warnings: string[] = [];
    const packed = packDirectory(dir, 'd', { onWarning: (w) => warnings.push(w.path) });
    await readAll(packed.stream);
    assert.deepEqual(
      (await packed.entries).map((e) => e.path),
      ['d', 'd/f'],
    );
    assert.deepEqual(warnings, ['d/pipe']);
  });

  it('stops on abort and closes the file it was reading', async () => {
    const fds = async (): Promise<number> => (await readdir('/proc/self/fd')).length;
    const before = await fds();
    const ac = new AbortController();
    const packed = packDirectory(parent, SAMPLE.root, { signal: ac.signal });
    let got = 0;
    const sink = new Writable({
      write(chunk: Buffer, _e, cb) {
        got += chunk.length;
        if (got > 1024 * 1024) ac.abort();
        cb();
      },
    });
    await assert.rejects(pipeline(packed.stream, sink), { name: 'AbortError' });
    await assert.rejects(packed.entries, { name: 'AbortError' });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(await fds(), before, 'no file descriptor left open');
  });
});

describe('packDirectory: the tar filled into the consumer’s own buffers', () => {
  let parent: string;
  before(async () => {
    parent = await tempDir('offsite-pack-fill-');
    await mkdir(path.join(parent, 'S1', 'sub'), { recursive: true });
    const big = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 12)) & 0xff;
    await writeFile(path.join(parent, 'S1', 'big.bin'), big);
    for (let i = 0; i < 40; i++) await writeFile(path.join(parent, 'S1', 'sub', `f${i}.txt`), `file ${i} `.repeat(i * 13));
  });

  /** The whole tar through fill() with buffers of `size`, and what observe() saw. */
  async function fillAll(size: number): Promise<{ tar: Buffer; observed: Buffer; entries: FileEntry[] }> {
    const seen: Buffer[] = [];
    const packed = packDirectory(parent, 'S1', { observe: (b) => seen.push(Buffer.from(b)) });
    const filler = packed.stream.takeFiller();
    assert.ok(filler, 'an unread stream hands its filler over');
    assert.equal(packed.stream.takeFiller(), undefined, 'only once');
    const parts: Buffer[] = [];
    for (;;) {
      const buf = Buffer.alloc(size);
      const n = await filler.fill(buf);
      parts.push(buf.subarray(0, n));
      if (n < size) break;
    }
    const ended = new Promise((r) => packed.stream.once('end', r));
    await filler.finish();
    await ended;
    return { tar: Buffer.concat(parts), observed: Buffer.concat(seen), entries: await packed.entries };
  }

  it('gives the same bytes and entries as the stream, whatever the buffer size, and observe() sees each byte once', async () => {
    const streamed = packDirectory(parent, 'S1');
    const viaStream = await readAll(streamed.stream);
    const entries = await streamed.entries;
    for (const size of [512, 1000, 64 * 1024, 5 * 1024 * 1024]) {
      const r = await fillAll(size);
      assert.equal(sha256(r.tar), sha256(viaStream), `buffers of ${size}`);
      assert.equal(sha256(r.observed), sha256(viaStream));
      assert.deepEqual(r.entries, entries);
    }
    const listed = execFileSync('tar', ['-tf', '-'], { input: viaStream, encoding: 'utf8' }).split('\n').filter(Boolean);
    assert.ok(listed.includes('S1/big.bin') && listed.includes('S1/sub/f39.txt'));
  });

  it('a stream read first keeps its filler; a taken filler that fails destroys the stream and rejects the entries', async () => {
    const read = packDirectory(parent, 'S1');
    read.stream.read(0);
    await new Promise((r) => setImmediate(r));
    read.stream.resume();
    assert.equal(read.stream.takeFiller(), undefined);
    await readAll(read.stream).catch(() => undefined);

    const abandoned = packDirectory(parent, 'S1');
    const filler = abandoned.stream.takeFiller()!;
    await filler.fill(Buffer.alloc(4096));
    const destroyed = new Promise((r) => abandoned.stream.once('error', r));
    await filler.finish(new Error('upload failed'));
    assert.match(String(await destroyed), /upload failed/);
    await assert.rejects(abandoned.entries, /upload failed/);
  });
});
