// Moving an account between backends: an `offsite serve` server -> an S3 bucket (Ceph RGW) ->
// another server. Every entry and every deletion survives each move, a device that joins
// after a move sees exactly the same set, devices that moved keep syncing, and a rerun of the
// migration adds nothing twice.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { SyncClient } from '../../src/sync/index.js';
import { closeSyncServers, HTTP_TOKEN, historyEntries, ids, joinDevice, localTarget, rgwTarget, startSyncServer, stateDir } from './helpers.js';

after(closeSyncServers);

function idSet(client: SyncClient): string[] {
  return ids(client.entries());
}

describe('sync migrate', () => {
  it('http -> s3 -> http keeps every entry and deletion; devices that moved keep syncing', async () => {
    // The servers' token reaches the clients as a user's would: through the environment.
    process.env.OFFSITE_SYNC_TOKEN = HTTP_TOKEN;
    const serverA = await startSyncServer(await localTarget.newBucket('migrate-a'));
    const { client: desk, secret } = await SyncClient.init({ stateDir: await stateDir(), storageUrl: serverA, batching: { maxEntries: 40 } });
    const laptop = await joinDevice(serverA, secret, { batching: { maxEntries: 40 } });
    try {
      await desk.push(historyEntries('desk', 300));
      await laptop.push(historyEntries('laptop', 200));
      await desk.pull();
      // Deletions before a snapshot (folded into it as tombstones) and after it (in the log tail).
      await laptop.delete(['desk-1', 'desk-2', 'laptop-3']);
      const compacted = await desk.compact();
      assert.ok(compacted.compacted, `a snapshot was written before the move (${JSON.stringify(compacted)})`);
      await laptop.push(historyEntries('laptop', 20, 200));
      await desk.delete(['laptop-201', 'desk-299']);
      await laptop.pull();
      await desk.pull();
      const expected = idSet(desk);
      assert.equal(expected.length, 300 + 220 - 5, 'the account before the move: 520 entries less 5 deleted');
      assert.deepEqual(idSet(laptop), expected, 'both devices agree before the move');

      // http -> s3
      const bucket = await rgwTarget.newBucket('migrate-s3');
      const first = await desk.migrate(bucket);
      assert.equal(first.copy.targetHadAccount, false, 'the first device creates the account on the target');
      assert.ok(first.copy.entryBatches > 0 && first.copy.deletionBatches >= 1, `batches were copied (${JSON.stringify(first.copy)})`);
      assert.equal(first.copy.snapshotGeneration, compacted.generation, 'the snapshot was copied');
      assert.deepEqual(first.copy.refused, [], 'nothing was refused');
      const second = await laptop.migrate(bucket);
      assert.equal(second.copy.targetHadAccount, true, 'the second device finds the account there');
      assert.equal(second.copy.devices, 0, 'no device registered twice');
      assert.equal((await desk.status()).storage, bucket, 'the device now uses the bucket');

      const phone = await joinDevice(bucket, secret);
      try {
        assert.deepEqual(idSet(phone), expected, 'a device that joins the bucket has every entry and no deleted one');
        const again = await phone.push([{ id: 'desk-1', command: 'deleted before the move' }]);
        assert.equal(again.alreadyDeleted, 1, 'a deletion from before the move still holds');
      } finally {
        await phone.close();
      }
      await desk.push(historyEntries('desk', 5, 1000));
      const seen = await laptop.pull();
      assert.deepEqual(ids(seen.entries), ids(historyEntries('desk', 5, 1000)), 'entries pushed after the move reach the other moved device');
      assert.deepEqual(seen.problems, [], 'no problem after the move');
      await laptop.delete(['desk-1000']);
      await desk.pull();

      // s3 -> http (another server, over another RGW bucket)
      const serverB = await startSyncServer(await rgwTarget.newBucket('migrate-b'));
      await laptop.migrate(serverB);
      const rerun = await laptop.migrate(serverB);
      assert.equal(rerun.copy.devices + rerun.copy.cursors, 0, 'a rerun adds no device and no cursor');
      await desk.migrate(serverB);
      const tablet = await joinDevice(serverB, secret);
      try {
        const final = [...expected, ...ids(historyEntries('desk', 5, 1000))].filter((id) => id !== 'desk-1000').sort();
        assert.deepEqual(idSet(tablet), final, 'after http -> s3 -> http a new device has every entry and no deleted one');
        assert.deepEqual(idSet(desk), final, 'the first device agrees');
        assert.deepEqual(idSet(laptop), final, 'the second device agrees');
      } finally {
        await tablet.close();
      }
    } finally {
      await desk.close();
      await laptop.close();
    }
  });

  it('a bad target URL changes nothing; a move between two directories copies and switches', async () => {
    const source = await localTarget.newBucket('migrate-src');
    const { client } = await SyncClient.init({ stateDir: await stateDir(), storageUrl: source });
    const other = await localTarget.newBucket('migrate-other');
    try {
      await client.push(historyEntries('solo', 3));
      // A target URL that is not a backend at all: nothing changes on this device.
      await assert.rejects(client.migrate('ftp://example.com/x'), (e: Error) => /unknown scheme/.test(e.message), 'a bad URL is refused');
      assert.equal((await client.status()).storage, source, 'the device still uses its backend');
      const r = await client.migrate(other);
      assert.equal(r.copy.entryBatches, 1, 'the one batch was copied');
      assert.equal((await client.status()).storage, other, 'switched');
    } finally {
      await client.close();
    }
  });
});
