// Memory stays bounded whatever the size of the data: hundreds of MB through each codec while
// the process's resident set is sampled. Also measures age throughput (see the diagnostics).
import assert from 'node:assert/strict';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { before, describe, it } from 'node:test';
import { decryptStream, encryptStream, generateAgeIdentity, hashingStream, packDirectory, unpackTar, type FileEntry } from '../../src/codec/index.js';
import { pseudoRandomStream, sha256OfStream } from '../support/data.js';
import { tempDir } from '../support/env.js';

const MB = 1024 * 1024;
const LIMIT = 100 * MB;

/** Samples the RSS on a timer and whenever `sample` is called (a busy pipeline can starve timers). */
function rssWatch(): { sample: () => void; growth: () => number; stop: () => void } {
  const base = process.memoryUsage.rss();
  let peak = base;
  const sample = (): void => {
    peak = Math.max(peak, process.memoryUsage.rss());
  };
  const timer = setInterval(sample, 10);
  return { sample, growth: () => peak - base, stop: () => clearInterval(timer) };
}

/** A sink that hashes what it gets and samples memory as it goes. */
function hashingSink(sample: () => void): { sink: Writable; digest: () => string } {
  const h = hashingStream();
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      sample();
      h.write(chunk);
      h.resume();
      cb();
    },
  });
  return { sink, digest: () => h.digest().sha256 };
}

describe('memory stays bounded', () => {
  let parent: string;
  let bigSha: string;
  const bigSize = 300 * MB;
  let entries: FileEntry[];

  before(async () => {
    parent = await tempDir('offsite-mem-');
    await mkdir(path.join(parent, 'big'));
    await pipeline(pseudoRandomStream(bigSize, 'memory'), createWriteStream(path.join(parent, 'big', 'data.bin')));
    bigSha = (await sha256OfStream(createReadStream(path.join(parent, 'big', 'data.bin')))).sha256;
  });

  it('packing a 300 MB file grows RSS by less than 100 MB', async (t) => {
    const watch = rssWatch();
    const packed = packDirectory(parent, 'big');
    const { sink } = hashingSink(watch.sample);
    const t0 = performance.now();
    await pipeline(packed.stream, sink);
    entries = await packed.entries;
    watch.stop();
    t.diagnostic(`pack: ${(bigSize / MB / ((performance.now() - t0) / 1000)).toFixed(0)} MiB/s, RSS growth ${(watch.growth() / MB).toFixed(1)} MB`);
    assert.equal(entries.find((e) => e.path === 'big/data.bin')?.sha256, bigSha);
    assert.ok(watch.growth() < LIMIT, `RSS grew ${(watch.growth() / MB).toFixed(1)} MB`);
  });

  it('pack piped into unpackTar with the manifest grows RSS by less than 100 MB', async (t) => {
    const dest = await tempDir('offsite-mem-out-');
    const watch = rssWatch();
    const packed = packDirectory(parent, 'big');
    const report = await unpackTar(packed.stream, dest, { expected: entries });
    watch.stop();
    t.diagnostic(`pack → unpack: RSS growth ${(watch.growth() / MB).toFixed(1)} MB`);
    assert.equal(report.checked, entries.length);
    assert.equal((await sha256OfStream(createReadStream(path.join(dest, 'big', 'data.bin')))).sha256, bigSha);
    assert.ok(watch.growth() < LIMIT, `RSS grew ${(watch.growth() / MB).toFixed(1)} MB`);
  });

  it('age-encrypting and decrypting 256 MB grows RSS by less than 100 MB (throughput in the diagnostics)', async (t) => {
    const size = 256 * MB;
    const { identity, recipient } = await generateAgeIdentity();
    const cipherFile = path.join(await tempDir('offsite-mem-age-'), 'data.age');
    const source = (): NodeJS.ReadableStream => createReadStream(path.join(parent, 'big', 'data.bin'), { end: size - 1 });
    const plainSha = (await sha256OfStream(source() as AsyncIterable<Buffer>)).sha256;

    const watch = rssWatch();
    let t0 = performance.now();
    await pipeline(source(), encryptStream({ recipients: [recipient] }), createWriteStream(cipherFile));
    const encryptRate = size / MB / ((performance.now() - t0) / 1000);

    const { sink, digest } = hashingSink(watch.sample);
    t0 = performance.now();
    await pipeline(createReadStream(cipherFile), decryptStream({ identities: [identity] }), sink);
    const decryptRate = size / MB / ((performance.now() - t0) / 1000);
    watch.stop();

    t.diagnostic(`age encrypt ${encryptRate.toFixed(1)} MiB/s, decrypt ${decryptRate.toFixed(1)} MiB/s, RSS growth ${(watch.growth() / MB).toFixed(1)} MB`);
    assert.equal(digest(), plainSha);
    assert.ok(watch.growth() < LIMIT, `RSS grew ${(watch.growth() / MB).toFixed(1)} MB`);
  });
});
