// Sync between devices through a bucket, run unchanged against a local directory and against
// the real Ceph RGW: joining, the one-request empty pull, deletions, tampering, what the bucket
// can read, compaction under concurrency, clocks, and removing a device.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { openStorage, type Storage } from '../../src/storage/index.js';
import { BucketBackend, batchId, deriveKeys, isSyncError, parseBatchId, parseSecret, seal, SyncClient, type SyncEntry } from '../../src/sync/index.js';
import { rejectsWithCode } from '../support/assert.js';
import { historyEntries, historyEntry, ids, initDevice, joinDevice, readObject, stateDir, TARGETS } from './helpers.js';

const isSyncErr = (e: unknown): e is Error & { code: string } => isSyncError(e);

/** The keys of one account's log, in order, with their positions. */
async function logKeys(storage: Storage, userId: string): Promise<{ key: string; id: string; deviceId: string; seq: number; time: number }[]> {
  const prefix = `users/${userId}/log/`;
  const out = [];
  for await (const item of storage.list({ prefix })) {
    if (item.type !== 'object') continue;
    const id = item.key.slice(prefix.length);
    const p = parseBatchId(id);
    if (p) out.push({ key: item.key, id, ...p });
  }
  return out;
}

for (const target of TARGETS) {
  describe(`sync through ${target.name}`, () => {
    it('init gives a secret that joins; a mistyped secret is InvalidSecret, another account’s is WrongSecret', async () => {
      const url = await target.newBucket('sync-join');
      const { client: a, secret } = await initDevice(url);
      await a.push(historyEntries('a', 3));
      const b = await joinDevice(url, secret);
      assert.deepEqual(ids(b.entries()), ids(historyEntries('a', 3)));
      const compact = secret.replaceAll('-', '');
      const typo = compact.slice(0, 10) + (compact[10] === 'A' ? 'B' : 'A') + compact.slice(11);
      const dir = await stateDir();
      await rejectsWithCode(SyncClient.join(typo, { stateDir: dir, storageUrl: url }), isSyncErr, 'InvalidSecret');
      const other = await target.newBucket('sync-other');
      const { client: stranger, secret: otherSecret } = await initDevice(other);
      const e = await rejectsWithCode(SyncClient.join(otherSecret, { stateDir: dir, storageUrl: url }), isSyncErr, 'WrongSecret');
      assert.match(e.message, /no sync account for this secret/);
      assert.ok(!existsSync(dir), 'a failed join leaves no state behind');
      await Promise.all([a.close(), b.close(), stranger.close()]);
    });

    it('entries go both ways, none twice; a pull that finds nothing new is exactly one request', async () => {
      const url = await target.newBucket('sync-pull');
      const storage = openStorage(url);
      const { client: a, secret } = await initDevice(url);
      // Device b runs on a Storage this test can read the counters of.
      const b = (await SyncClient.join(secret, { stateDir: await stateDir(), storageUrl: url, backend: new BucketBackend(storage) })).client;
      await a.push(historyEntries('a', 25));
      await b.push(historyEntries('b', 10));
      const got = await b.pull();
      assert.deepEqual(ids(got.entries), ids(historyEntries('a', 25)));
      assert.deepEqual(ids((await a.pull()).entries), ids(historyEntries('b', 10)));
      assert.equal(b.entryCount(), 35);
      assert.equal(a.entryCount(), 35);

      const before = storage.stats();
      const empty = await b.pull();
      const after = storage.stats();
      assert.equal(empty.entries.length, 0);
      assert.equal(after.totalRequests - before.totalRequests, 1, 'one request');
      assert.equal((after.requests.ListObjectsV2 ?? 0) - (before.requests.ListObjectsV2 ?? 0), 1, 'and it is one LIST');
      assert.deepEqual(empty.requests, { total: 1, byOperation: { ListObjectsV2: 1 } });

      // The same entry pushed again is not sent again, and nothing arrives twice.
      const again = await a.push([historyEntry('a', 0)]);
      assert.equal(again.duplicates, 1);
      assert.equal(again.batches, 0);
      assert.equal((await b.pull()).entries.length, 0);
      await Promise.all([a.close(), b.close()]);
      await storage.close();
    });

    it('batches by count and size, and holds a queued entry until it is due', async () => {
      const url = await target.newBucket('sync-batching');
      const { client: a, secret } = await initDevice(url, { batching: { maxEntries: 40, maxBytes: 4096, maxAgeMs: 60_000 } });
      const storage = openStorage(url);
      const pushed = await a.push(historyEntries('a', 100));
      assert.ok(pushed.batches >= 3, `40 per batch at most: ${pushed.batches} batches`);
      const queued = await a.push([historyEntry('a', 100)], { flush: false });
      assert.equal(queued.batches, 0);
      assert.equal(queued.pending, 1);
      const b = await joinDevice(url, secret);
      assert.equal(b.entryCount(), 100, 'the queued entry has not left device a');
      await a.flush();
      assert.equal((await b.pull()).entries.length, 1);
      const log = await logKeys(storage, a.userId);
      assert.equal(log.length, pushed.batches + 1);
      await Promise.all([a.close(), b.close(), storage.close()]);
    });

    it('a deletion disappears on every device, including devices that join later, before and after compaction', async () => {
      const url = await target.newBucket('sync-delete');
      const { client: a, secret } = await initDevice(url);
      const b = await joinDevice(url, secret);
      await a.push(historyEntries('a', 20));
      await b.pull();
      const deleted = await b.delete(['a-3', 'a-4', 'missing-id']);
      assert.equal(deleted.removed, 2);
      assert.deepEqual([...(await a.pull()).deleted].sort(), ['a-3', 'a-4']);
      assert.ok(!ids(a.entries()).includes('a-3'), 'a-3 is gone from device a');
      const c = await joinDevice(url, secret);
      assert.deepEqual(ids(c.entries()), ids(a.entries()), 'from the log: the deletion request is in it');
      assert.equal(c.entryCount(), 18);

      await a.delete(['a-5']);
      const compacted = await a.compact();
      assert.ok(compacted.compacted, JSON.stringify(compacted));
      const d = await joinDevice(url, secret);
      assert.equal(d.entryCount(), 17);
      assert.ok(!ids(d.entries()).some((id) => ['a-3', 'a-4', 'a-5'].includes(id)), 'from the snapshot: deleted entries are dropped');
      // A deleted id pushed again (by a device that still had it) stays deleted.
      await d.push([historyEntry('a', 3)]);
      assert.equal(d.entryCount(), 17);
      const backend = new BucketBackend(openStorage(url));
      const deletions = await backend.getDeletionRequests({ userId: a.userId, deviceId: a.deviceId });
      await backend.close();
      assert.ok(deletions.requests.length > 0 && deletions.requests.every((r) => r.kind === 'deletions'), 'only deletion requests');
      for (const x of [a, b, c]) assert.equal((await x.pull()).entries.length, 0);
      await Promise.all([a, b, c, d].map((x) => x.close()));
    });

    it('a flipped byte, two swapped batches and a replayed batch are reported, and nothing wrong is imported', async () => {
      const url = await target.newBucket('sync-tamper');
      const storage = openStorage(url);
      const { client: a, secret } = await initDevice(url);
      const b = await joinDevice(url, secret);
      for (let i = 0; i < 3; i++) await a.push(historyEntries('a', 5, i * 5)); // batches 1, 2, 3
      const batches = (await logKeys(storage, a.userId)).filter((k) => k.deviceId === a.deviceId);
      assert.deepEqual(batches.map((k) => k.seq), [1, 2, 3]);
      const original = new Map<number, Buffer>();
      for (const k of batches) original.set(k.seq, await readObject(storage, k.key));
      const keyOf = (seq: number) => batches.find((k) => k.seq === seq)!.key;

      // 1. One byte of batch 2 flipped: batch 1 arrives, batch 2 is refused, batch 3 waits behind it.
      const flipped = Buffer.from(original.get(2)!);
      const middle = Math.floor(flipped.length / 2);
      flipped[middle] = flipped[middle]! ^ 0x40;
      await storage.put(keyOf(2), flipped);
      let r = await b.pull();
      assert.deepEqual(r.problems.map((p) => [p.code, p.seq]), [['Tampered', 2]]);
      assert.deepEqual(ids(b.entries()), ids(historyEntries('a', 5, 0)));
      r = await b.pull();
      assert.deepEqual(r.problems.map((p) => p.code), ['Tampered'], 'reported again until it is fixed');
      assert.equal(r.entries.length, 0);
      assert.match((await b.status()).problems[0]?.message ?? '', /failed authentication/);

      // 2. Batches 2 and 3 swapped (each intact): both refused as out of order.
      await storage.put(keyOf(2), original.get(3)!);
      await storage.put(keyOf(3), original.get(2)!);
      r = await b.pull();
      assert.deepEqual(r.problems.map((p) => [p.code, p.seq]).sort(), [['OutOfOrder', 2], ['OutOfOrder', 3]]);
      assert.equal(b.entryCount(), 5);

      // Put right: everything arrives, nothing twice.
      await storage.put(keyOf(2), original.get(2)!);
      await storage.put(keyOf(3), original.get(3)!);
      r = await b.pull();
      assert.deepEqual(r.problems, []);
      assert.deepEqual(ids(r.entries), ids(historyEntries('a', 10, 5)));

      // 3. Batch 1 replayed as the next batch of a (seq 4, a fresh time): refused as a replay.
      const replayId = batchId({ deviceId: a.deviceId, seq: 4, time: Date.now(), kind: 'entries' });
      await storage.put(`users/${a.userId}/log/${replayId}`, original.get(1)!);
      r = await b.pull();
      assert.deepEqual(r.problems.map((p) => [p.code, p.seq]), [['Replayed', 4]]);
      assert.equal(r.entries.length, 0);
      // Batch 1 replayed onto a position b already holds: never even opened, nothing changes.
      await storage.put(`users/${a.userId}/log/${batchId({ deviceId: a.deviceId, seq: 1, time: Date.now() + 5, kind: 'entries' })}`, original.get(1)!);
      // The real batch 4 arrives beside the replayed copy and is the one applied.
      await a.push(historyEntries('a', 5, 15));
      r = await b.pull();
      assert.deepEqual(r.problems.map((p) => p.code), ['Replayed'], 'the replayed copy is refused once more');
      assert.deepEqual(ids(r.entries), ids(historyEntries('a', 5, 15)));
      assert.deepEqual(ids(b.entries()), ids(historyEntries('a', 20)));
      await Promise.all([a.close(), b.close(), storage.close()]);
    });

    it('no stored object or key contains a command, directory, id or host in clear text', async () => {
      const url = await target.newBucket('sync-opaque');
      const { client: a, secret } = await initDevice(url, { deviceName: 'laptop-of-zebra' });
      const b = await joinDevice(url, secret);
      const secrets: SyncEntry[] = Array.from({ length: 30 }, (_, i) => ({
        id: `entry-zebra-${i}`,
        command: `curl -H 'Authorization: Bearer tok-zebra-${i}' https://intranet.example/zebra`,
        cwd: '/home/zebra/secret-project',
        exitCode: 0,
        host: 'zebra-host',
      }));
      await a.push(secrets);
      await b.pull();
      await b.delete(['entry-zebra-3']);
      await a.pull();
      assert.ok((await a.compact()).compacted, 'compacted');
      await a.push([{ id: 'entry-zebra-tail', command: 'echo zebra tail', cwd: '/home/zebra' }]);
      const objects = await target.allObjects(url);
      assert.ok(objects.length >= 5, `${objects.length} objects scanned`);
      for (const o of objects) {
        for (const needle of ['zebra', 'Bearer', 'intranet', 'entry-', secret.replaceAll('-', '').slice(0, 12)]) {
          assert.ok(!o.name.includes(needle), `key ${o.name} contains "${needle}"`);
          assert.ok(!o.body.includes(needle), `object ${o.name} contains "${needle}"`);
        }
      }
      await Promise.all([a.close(), b.close()]);
    });

    it('compaction: of two compactors one wins, entries written meanwhile survive, read batches are collected', async () => {
      const url = await target.newBucket('sync-compact');
      const storage = openStorage(url);
      const { client: a, secret } = await initDevice(url);
      const b = await joinDevice(url, secret);
      const c = await joinDevice(url, secret);
      for (let i = 0; i < 3; i++) await a.push(historyEntries('a', 10, i * 10));
      await b.pull();
      await c.pull();
      // Everyone publishes how far it has read (normally at most hourly).
      for (const x of [a, b, c]) await x.compact().then((r) => assert.ok(r.compacted, JSON.stringify(r)));

      await a.push(historyEntries('a', 10, 30)); // batch 4
      await Promise.all([b.pull(), c.pull()]);
      await a.push(historyEntries('a', 5, 40)); // batch 5: c has not read it
      await b.pull();
      let releaseWinner!: () => void;
      const loserDone = new Promise<void>((resolve) => (releaseWinner = resolve));
      const during = historyEntries('c', 5);
      const whileCompacting = async () => {
        await c.push(during); // written while the winner holds the lease
        await Promise.race([loserDone, new Promise((resolve) => setTimeout(resolve, 10_000))]);
      };
      const results = await Promise.all(
        [a, b].map(async (x) => {
          const r = await x.compact({ beforeSnapshotWrite: whileCompacting });
          if (!r.compacted) releaseWinner();
          return { device: x.deviceId, r };
        }),
      );
      const winners = results.filter((x) => x.r.compacted);
      const losers = results.filter((x) => !x.r.compacted);
      assert.equal(winners.length, 1, JSON.stringify(results.map((x) => x.r)));
      const loser = losers[0]!.r;
      assert.ok(!loser.compacted && loser.holder === winners[0]!.device && /compacting/.test(loser.reason), JSON.stringify(loser));

      const log = await logKeys(storage, a.userId);
      assert.ok(log.some((k) => k.deviceId === c.deviceId), 'the batch written during compaction is still in the log');
      assert.ok(!log.some((k) => k.deviceId === a.deviceId && k.seq <= 3), 'batches every device read are collected');
      assert.ok(log.some((k) => k.deviceId === a.deviceId && k.seq === 5), 'a batch device c has not read is kept');
      const d = await joinDevice(url, secret);
      assert.deepEqual(ids(d.entries()), ids([...historyEntries('a', 45), ...during]));
      const behind = await c.pull();
      assert.deepEqual(behind.problems, []);
      assert.deepEqual(ids(behind.entries), ids(historyEntries('a', 5, 40)), 'c reads it from the log');
      for (const x of [a, b]) await x.pull();
      assert.deepEqual(ids(a.entries()), ids(d.entries()));
      await Promise.all([a, b, c, d].map((x) => x.close()));
      await storage.close();
    });

    it('a held lease is respected until it expires, then taken over', async () => {
      const url = await target.newBucket('sync-lease');
      const storage = openStorage(url);
      const { client: a } = await initDevice(url);
      await a.push(historyEntries('a', 3));
      const key = `users/${a.userId}/leases/compaction`;
      await storage.put(key, JSON.stringify({ holder: 'feedfacefeedface', expiresAt: new Date(Date.now() + 3600_000).toISOString() }));
      const held = await a.compact();
      assert.ok(!held.compacted && held.holder === 'feedfacefeedface', JSON.stringify(held));
      await storage.put(key, JSON.stringify({ holder: 'feedfacefeedface', expiresAt: new Date(Date.now() - 3600_000).toISOString() }));
      assert.ok((await a.compact()).compacted, 'an expired lease is taken over');
      assert.ok((await a.compact()).compacted, 'a released lease is taken again');
      await Promise.all([a.close(), storage.close()]);
    });

    it('a device away past the retention catches up from the snapshot after its batches were collected', async () => {
      const url = await target.newBucket('sync-retention');
      const { client: a, secret } = await initDevice(url, { compaction: { retentionMs: 1 } });
      const b = await joinDevice(url, secret, { compaction: { retentionMs: 1 } });
      await a.push(historyEntries('a', 5));
      for (let i = 1; i < 4; i++) await a.push(historyEntries('a', 5, i * 5));
      const r = await a.compact();
      assert.ok(r.compacted && r.deletedBatches === 4 && r.staleDevices.includes(b.deviceId), JSON.stringify(r));
      const caught = await b.pull();
      assert.deepEqual(caught.problems, []);
      assert.deepEqual(ids(b.entries()), ids(historyEntries('a', 20)));
      await Promise.all([a.close(), b.close()]);
    });

    it('a device whose clock is ten minutes slow is calibrated and never missed', async () => {
      const url = await target.newBucket('sync-clock');
      const { client: a, secret } = await initDevice(url);
      await a.push(historyEntries('a', 2));
      const slow = await joinDevice(url, secret, { clock: () => Date.now() - 600_000 });
      const offset = (await slow.status()).clockOffsetMs;
      assert.ok(Math.abs(offset - 600_000) < 10_000, `offset ${offset}`);
      await a.pull(); // a's cursor is now past everything stored
      await slow.push(historyEntries('slow', 4));
      assert.deepEqual(ids((await a.pull()).entries), ids(historyEntries('slow', 4)));
      await Promise.all([a.close(), slow.close()]);
    });

    it('a batch stored below a reader’s cursor (a writer slower than the bounds) is found through its gap, or by compaction', async () => {
      const url = await target.newBucket('sync-late');
      const { client: a, secret } = await initDevice(url);
      const b = await joinDevice(url, secret);
      await a.push(historyEntries('a', 2));
      await b.pull();
      // A device writing by hand through the backend: its batch 1 carries a time 10 minutes old.
      const keys = deriveKeys(parseSecret(secret));
      const backend = new BucketBackend(openStorage(url));
      const late = 'a0a0a0a0a0a0a0a0';
      const put = async (seq: number, time: number, entries: SyncEntry[]) => {
        const position = { deviceId: late, seq, time, kind: 'entries' as const };
        await backend.submitEntries({ userId: keys.userId, deviceId: late, batches: [{ ...position, data: seal(keys, position, { entries }).toString('base64') }] });
      };
      await put(1, Date.now() - 600_000, historyEntries('late', 3));
      assert.equal((await b.pull()).entries.length, 0, 'below the cursor: not listed');
      await put(2, Date.now(), historyEntries('late', 3, 3));
      const r = await b.pull();
      assert.deepEqual(r.problems, []);
      assert.deepEqual(ids(r.entries), ids(historyEntries('late', 6)), 'the gap at batch 1 sends the reader back for it');

      // A late batch with no later batch to show a gap: compaction sweeps the whole log first.
      const quiet = 'b0b0b0b0b0b0b0b0';
      const position = { deviceId: quiet, seq: 1, time: Date.now() - 600_000, kind: 'entries' as const };
      await backend.submitEntries({ userId: keys.userId, deviceId: quiet, batches: [{ ...position, data: seal(keys, position, { entries: historyEntries('quiet', 2) }).toString('base64') }] });
      assert.equal((await b.pull()).entries.length, 0, 'below the cursor, and nothing after it');
      assert.ok((await b.compact()).compacted, 'compacted');
      assert.ok(ids(b.entries()).includes('quiet-1'), 'the compactor found it');
      const c = await joinDevice(url, secret);
      assert.ok(ids(c.entries()).includes('quiet-0'), 'and a new device has it from the snapshot');
      await Promise.all([a.close(), b.close(), c.close(), backend.close()]);
    });

    it('uninstall removes the device, its cursor and its local state; status lists the rest', async () => {
      const url = await target.newBucket('sync-uninstall');
      const storage = openStorage(url);
      const { client: a, secret } = await initDevice(url, { deviceName: 'desk' });
      const b = await joinDevice(url, secret, { deviceName: 'laptop' });
      const status = await a.status();
      assert.deepEqual(status.devices.map((d) => d.name).sort(), ['desk', 'laptop']);
      assert.equal(status.devices.filter((d) => d.self).length, 1);
      const bDir = b.stateDir;
      const bId = b.deviceId;
      await b.uninstall();
      assert.ok(!existsSync(bDir), 'the state directory is removed');
      const keys: string[] = [];
      for await (const item of storage.list({ prefix: `users/${a.userId}/` })) if (item.type === 'object') keys.push(item.key);
      assert.ok(!keys.some((k) => k.endsWith(`/devices/${bId}`) || k.endsWith(`/cursors/${bId}`)), keys.join('\n'));
      assert.deepEqual((await a.status()).devices.map((d) => d.name), ['desk']);
      await Promise.all([a.close(), storage.close()]);
    });
  });
}
