// Sync between devices through a bucket, run unchanged against a local directory, the real
// Ceph RGW, and an `offsite serve` server over the RGW (raw reads and edits then go to the
// server's own storage): joining, the one-request empty pull, deletions, tampering, what the bucket
// can read, compaction under concurrency, clocks, and removing a device.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type { Storage } from '../../src/storage/index.js';
import { batchLogName, INLINE_MAX_BYTES, parseBatchId, parseLogName } from '../../src/sync/bucket-keys.js';
import { batchId, deriveKeys, isSyncError, parseSecret, seal, SyncClient, type SyncEntry } from '../../src/sync/index.js';
import { rejectsWithCode } from '../support/assert.js';
import { closeSyncServers, historyEntries, historyEntry, ids, initDevice, joinDevice, readObject, stateDir, TARGETS } from './helpers.js';

after(closeSyncServers); // the servers of the HTTP target

const isSyncErr = (e: unknown): e is Error & { code: string } => isSyncError(e);

/** The keys of one account's log, in order, with their positions and form (bytes in the key, or a body). */
async function logKeys(storage: Storage, userId: string): Promise<{ key: string; id: string; deviceId: string; seq: number; time: number; inline: boolean; size: number }[]> {
  const prefix = `users/${userId}/log/`;
  const out = [];
  for await (const item of storage.list({ prefix })) {
    if (item.type !== 'object') continue;
    const name = parseLogName(item.key.slice(prefix.length));
    if (name) out.push({ key: item.key, id: name.id, ...name.position, inline: name.inline !== undefined, size: item.size });
  }
  return out;
}

/** A stored batch's sealed bytes, from its key or its body. */
async function batchBytes(storage: Storage, userId: string, key: string): Promise<Buffer> {
  const name = parseLogName(key.slice(`users/${userId}/log/`.length));
  assert.ok(name, `${key} is a batch key`);
  return name.inline ?? readObject(storage, key);
}

/**
 * What a bucket owner does to a log: stores `data` as batch `id`, in its key (inline) or as a
 * body, after removing whatever was stored under that id.
 */
async function placeBatch(storage: Storage, userId: string, id: string, data: Buffer, form: 'inline' | 'body'): Promise<string> {
  const prefix = `users/${userId}/log/`;
  const old: string[] = [];
  for await (const item of storage.list({ prefix: `${prefix}${id}` })) if (item.type === 'object') old.push(item.key);
  await storage.deleteMany(old);
  const position = parseBatchId(id);
  assert.ok(position, `${id} is a batch id`);
  const name = form === 'inline' ? batchLogName(position, data) : id;
  assert.ok(form === 'body' || name !== id, `${data.length} bytes fit in a key`);
  await storage.put(`${prefix}${name}`, form === 'inline' ? Buffer.alloc(0) : data);
  return `${prefix}${name}`;
}

/** Changes one character of an inline batch's key (which is its data), as a rename would. */
async function flipInlineCharacter(storage: Storage, key: string): Promise<string> {
  const start = key.indexOf('/i/') + 3;
  let at = start + Math.floor((key.length - start) / 2); // the middle of the data: changes a whole byte
  if (key[at] === '/') at++;
  const flipped = key.slice(0, at) + (key[at] === 'A' ? 'B' : 'A') + key.slice(at + 1);
  assert.notEqual(flipped, key, 'one character changed');
  await storage.delete(key);
  await storage.put(flipped, Buffer.alloc(0));
  return flipped;
}

/**
 * The two forms a batch is stored in, and entries that make each: history entries compress so
 * well that 5 make a batch of about 300 bytes (carried in its key); with 150 random bytes each
 * they make a batch well over INLINE_MAX_BYTES (a body).
 */
