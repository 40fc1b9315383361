import assert from 'node:assert/strict';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { gunzipStream, gzipStream, hashFile, hashingStream, isCodecError } from '../../src/codec/index.js';
import { md5, pseudoRandomStream, readAll, sha256, sha256OfStream } from '../support/data.js';
import { run } from './helpers.js';

describe('gzip', () => {
  it('round-trips, and compresses what is compressible', async () => {
    const text = Buffer.from('offsite backs up to S3-compatible storage\n'.repeat(50_000));
    const random = await readAll(pseudoRandomStream(3 * 1024 * 1024 + 5, 'gz'));
    for (const data of [text, random, Buffer.alloc(0)]) {
      const packed = await readAll(Readable.from([data]).pipe(gzipStream()));
      const back = await readAll(Readable.from([packed]).pipe(gunzipStream()));
      assert.equal(sha256(back), sha256(data));
    }
    const small = await readAll(Readable.from([text]).pipe(gzipStream(9)));
    assert.ok(small.length < text.length / 50, `${small.length} bytes`);
  });

  it('interoperates with gzip(1)', async () => {
    const data = await readAll(pseudoRandomStream(1_000_000, 'gz-cli'));
    const ours = await readAll(Readable.from([data]).pipe(gzipStream(1)));
    assert.equal(sha256(await run('gzip', ['-dc'], ours)), sha256(data));
    const theirs = await run('gzip', ['-c'], data);
    assert.equal(sha256(await readAll(Readable.from([theirs]).pipe(gunzipStream()))), sha256(data));
  });

  it('refuses a level out of range, and fails on corrupt input', async () => {
    assert.throws(() => gzipStream(10), (e: unknown) => isCodecError(e, 'InvalidArgument'));
    await assert.rejects(readAll(Readable.from([Buffer.from('definitely not gzip')]).pipe(gunzipStream())));
  });
});

describe('hashFile', () => {
  it('gives the SHA-256 and size of files around its 1 MiB read size, and counts as it goes', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'offsite-hashfile-'));
    try {
      const MiB = 1024 * 1024;
      const data = await readAll(pseudoRandomStream(3 * MiB + 17, 'hashfile'));
      for (const size of [0, 1, MiB - 1, MiB, MiB + 1, 2 * MiB, 3 * MiB + 17]) {
        const file = path.join(dir, `f${size}`);
        await writeFile(file, data.subarray(0, size));
        const seen: number[] = [];
        const digest = await hashFile(file, { onBytes: (n) => seen.push(n) });
        assert.deepEqual(digest, { sha256: sha256(data.subarray(0, size)), md5: undefined, bytes: size }, `size ${size}`);
        assert.equal(seen.at(-1) ?? 0, size);
        assert.deepEqual(seen, [...seen].sort((a, b) => a - b));
      }
      // Never through a link it did not make.
      await symlink(path.join(dir, `f${MiB}`), path.join(dir, 'link'));
      await assert.rejects(hashFile(path.join(dir, 'link')), (e: NodeJS.ErrnoException) => e.code === 'ELOOP');
      const aborted = AbortSignal.abort();
      await assert.rejects(hashFile(path.join(dir, `f${2 * MiB}`), { signal: aborted }), (e: Error) => e.name === 'AbortError');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('hashingStream', () => {
  it('passes bytes through unchanged while computing SHA-256, MD5 and the size', async () => {
    const data = await readAll(pseudoRandomStream(2_500_000, 'hash'));
    const h = hashingStream();
    const through = await sha256OfStream(Readable.from([data.subarray(0, 1000), data.subarray(1000)]).pipe(h));
    assert.equal(through.sha256, sha256(data));
    assert.deepEqual(h.digest(), { sha256: sha256(data), md5: md5(data), bytes: data.length });
  });

  it('gives the digest so far before the end, without spoiling the final one', async () => {
    const h = hashingStream();
    const first = Buffer.from('first part;');
    const whole = Buffer.concat([first, Buffer.from('second part')]);
    const done = pipeline(h, async function* (src: AsyncIterable<Buffer>) {
      for await (const c of src) yield c;
    });
    h.write(first);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(h.digest(), { sha256: sha256(first), md5: md5(first), bytes: first.length });
    h.end(Buffer.from('second part'));
    await done;
    assert.deepEqual(h.digest(), { sha256: sha256(whole), md5: md5(whole), bytes: whole.length });
  });

  it('digests nothing as the hashes of the empty string', async () => {
    const h = hashingStream();
    await pipeline(Readable.from([]), h, async function* (src: AsyncIterable<Buffer>) {
      for await (const c of src) yield c;
    });
    assert.deepEqual(h.digest(), { sha256: sha256(''), md5: md5(''), bytes: 0 });
  });
});
