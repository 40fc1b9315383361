// Automatic compaction is not repeated by every device: a device whose count of batches is due
// finds the snapshot another device just wrote, merges it, and writes none of its own when that
// snapshot already holds nearly all it has; when it does not, the device compacts as before.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { SyncClientOptions } from '../../src/sync/index.js';
import { closeSyncServers, historyEntries, ids, initDevice, joinDevice, TARGETS, type SyncTarget } from './helpers.js';

/** One batch per entry; compaction due after 6 batches since the last snapshot. */
after(closeSyncServers);

const options: Partial<SyncClientOptions> = { batching: { maxEntries: 1 }, compaction: { everyBatches: 6 } };

async function snapshotGenerations(target: SyncTarget, url: string, userId: string): Promise<number[]> {
  const storage = target.openRaw(url);
  try {
    const out: number[] = [];
    for await (const item of storage.list({ prefix: `users/${userId}/snapshots/` })) if (item.type === 'object') out.push(Number(item.key.split('/').pop()));
    return out.sort((x, y) => x - y);
  } finally {
    await storage.close();
  }
}

for (const target of TARGETS) {
  describe(`automatic compaction through ${target.name}`, () => {
    it('a device whose compaction is due merges the snapshot another device just wrote instead of writing its own', async () => {
      const url = await target.newBucket('auto-compact');
      const { client: a, secret } = await initDevice(url, options);
      const b = await joinDevice(url, secret, options);
      try {
        await a.push(historyEntries('a', 8)); // 8 batches: a's count is due
        const first = await b.pull(); // b applies 8: due, nothing newer than its state: b compacts
        assert.equal(first.compaction?.compacted, true, `b wrote the first snapshot (${JSON.stringify(first.compaction)})`);
        await b.push(historyEntries('b', 1));
        const second = await a.pull(); // a applies 1, its count is 9: due, but b's snapshot holds all of a's 8
        assert.equal(second.compaction?.compacted, false, `a wrote no snapshot (${JSON.stringify(second.compaction)})`);
        assert.match(second.compaction && !second.compaction.compacted ? second.compaction.reason : '', /written by another device, already holds all but 1 of the batches/, 'it says why');
        assert.deepEqual(ids(second.entries), ['b-0'], 'the pull still delivers what is new');
        assert.deepEqual(await snapshotGenerations(target, url, a.userId), [1], 'one snapshot in the bucket, not two');
        assert.equal((await a.status()).snapshotGeneration, 1, 'a merged b’s snapshot');

        // Due again, and no snapshot newer than the one it merged: a compacts as before.
        await a.push(historyEntries('a', 6, 100));
        await b.push(historyEntries('b', 1, 100));
        const third = await a.pull();
        assert.equal(third.compaction?.compacted, true, `a compacts once the snapshot is behind (${JSON.stringify(third.compaction)})`);
        assert.deepEqual(await snapshotGenerations(target, url, a.userId), [1, 2], 'its snapshot is generation 2');
        assert.equal(a.entryCount(), 8 + 1 + 6 + 1, 'a holds every entry');
      } finally {
        await a.close();
        await b.close();
      }
    });
  });
}