const FORMS = [
  { form: 'inline', entries: (n: number, from = 0) => historyEntries('a', n, from) },
  { form: 'body', entries: (n: number, from = 0) => historyEntries('a', n, from).map((e) => ({ ...e, note: randomBytes(150).toString('base64') })) },
] as const;

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
      const { client: a, secret } = await initDevice(url);
      // Device b runs on a backend this test can read the counters of.
      const backend = target.openBackend(url);
      const b = (await SyncClient.join(secret, { stateDir: await stateDir(), storageUrl: url, backend })).client;
      await a.push(historyEntries('a', 25));
      await b.push(historyEntries('b', 10));
      const got = await b.pull();
      assert.deepEqual(ids(got.entries), ids(historyEntries('a', 25)));
      assert.deepEqual(ids((await a.pull()).entries), ids(historyEntries('b', 10)));
      assert.equal(b.entryCount(), 35);
      assert.equal(a.entryCount(), 35);

      const op = target.queryOperation;
      const before = backend.requestStats();
      const serverBefore = target.serverStats?.(url);
      const empty = await b.pull();
      const after = backend.requestStats();
      assert.equal(empty.entries.length, 0, 'nothing new');
      assert.equal(after.totalRequests - before.totalRequests, 1, 'one request');
      assert.equal((after.requests[op] ?? 0) - (before.requests[op] ?? 0), 1, `and it is one ${op}`);
      assert.deepEqual(empty.requests, { total: 1, byOperation: { [op]: 1 } });
      if (serverBefore) {
        // Behind the server, that one query is one LIST of its bucket.
        const serverAfter = target.serverStats!(url);
        assert.equal(serverAfter.totalRequests - serverBefore.totalRequests, 1, 'the server made one request');
        assert.equal((serverAfter.requests.ListObjectsV2 ?? 0) - (serverBefore.requests.ListObjectsV2 ?? 0), 1, 'and it is one LIST');
      }

      // The same entry pushed again is not sent again, and nothing arrives twice.
      const again = await a.push([historyEntry('a', 0)]);
      assert.equal(again.duplicates, 1);
      assert.equal(again.batches, 0);
      assert.equal((await b.pull()).entries.length, 0);
      await Promise.all([a.close(), b.close()]);
      await backend.close();
    });

    it('batches by count and size, and holds a queued entry until it is due', async () => {
      const url = await target.newBucket('sync-batching');
      const { client: a, secret } = await initDevice(url, { batching: { maxEntries: 40, maxBytes: 4096, maxAgeMs: 60_000 } });
      const storage = target.openRaw(url);
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
      const backend = target.openBackend(url);
      const deletions = await backend.getDeletionRequests({ userId: a.userId, deviceId: a.deviceId });
      await backend.close();
      assert.ok(deletions.requests.length > 0 && deletions.requests.every((r) => r.kind === 'deletions'), 'only deletion requests');
      for (const x of [a, b, c]) assert.equal((await x.pull()).entries.length, 0);
      await Promise.all([a, b, c, d].map((x) => x.close()));
    });

    for (const { form, entries } of FORMS) {
      it(`a flipped byte, two swapped batches and a replayed batch are reported, and nothing wrong is imported (batches stored ${form === 'inline' ? 'in their keys' : 'as bodies'})`, async () => {
        const url = await target.newBucket(`sync-tamper-${form}`);
        const storage = target.openRaw(url);
        const { client: a, secret } = await initDevice(url);
        const b = await joinDevice(url, secret);
        for (let i = 0; i < 3; i++) await a.push(entries(5, i * 5)); // batches 1, 2, 3
        const batches = (await logKeys(storage, a.userId)).filter((k) => k.deviceId === a.deviceId);
        assert.deepEqual(batches.map((k) => k.seq), [1, 2, 3], 'three batches');
        for (const k of batches) {
          assert.equal(k.inline, form === 'inline', `batch ${k.seq} is stored ${form === 'inline' ? 'in its key' : 'as a body'}: ${k.key} (${k.size} bytes)`);
          if (form === 'body') assert.ok(k.size > INLINE_MAX_BYTES, `batch ${k.seq}: ${k.size} bytes`);
        }
        const original = new Map<number, Buffer>();
        for (const k of batches) original.set(k.seq, await batchBytes(storage, a.userId, k.key));
        const idOf = (seq: number) => batches.find((k) => k.seq === seq)!.id;

        // 1. Batch 2 changed (a character of its key, or a byte of its body): batch 1 arrives,
        //    batch 2 is refused, batch 3 waits behind it.
        if (form === 'inline') {
          await flipInlineCharacter(storage, batches.find((k) => k.seq === 2)!.key);
        } else {
          const flipped = Buffer.from(original.get(2)!);
          const middle = Math.floor(flipped.length / 2);
          flipped[middle] = flipped[middle]! ^ 0x40;
          await placeBatch(storage, a.userId, idOf(2), flipped, form);
        }
        let r = await b.pull();
        assert.deepEqual(r.problems.map((p) => [p.code, p.seq]), [['Tampered', 2]], 'batch 2 is refused');
        assert.deepEqual(ids(b.entries()), ids(entries(5, 0)), 'only batch 1 is imported');
        r = await b.pull();
        assert.deepEqual(r.problems.map((p) => p.code), ['Tampered'], 'reported again until it is fixed');
        assert.equal(r.entries.length, 0, 'nothing imported');
        assert.match((await b.status()).problems[0]?.message ?? '', /failed authentication/);

        // 2. Batches 2 and 3 swapped (each intact): both refused as out of order.
        await placeBatch(storage, a.userId, idOf(2), original.get(3)!, form);
        await placeBatch(storage, a.userId, idOf(3), original.get(2)!, form);
        r = await b.pull();
        assert.deepEqual(r.problems.map((p) => [p.code, p.seq]).sort(), [['OutOfOrder', 2], ['OutOfOrder', 3]], 'both refused');
        assert.equal(b.entryCount(), 5, 'still only batch 1');

        // Put right: everything arrives, nothing twice.
        await placeBatch(storage, a.userId, idOf(2), original.get(2)!, form);
        await placeBatch(storage, a.userId, idOf(3), original.get(3)!, form);
        r = await b.pull();
        assert.deepEqual(r.problems, [], 'no problem left');
        assert.deepEqual(ids(r.entries), ids(entries(10, 5)), 'batches 2 and 3 arrive');

        // 3. Batch 1 replayed as the next batch of a (seq 4, a fresh time): refused as a replay.
        const replayId = batchId({ deviceId: a.deviceId, seq: 4, time: Date.now(), kind: 'entries' });
        await placeBatch(storage, a.userId, replayId, original.get(1)!, form);
        r = await b.pull();
        assert.deepEqual(r.problems.map((p) => [p.code, p.seq]), [['Replayed', 4]], 'a replay');
        assert.equal(r.entries.length, 0, 'nothing imported');
        // Batch 1 replayed onto a position b already holds (a fresh time): opened as a copy b has
        // not seen, refused as a replay, and nothing changes.
        await placeBatch(storage, a.userId, batchId({ deviceId: a.deviceId, seq: 1, time: Date.now() + 5, kind: 'entries' }), original.get(1)!, form);
        // The real batch 4 arrives beside the replayed copy and is the one applied.
        await a.push(entries(5, 15));
        r = await b.pull();
        assert.deepEqual(r.problems.map((p) => [p.code, p.seq]).sort(), [['Replayed', 1], ['Replayed', 4]], 'both replayed copies are refused');
        assert.deepEqual(ids(r.entries), ids(entries(5, 15)), 'the real batch 4 is imported');
        assert.deepEqual(ids(b.entries()), ids(entries(20)), 'everything, once');
        r = await b.pull();
        assert.deepEqual(r.problems, [], 'a refused copy at a held position is reported once');
        await Promise.all([a.close(), b.close(), storage.close()]);
      });
    }

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
      const storage = target.openRaw(url);
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
      const storage = target.openRaw(url);
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
      const backend = target.openBackend(url);
      const late = 'a0a0a0a0a0a0a0a0';
      const put = async (seq: number, time: number, entries: SyncEntry[]) => {
        const position = { deviceId: late, seq, time, kind: 'entries' as const };
        await backend.submitEntries({ userId: a.userId, deviceId: late, batches: [{ ...position, data: seal(keys, position, { entries }).toString('base64') }] });
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
      await backend.submitEntries({ userId: a.userId, deviceId: quiet, batches: [{ ...position, data: seal(keys, position, { entries: historyEntries('quiet', 2) }).toString('base64') }] });
      assert.equal((await b.pull()).entries.length, 0, 'below the cursor, and nothing after it');
      assert.ok((await b.compact()).compacted, 'compacted');
      assert.ok(ids(b.entries()).includes('quiet-1'), 'the compactor found it');
      const c = await joinDevice(url, secret);
      assert.ok(ids(c.entries()).includes('quiet-0'), 'and a new device has it from the snapshot');
      await Promise.all([a.close(), b.close(), c.close(), backend.close()]);
    });

    it('uninstall removes the device, its cursor and its local state; status lists the rest', async () => {
      const url = await target.newBucket('sync-uninstall');
      const storage = target.openRaw(url);
      const { client: a, secret } = await initDevice(url, { deviceName: 'desk' });
      const b = await joinDevice(url, secret, { deviceName: 'laptop' });
      const status = await a.status();
      assert.deepEqual(status.devices.map((d) => d.name).sort(), ['desk', 'laptop']);
      assert.equal(status.devices.filter((d) => d.self).length, 1);
      const bDir = b.stateDir;
      const bId = b.deviceId;
      // A command the shell hook spooled and no pusher sent: it goes with the device.
      mkdirSync(path.join(bDir, 'history-spool'), { mode: 0o700 });
      writeFileSync(path.join(bDir, 'history-spool', '1-1-a.spool'), 'unsent\n', { mode: 0o600 });
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
