// What a caller without the secret can make the backend delete (a holder of the bucket's
// credentials, or of an `offsite serve` token): a collect-garbage of everything, or beyond what
// the account's own newest snapshot covers, is refused and deletes nothing; a device joining
// afterwards has every entry. Run against a local directory, Ceph RGW and a server over RGW.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { isSyncError } from '../../src/sync/index.js';
import { rejectsWithCode } from '../support/assert.js';
import { accountObjects, closeSyncServers, entriesDigest, historyEntries, initDevice, joinDevice, TARGETS } from './helpers.js';

after(closeSyncServers); // the servers of the HTTP target

const isSyncErr = (e: unknown): e is Error & { code: string } => isSyncError(e);


for (const target of TARGETS) {
  describe(`garbage collection through ${target.name}`, () => {
    it('a collect-garbage beyond what the account’s newest snapshot covers is refused, and nothing is deleted', async () => {
      const url = await target.newBucket('gc-bounds');
      const { client: a1, secret } = await initDevice(url, { compaction: { auto: false } });
      for (let i = 0; i < 3; i++) await a1.push(historyEntries('desk', 4, i * 4));
      const first = await a1.compact();
      assert.equal(first.compacted, true);
      for (let i = 3; i < 6; i++) await a1.push(historyEntries('desk', 4, i * 4));
      const raw = target.openRaw(url);
      const before = await accountObjects(raw, a1.userId);

      // Whoever holds the bucket's credentials or the server's token, but not the secret.
      const attacker = target.openBackend(url);
      const everything = { userId: a1.userId, deviceId: a1.deviceId, through: { [a1.deviceId]: 9_999_999_999 }, keepSnapshotsFrom: 999_999 };
      const e = await rejectsWithCode(attacker.collectGarbage(everything), isSyncErr, 'Conflict');
      assert.match(e.message, /snapshot/, e.message);
      // Within the coverage, but deleting the newest snapshot (the one that covers them): refused too.
      const covered = { ...everything, through: { [a1.deviceId]: 3 } };
      await rejectsWithCode(attacker.collectGarbage(covered), isSyncErr, 'Conflict');
      // Batches of a device the snapshot does not cover at all.
      await rejectsWithCode(attacker.collectGarbage({ ...everything, through: { ['e'.repeat(32)]: 5 }, keepSnapshotsFrom: 1 }), isSyncErr, 'Conflict');
      assert.deepEqual(await accountObjects(raw, a1.userId), before, 'nothing was deleted');

      const late = await joinDevice(url, secret);
      assert.equal(entriesDigest(late.entries()), entriesDigest(historyEntries('desk', 24)), 'a device joining afterwards gets all 24 entries');
      // What the account's own compaction asks for is still done.
      const second = await a1.compact();
      assert.ok(second.compacted && second.deletedBatches >= 3 && second.deletedSnapshots === 0, JSON.stringify(second));
      const third = await late.compact();
      assert.ok(third.compacted && third.deletedSnapshots === 1, JSON.stringify(third));
      const last = await joinDevice(url, secret);
      assert.equal(entriesDigest(last.entries()), entriesDigest(historyEntries('desk', 24)), 'and a device joining after the collections too');
      await Promise.all([a1.close(), late.close(), last.close(), attacker.close(), raw.close()]);
    });
  });
}
