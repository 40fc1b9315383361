import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { THROUGHPUT_WINDOW, isCatalogError } from '../../src/catalog/index.js';
import { freshCatalog } from './fixtures.js';

describe('throughput statistics', () => {
  it('is undefined until a run of that kind was recorded', async () => {
    const catalog = await freshCatalog();
    assert.equal(catalog.measuredThroughput('upload'), undefined);
    catalog.recordThroughput({ kind: 'download', bytes: 100, seconds: 1 });
    assert.equal(catalog.measuredThroughput('upload'), undefined);
    assert.equal(catalog.measuredThroughput('download'), 100);
    catalog.close();
  });

  it('weights each run by its duration: a short latency-bound run barely moves the estimate', async () => {
    const catalog = await freshCatalog();
    // An hour at 10 MB/s, then a 2-second run that managed only 100 kB/s.
    catalog.recordThroughput({ kind: 'upload', bytes: 36_000_000_000, seconds: 3600 });
    catalog.recordThroughput({ kind: 'upload', bytes: 200_000, seconds: 2 });
    const measured = catalog.measuredThroughput('upload')!;
    assert.equal(measured, (36_000_000_000 + 200_000) / 3602);
    assert.ok(measured > 9_990_000, `a plain mean of speeds would say ~5 MB/s; got ${measured}`);
    catalog.close();
  });

  it('looks only at the last N runs, so it follows a changed link', async () => {
    const catalog = await freshCatalog();
    for (let i = 0; i < 5; i++) catalog.recordThroughput({ kind: 'upload', bytes: 1_000_000, seconds: 1 });
    for (let i = 0; i < THROUGHPUT_WINDOW; i++) catalog.recordThroughput({ kind: 'upload', bytes: 5_000, seconds: 1 });
    assert.equal(catalog.measuredThroughput('upload'), 5_000);
    assert.equal(catalog.measuredThroughput('upload', THROUGHPUT_WINDOW + 5), (5 * 1_000_000 + THROUGHPUT_WINDOW * 5_000) / (THROUGHPUT_WINDOW + 5));
    catalog.close();
  });

  it('ignores runs that moved nothing and refuses nonsense', async () => {
    const catalog = await freshCatalog();
    catalog.recordThroughput({ kind: 'upload', bytes: 0, seconds: 30 });
    catalog.recordThroughput({ kind: 'upload', bytes: 10, seconds: 0 });
    assert.equal(catalog.measuredThroughput('upload'), undefined);
    for (const s of [{ bytes: -1, seconds: 1 }, { bytes: 1, seconds: Number.NaN }, { bytes: Infinity, seconds: 1 }]) {
      assert.throws(() => catalog.recordThroughput({ kind: 'upload', ...s }), (e: unknown) => isCatalogError(e, 'InvalidInput'));
    }
    catalog.close();
  });
});
