// A new device joins an account of 100,000 entries: it starts from the compacted snapshot and
// reads only the log tail after it. The time and requests it took are printed, not asserted;
// the requests are bounded, which is what "not by reading every batch" means.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, describe, it } from 'node:test';
import { SyncClient } from '../../src/sync/index.js';
import { closeSyncServers, historyEntries, initDevice, stateDir, TARGETS } from './helpers.js';

after(closeSyncServers); // the servers of the HTTP target

const ENTRIES = 100_000;
const TAIL = 50;

for (const target of TARGETS) {
  describe(`bootstrap through ${target.name}`, () => {
    it(`a new device starts from a snapshot of ${ENTRIES.toLocaleString('en')} entries plus the log tail`, async (t) => {
      const url = await target.newBucket('sync-bootstrap');
      // An import of a whole history: bigger batches than the interactive default (fewer PUTs).
      const { client: a, secret } = await initDevice(url, { batching: { maxEntries: 5000, maxBytes: 2 * 1024 * 1024 } });
      let started = performance.now();
      const pushed = await a.push(historyEntries('a', ENTRIES));
      const pushSeconds = (performance.now() - started) / 1000;
      started = performance.now();
      const compacted = await a.compact();
      const compactSeconds = (performance.now() - started) / 1000;
      assert.ok(compacted.compacted && compacted.entries === ENTRIES, JSON.stringify(compacted));
      await a.push(historyEntries('a', TAIL, ENTRIES)); // written after the snapshot
      await a.close();

      const joined = await SyncClient.join(secret, { stateDir: await stateDir(), storageUrl: url });
      const { client: b } = joined;
      t.diagnostic(
        `${target.name}: push of ${ENTRIES} entries ${pushSeconds.toFixed(2)} s in ${pushed.batches} batches (${pushed.requests.total} requests); ` +
          `compaction ${compactSeconds.toFixed(2)} s, snapshot ${(compacted.bytes / 1024 / 1024).toFixed(2)} MiB, ${compacted.deletedBatches} batches collected, ${compacted.requests.total} requests; ` +
          `bootstrap ${joined.seconds.toFixed(2)} s, ${joined.requests.total} requests ${JSON.stringify(joined.requests.byOperation)}`,
      );
      assert.equal(joined.entries, ENTRIES + TAIL);
      assert.equal(b.entryCount(), ENTRIES + TAIL);
      // 8 to join, then the check of what the other devices published (a listing of the devices
      // and of their cursors, a GET of each record and cursor): bounded by the number of
      // devices, not by the ${pushed.batches} batches of the history.
      const devices = 2;
      assert.ok(joined.requests.total <= 10 + 2 * devices, `bootstrap used ${joined.requests.total} requests`);
      // Key check, snapshot, the one tail batch, then the records and cursors.
      assert.ok((joined.requests.byOperation.GetObject ?? 0) <= 3 + 2 * devices, JSON.stringify(joined.requests.byOperation));
      assert.deepEqual(joined.problems, []);
      const empty = await b.pull();
      assert.equal(empty.requests.total, 1);
      await b.close();
    });
  });
}
