import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { isCodecError, parseRate, throttle, TokenBucket } from '../../src/codec/index.js';
import { pseudoRandomStream, sha256OfStream } from '../support/data.js';

function sink(): Writable {
  return new Writable({
    write(_c, _e, cb) {
      cb();
    },
  });
}

/** Bytes per second achieved moving `bytes` through `stages`. */
async function measure(bytes: number, ...stages: NodeJS.ReadWriteStream[]): Promise<number> {
  const t0 = performance.now();
  await pipeline(pseudoRandomStream(bytes, 'throttle'), ...(stages as [NodeJS.ReadWriteStream]), sink());
  return bytes / ((performance.now() - t0) / 1000);
}

describe('throttle', () => {
  it('holds 4 MB/s within 10% over a 3 second transfer', async (t) => {
    const rate = 4_000_000;
    const achieved = await measure(3 * rate, throttle(rate));
    t.diagnostic(`asked ${rate} B/s, got ${Math.round(achieved)} B/s`);
    assert.ok(Math.abs(achieved - rate) / rate < 0.1, `got ${Math.round(achieved)} B/s`);
  });

  it('never runs ahead of the rate, even catching up after a stall', async () => {
    const rate = 2_000_000;
    const t0 = performance.now();
    let bytes = 0;
    let worst = 0;
    let stalled = false;
    const watch = new Writable({
      write(chunk: Buffer, _e, cb) {
        bytes += chunk.length;
        worst = Math.max(worst, bytes - (rate * (performance.now() - t0)) / 1000);
        // One stall of 300 ms: afterwards the saved-up credit lets it catch up, not overtake.
        if (!stalled && bytes > rate / 2) {
          stalled = true;
          setTimeout(cb, 300);
        } else cb();
      },
    });
    await pipeline(pseudoRandomStream(2 * rate, 'stall'), throttle(rate), watch);
    // Timers may fire a millisecond early; 5 ms worth of slack.
    assert.ok(worst <= rate * 0.005, `ran ${Math.round(worst)} bytes ahead of the rate`);
    const elapsed = (performance.now() - t0) / 1000;
    assert.ok(elapsed < 2 * 1.1, `took ${elapsed.toFixed(2)} s for 2 s worth of data despite the stall`);
  });

  it('shares one limit between parallel streams through a TokenBucket', async (t) => {
    const rate = 3_000_000;
    const bucket = new TokenBucket(rate);
    const t0 = performance.now();
    await Promise.all([1, 2].map(() => pipeline(pseudoRandomStream(rate * 1.5, 'shared'), throttle(bucket), sink())));
    const achieved = (3 * rate) / ((performance.now() - t0) / 1000);
    t.diagnostic(`two streams sharing ${rate} B/s got ${Math.round(achieved)} B/s together`);
    assert.ok(Math.abs(achieved - rate) / rate < 0.1, `got ${Math.round(achieved)} B/s`);
  });

  it('passes the bytes through unchanged', async () => {
    const expected = await sha256OfStream(pseudoRandomStream(3_000_000, 'same'));
    const got = await sha256OfStream(pseudoRandomStream(3_000_000, 'same').pipe(throttle(50_000_000)));
    assert.deepEqual(got, expected);
  });

  it('stops promptly when destroyed while waiting', async () => {
    const t = throttle(1000);
    const done = pipeline(pseudoRandomStream(1_000_000), t, sink());
    setTimeout(() => t.destroy(new Error('cancelled')), 100);
    const t0 = performance.now();
    await assert.rejects(done, /cancelled/);
    assert.ok(performance.now() - t0 < 1000);
  });

  it('refuses a rate that is not positive', () => {
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => throttle(bad), (e: unknown) => isCodecError(e, 'InvalidRate'), String(bad));
    }
  });
});

describe('parseRate', () => {
  it('reads K, M, G as 1024-based (like rsync --bwlimit), with or without i, B and /s', () => {
    const cases: Array<[string | number, number]> = [
      ['10M', 10 * 1024 * 1024],
      ['500K', 500 * 1024],
      ['800k', 800 * 1024],
      ['1.5MiB/s', 1.5 * 1024 * 1024],
      ['1.5 MiB/s', 1.5 * 1024 * 1024],
      ['2G', 2 * 1024 ** 3],
      ['10MB/s', 10 * 1024 * 1024],
      ['4096', 4096],
      ['4096B/s', 4096],
      ['.5K', 512],
      [' 64k ', 64 * 1024],
      [125000, 125000],
    ];
    for (const [input, want] of cases) assert.equal(parseRate(input), want, String(input));
  });

  it('refuses anything else with InvalidRate and an example', () => {
    for (const bad of ['', 'fast', '10X', '-5M', '0', '0.1', '10Mb', '10 M B/s/s', 'M', '1e6', '10MiBps']) {
      assert.throws(
        () => parseRate(bad),
        (e: unknown) => isCodecError(e, 'InvalidRate') && e.message.includes(`"${bad}"`) && /e\.g\. .*10M/.test(e.message),
        bad,
      );
    }
  });
});
