// A store that withholds: a device's newest batches (nothing after them shows a gap), the newest
// snapshot (a joining device would start from an older one), or a device's newer read position
// (an older one served again). The devices' sealed read positions reveal each, on a local
// directory, Ceph RGW and an `offsite serve` server over RGW, the store edited directly as its
// owner would. Claims count once they are older than the listing lookback (about two minutes):
// the reader's clock jumps five minutes ahead instead of the test waiting.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Storage } from '../../src/storage/index.js';
import { parseLogName } from '../../src/sync/bucket-keys.js';
import { SyncClient, type SyncBackend } from '../../src/sync/index.js';
import { closeSyncServers, historyEntries, ids, initDevice, joinDevice, readObject, stateDir, TARGETS } from './helpers.js';

after(closeSyncServers); // the servers of the HTTP target

const LATER = 5 * 60_000;

/** The keys of one device's batch `seq` (a body, or bytes in the key), with what is stored there. */
async function batchObjects(storage: Storage, userId: string, deviceId: string, seq: number): Promise<{ key: string; body: Buffer }[]> {
  const prefix = `users/${userId}/log/`;
  const out = [];
  for await (const item of storage.list({ prefix })) {
    if (item.type !== 'object') continue;
    const name = parseLogName(item.key.slice(prefix.length));
    if (name?.position.deviceId === deviceId && name.position.seq === seq) out.push({ key: item.key, body: await readObject(storage, item.key) });
  }
  return out;
}

/** A device whose clock runs `jump()` ahead once it is registered (its offset is measured at registration). */
function jumpingAfterRegistration(backend: SyncBackend, onRegistered: () => void): SyncBackend {
  return new Proxy(backend, {
    get(target, property, receiver) {
      if (property === 'registerDevice') {
        return async (...args: Parameters<SyncBackend['registerDevice']>) => {
          const r = await target.registerDevice(...args);
          onRegistered();
          return r;
        };
      }
      const value = Reflect.get(target, property, receiver) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

for (const target of TARGETS) {
  describe(`a store that withholds, through ${target.name}`, () => {
    it('a device’s newest batch, read by another device, then withheld: reported Withheld (naming both) until it appears', async () => {
      const url = await target.newBucket('sync-withheld');
      const storage = target.openRaw(url);
      const { client: a, secret } = await initDevice(url);
      let jump = 0;
      const b = await joinDevice(url, secret, { clock: () => Date.now() + jump, freshnessCheckIntervalMs: 0 });
      const c = await joinDevice(url, secret, { cursorPublishIntervalMs: 0 });
      await a.push(historyEntries('a', 2));
      await a.push(historyEntries('a', 2, 2));
      assert.equal((await b.pull()).entries.length, 4, 'b holds batches 1 and 2');
      await a.push(historyEntries('a', 2, 4)); // batch 3: the newest, no later batch shows a gap
      await c.pull(); // c reads it and publishes its read position
      const batch3 = await batchObjects(storage, a.userId, a.deviceId, 3);
      assert.equal(batch3.length, 1);
      await storage.delete(batch3[0]!.key); // the store withholds it from now on

      jump = LATER;
      const r = await b.pull();
      assert.deepEqual(r.problems.map((p) => [p.code, p.deviceId, p.seq]), [['Withheld', a.deviceId, 3]], JSON.stringify(r.problems));
      assert.match(r.problems[0]!.message, new RegExp(`device ${c.deviceId} read the log of device ${a.deviceId} up to batch 3`));
      assert.ok((await b.status()).problems.some((p) => p.code === 'Withheld' && p.deviceId === a.deviceId), 'status lists it');
      assert.deepEqual((await b.pull()).problems.map((p) => p.code), ['Withheld'], 'and every pull reports it');

      await storage.put(batch3[0]!.key, batch3[0]!.body); // shown again
      const back = await b.pull();
      assert.deepEqual(back.problems, []);
      assert.deepEqual(ids(b.entries()), ids(historyEntries('a', 6)));
      await Promise.all([a.close(), b.close(), c.close(), storage.close()]);
    });

    it('the newest snapshot withheld from a joining device (its batches collected): the join reports it, and catches up once it is shown', async () => {
      const url = await target.newBucket('sync-old-snapshot');
      const storage = target.openRaw(url);
      const { client: a, secret } = await initDevice(url);
      const b = await joinDevice(url, secret, { cursorPublishIntervalMs: 0 });
      await a.push(historyEntries('a', 3));
      await b.pull();
      assert.ok((await a.compact()).compacted, 'snapshot 1');
      await a.push(historyEntries('a', 3, 3));
      await b.pull();
      const second = await a.compact();
      assert.ok(second.compacted && second.generation === 2 && second.deletedBatches > 0, `snapshot 2 and its batches collected: ${JSON.stringify(second)}`);
      const key = `users/${a.userId}/snapshots/000000000002`;
      const snapshot2 = await readObject(storage, key);
      await storage.delete(key); // only snapshot 1 is listed now

      let jump = 0;
      const backend = jumpingAfterRegistration(target.openBackend(url), () => (jump = LATER));
      const joined = await SyncClient.join(secret, { stateDir: await stateDir(), storageUrl: url, backend, clock: () => Date.now() + jump, freshnessCheckIntervalMs: 0 });
      const d = joined.client;
      assert.ok(d.entryCount() < 6, `d started from snapshot 1 and misses the collected batches (${d.entryCount()} entries)`);
      const codes = joined.problems.map((p) => p.code);
      assert.ok(codes.length > 0 && codes.every((c) => c === 'Withheld'), JSON.stringify(joined.problems));
      assert.ok(
        joined.problems.some((p) => /snapshot 2/.test(p.message) && /lists none newer than 1/.test(p.message)),
        `the withheld snapshot is named: ${joined.problems.map((p) => p.message).join('; ')}`,
      );

      await storage.put(key, snapshot2); // shown again
      const r = await d.pull();
      assert.deepEqual(r.problems, []);
      assert.deepEqual(ids(d.entries()), ids(historyEntries('a', 6)), 'd caught up from snapshot 2');
      await Promise.all([a.close(), b.close(), d.close(), storage.close()]);
      await backend.close();
    });

    it('an older read position served again after a newer one was seen: a rollback, reported Withheld', async () => {
      const url = await target.newBucket('sync-rollback');
      const storage = target.openRaw(url);
      const { client: a, secret } = await initDevice(url);
      const b = await joinDevice(url, secret, { freshnessCheckIntervalMs: 0 });
      let jump = 0;
      const c = await joinDevice(url, secret, { cursorPublishIntervalMs: 0, clock: () => Date.now() + jump });
      const cursorKey = `users/${a.userId}/cursors/${c.deviceId}`;
      const old = await readObject(storage, cursorKey);
      await a.push(historyEntries('a', 2));
      jump = LATER; // c publishes its next position five minutes later
      await c.pull();
      assert.deepEqual((await b.pull()).problems, [], 'b sees the newer position');
      await storage.put(cursorKey, old);
      const r = await b.pull();
      assert.deepEqual(r.problems.map((p) => [p.code, p.deviceId]), [['Withheld', c.deviceId]], JSON.stringify(r.problems));
      assert.match(r.problems[0]!.message, /older than the one this device saw before/);
      await Promise.all([a.close(), b.close(), c.close(), storage.close()]);
    });
  });
}
