// Small sealed batches travel in their log key (bucket-keys.ts): a pull gets them from the LIST it
// makes anyway, with no GET; larger ones stay bodies, one GET each. Checked on a local directory,
// Ceph RGW and an `offsite serve` server over RGW: what a pull costs, how long the longest key
// is with a storage prefix, where the keys sort, tampering with an inline batch, and retried
// write-once requests.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { compareKeys, LocalStorage, type RequestStats, type Storage } from '../../src/storage/index.js';
import {
  batchId,
  batchLogName,
  INLINE_CHUNK_CHARS,
  INLINE_MAX_BYTES,
  parseLogName,
  startAfterForBatch,
  startAfterForFloor,
} from '../../src/sync/bucket-keys.js';
import { BucketBackend, isSyncError, SyncClient, type BatchPosition, type SyncEntry } from '../../src/sync/index.js';
import { rejectsWithCode } from '../support/assert.js';
import { createTestBucket, openTestS3, s3ChildEnv, s3Url } from '../support/env.js';
import { closeSyncServers, historyEntries, HTTP_TOKEN, ids, initDevice, joinDevice, scratchDir, startSyncServer, stateDir, TARGETS } from './helpers.js';

after(closeSyncServers); // the servers of the HTTP target

const isSyncErr = (e: unknown): e is Error & { code: string } => isSyncError(e);
const PREFIX_150 = `${'p'.repeat(149)}/`;

/** One account's log as stored: key, batch id, seq, device, and whether the bytes are in the key. */
async function rawLog(storage: Storage, userId: string): Promise<{ key: string; id: string; deviceId: string; seq: number; inline: boolean; size: number }[]> {
  const prefix = `users/${userId}/log/`;
  const out = [];
  for await (const item of storage.list({ prefix })) {
    if (item.type !== 'object') continue;
    const name = parseLogName(item.key.slice(prefix.length));
    if (name) out.push({ key: item.key, id: name.id, deviceId: name.position.deviceId, seq: name.position.seq, inline: name.inline !== undefined, size: item.size });
  }
  return out;
}

/** Entries that do not compress: a batch of 20 is several KiB, far over INLINE_MAX_BYTES. */
function bulkyEntries(device: string, count: number, from = 0): SyncEntry[] {
  return historyEntries(device, count, from).map((e) => ({ ...e, note: randomBytes(200).toString('base64') }));
}

const delta = (after: RequestStats, before: RequestStats, op: string) => (after.requests[op] ?? 0) - (before.requests[op] ?? 0);

describe('inline batch keys', () => {
  it('both forms round-trip, every segment fits a file name, and INLINE_MAX_BYTES is the boundary', () => {
    const p: BatchPosition = { deviceId: 'd'.repeat(32), seq: 7, time: 1_795_450_000_123, kind: 'entries' };
    for (const size of [1, 2, 3, 149, 150, 151, 299, 300, INLINE_MAX_BYTES - 1, INLINE_MAX_BYTES]) {
      const data = randomBytes(size);
      const name = batchLogName(p, data);
      assert.ok(name.startsWith(`${batchId(p)}/i/`), `${size} bytes go in the key: ${name.slice(0, 60)}`);
      const segments = name.split('/').slice(2);
      assert.ok(segments.every((s) => s.length >= 1 && s.length <= INLINE_CHUNK_CHARS && Buffer.byteLength(s) <= 255), `${size} bytes: segments of ${segments.map((s) => s.length).join(', ')} characters`);
      const parsed = parseLogName(name);
      assert.ok(parsed, `${size} bytes: the name parses`);
      assert.equal(parsed.id, batchId(p), `${size} bytes: the id`);
      assert.deepEqual(parsed.position, p, `${size} bytes: the position`);
      assert.ok(parsed.inline?.equals(data), `${size} bytes: the data comes back from the name`);
    }
    for (const size of [INLINE_MAX_BYTES + 1, 4096]) {
      const name = batchLogName(p, randomBytes(size));
      assert.equal(name, batchId(p), `${size} bytes are a body under the bare id`);
      const parsed = parseLogName(name);
      assert.ok(parsed && parsed.inline === undefined && parsed.id === name, `${size} bytes: parsed as a body batch`);
    }
    for (const stray of [`${batchId(p)}/i/`, `${batchId(p)}/i/abc+def`, `${batchId(p)}/x/abc`, `${batchId(p)}/i/${'A'.repeat(INLINE_CHUNK_CHARS + 1)}`, `${batchId(p)}/i//abc`, 'not-a-batch/i/abc']) {
      assert.equal(parseLogName(stray), undefined, `"${stray.slice(0, 80)}" is not a batch key`);
    }
  });

  it('the longest inline key with a 150-byte storage prefix is at most 1,024 bytes', () => {
    const p: BatchPosition = { deviceId: 'f'.repeat(64), seq: 9_999_999_999, time: 9_999_999_999_999, kind: 'deletions' };
    const key = `${PREFIX_150}users/${'e'.repeat(64)}/log/${batchLogName(p, randomBytes(INLINE_MAX_BYTES))}`;
    assert.equal(Buffer.byteLength(PREFIX_150), 150, 'the prefix is 150 bytes');
    assert.ok(key.includes('/i/'), 'stored in the key');
    assert.ok(Buffer.byteLength(key) <= 1024, `the full key is ${Buffer.byteLength(key)} bytes`);
    assert.equal(Buffer.byteLength(key), 962, 'as bucket-keys.ts computes it');
  });

  it('keys of either form sort by batch id, with each id’s keys together, so the cursors skip what they should', () => {
    // Ids chosen at the characters that matter: a device id that is a prefix of another ('-' vs
    // '0'), times one millisecond apart, seq 9 vs 10, both kinds; data from every base64url class.
    const positions: BatchPosition[] = [];
    for (const time of [1_795_450_000_000, 1_795_450_000_001, 1_795_450_000_010])
      for (const deviceId of ['abcdefgh', 'abcdefgh0', 'abcdefgha', 'abcdefgz'])
        for (const seq of [9, 10])
          for (const kind of ['entries', 'deletions'] as const) positions.push({ time, deviceId, seq, kind });
    const data = [Buffer.from([0xff, 0xff, 0xff]), Buffer.from([0, 0, 0]), Buffer.from([0xfb, 0xef, 0xbe]), randomBytes(INLINE_MAX_BYTES), randomBytes(INLINE_MAX_BYTES + 1)];
    const keys = positions.flatMap((p) => data.map((d) => ({ id: batchId(p), p, key: `users/u0u0u0u0/log/${batchLogName(p, d)}` })));
    const sortedKeys = [...keys].sort((a, b) => compareKeys(a.key, b.key));
    const idOrder = [...new Set(sortedKeys.map((k) => k.id))];
    assert.deepEqual(idOrder, [...new Set(keys.map((k) => k.id))].sort(compareKeys), 'keys sort as their ids');
    const runs = sortedKeys.map((k) => k.id).filter((id, i, all) => i === 0 || all[i - 1] !== id);
    assert.equal(runs.length, idOrder.length, 'each id’s keys are contiguous');
    for (const k of keys) {
      const floor = startAfterForFloor('u0u0u0u0', 1_795_450_000_001)!;
      assert.equal(compareKeys(k.key, floor) > 0, k.p.time >= 1_795_450_000_001, `${k.key.slice(0, 70)} against the floor cursor`);
      const afterId = batchId(positions[9]!);
      assert.equal(compareKeys(k.key, startAfterForBatch('u0u0u0u0', afterId)) > 0, compareKeys(k.id, afterId) > 0, `${k.key.slice(0, 70)} against afterBatchId ${afterId}`);
    }
  });

  it('on RGW and a local directory, a batch of INLINE_MAX_BYTES under a 150-byte prefix is stored, listed and returned with no GET', async () => {
    const bucket = await createTestBucket('sync-inline-long');
    const stores: { name: string; storage: Storage; raw: Storage }[] = [
      { name: 'Ceph RGW', storage: openTestS3(bucket, { prefix: PREFIX_150 }), raw: openTestS3(bucket) },
      ...(await (async () => {
        const dir = path.join(await scratchDir('inline-long-'), 'bucket');
        const local = new LocalStorage(dir);
        return [{ name: 'a local directory', storage: local, raw: local }];
      })()),
    ];
    for (const { name, storage, raw } of stores) {
      const backend = new BucketBackend(storage);
      const userId = 'e'.repeat(64);
      const writer = 'f'.repeat(64);
      const reader = '0'.repeat(64);
      const position = { deviceId: writer, seq: 9_999_999_999, time: 9_999_999_999_999, kind: 'entries' as const };
      const data = randomBytes(INLINE_MAX_BYTES).toString('base64');
      await backend.submitEntries({ userId, deviceId: writer, batches: [{ ...position, data }] });
      const before = backend.requestStats();
      const got = await backend.queryEntries({ userId, deviceId: reader, known: {} });
      const after = backend.requestStats();
      assert.equal(got.batches.length, 1, `${name}: one batch`);
      assert.equal(got.batches[0]!.data, data, `${name}: its bytes, unchanged`);
      assert.equal(got.batches[0]!.id, batchId(position), `${name}: under its batch id`);
      assert.equal(delta(after, before, 'ListObjectsV2'), 1, `${name}: one LIST`);
      assert.equal(delta(after, before, 'GetObject'), 0, `${name}: no GET`);
      const keys: string[] = [];
      for await (const item of raw.list({ prefix: storage === raw ? 'users/' : PREFIX_150 })) if (item.type === 'object') keys.push(item.key);
      assert.equal(keys.length, 1, `${name}: one object: ${keys.join(', ')}`);
      const expected = storage === raw ? 962 - 150 : 962;
      assert.equal(Buffer.byteLength(keys[0]!), expected, `${name}: the key as stored is ${Buffer.byteLength(keys[0]!)} bytes`);
      await backend.close();
      if (raw !== storage) await raw.close();
    }
  });
});

describe('a storage prefix that leaves no room for bytes in the key', () => {
  it('with a 400-byte prefix on RGW, directly and behind a server, no key passes 1,024 bytes (a small batch goes in a body), and they sync', async () => {
    const bucket = await createTestBucket('sync-long-prefix');
    Object.assign(process.env, s3ChildEnv()); // openStorage(url) takes the AWS default chain
    const direct = `${'q'.repeat(399)}/`;
    const served = `${'r'.repeat(399)}/`;
    const server = await startSyncServer(s3Url(bucket, served));
    process.env.OFFSITE_SYNC_TOKEN = HTTP_TOKEN;
    const raw = openTestS3(bucket);
    const keysUnder = async (prefix: string) => {
      const keys: string[] = [];
      for await (const item of raw.list({ prefix })) if (item.type === 'object') keys.push(item.key);
      return keys;
    };
    const longest = (keys: string[]) => Math.max(...keys.map((k) => Buffer.byteLength(k)));
    for (const [url, prefix] of [
      [s3Url(bucket, direct), direct],
      [server, served],
    ] as const) {
      assert.equal(Buffer.byteLength(prefix), 400);
      const { client: a, secret } = await initDevice(url);
      const b = await joinDevice(url, secret);
      for (let i = 0; i < 3; i++) await a.push(historyEntries('a', 1, i)); // a command per batch
      const got = await b.pull();
      assert.deepEqual(got.problems, []);
      assert.deepEqual(ids(got.entries), ids(historyEntries('a', 3)), `${url.slice(0, 40)}: every batch arrives`);
      const keys = await keysUnder(prefix);
      assert.equal(keys.filter((k) => k.includes('/log/')).length, 3, 'three batches');
      assert.ok(longest(keys) <= 1024, `the longest key is ${longest(keys)} bytes`);
      await Promise.all([a.close(), b.close()]);
    }
    // The largest batch that travels in a key, under the long prefix: stored as a body instead.
    const backend = new BucketBackend(openTestS3(bucket, { prefix: direct }));
    const userId = randomBytes(16).toString('hex');
    const deviceId = randomBytes(16).toString('hex');
    const data = randomBytes(INLINE_MAX_BYTES).toString('base64');
    await backend.submitEntries({ userId, deviceId, batches: [{ deviceId, seq: 1, time: Date.now(), kind: 'entries', data }] });
    const log = await keysUnder(`${direct}users/${userId}/log/`);
    assert.equal(log.length, 1);
    assert.ok(!log[0]!.includes('/i/'), `a body, not bytes in the key: ${log[0]!.slice(0, 480)}…`);
    assert.ok(Buffer.byteLength(log[0]!) <= 1024, `${Buffer.byteLength(log[0]!)} bytes`);
    const back = await backend.queryEntries({ userId, deviceId: 'a0a0a0a0a0a0a0a0', known: {} });
    assert.equal(back.batches[0]?.data, data, 'read back as written');
    await backend.close();
    await raw.close();
  });
});

for (const target of TARGETS) {
  describe(`inline batches through ${target.name}`, () => {
    it('a pull of new small batches from two devices is one LIST and no GET; a large batch is a body, one GET', async () => {
      const url = await target.newBucket('sync-inline-pull');
      const raw = target.openRaw(url);
      const { client: a, secret } = await initDevice(url);
      const c = await joinDevice(url, secret);
      const backend = target.openBackend(url);
      const b = (await SyncClient.join(secret, { stateDir: await stateDir(), storageUrl: url, backend })).client;
      // Requests as the bucket sees them: for a server, those of the storage behind it.
      const stats = () => target.serverStats?.(url) ?? backend.requestStats();

      for (let i = 0; i < 3; i++) await a.push(historyEntries('a', 1, i)); // one command a batch
      for (let i = 0; i < 2; i++) await c.push(historyEntries('c', 1, i));
      const log = await rawLog(raw, a.userId);
      assert.equal(log.length, 5, `five batches: ${log.map((k) => k.key).join('\n')}`);
      assert.ok(log.every((k) => k.inline && k.size === 0), `every one carried in its key, with an empty body: ${JSON.stringify(log.map((k) => [k.inline, k.size]))}`);

      let before = stats();
      const small = await b.pull();
      let after = stats();
      assert.deepEqual(ids(small.entries), ids([...historyEntries('a', 3), ...historyEntries('c', 2)]), 'all five entries arrive');
      assert.equal(small.batches, 5, 'in five batches');
      assert.equal(delta(after, before, 'ListObjectsV2'), 1, `one LIST: ${JSON.stringify(after.requests)}`);
      assert.equal(delta(after, before, 'GetObject'), 0, `no GET: ${JSON.stringify(after.requests)}`);
      assert.equal(delta(after, before, 'HeadObject'), 0, 'no HEAD');

      const bulky = bulkyEntries('a', 20, 100);
      await a.push(bulky);
      const big = (await rawLog(raw, a.userId)).filter((k) => k.deviceId === a.deviceId && k.seq === 4);
      assert.equal(big.length, 1, 'batch 4 is stored once');
      assert.ok(!big[0]!.inline && big[0]!.size > INLINE_MAX_BYTES, `batch 4 is a body of ${big[0]!.size} bytes: ${big[0]!.key}`);
      before = stats();
      const large = await b.pull();
      after = stats();
      assert.deepEqual(ids(large.entries), ids(bulky), 'the large batch arrives');
      assert.equal(delta(after, before, 'ListObjectsV2'), 1, 'one LIST');
      assert.equal(delta(after, before, 'GetObject'), 1, 'and one GET, for the body');
      assert.equal(b.entryCount(), 25, 'everything, once');
      await Promise.all([a.close(), b.close(), c.close(), raw.close()]);
      await backend.close();
    });

    it('an inline batch with a flipped character is reported Tampered and not imported; the batches after it wait', async () => {
      const url = await target.newBucket('sync-inline-tamper');
      const raw = target.openRaw(url);
      const { client: a, secret } = await initDevice(url);
      const b = await joinDevice(url, secret);
      for (let i = 0; i < 3; i++) await a.push(historyEntries('a', 1, i));
      const batch2 = (await rawLog(raw, a.userId)).find((k) => k.deviceId === a.deviceId && k.seq === 2);
      assert.ok(batch2?.inline, `batch 2 is in its key: ${batch2?.key}`);
      // A rename that changes one character of the data, in the middle (a whole byte changes).
      const start = batch2.key.indexOf('/i/') + 3;
      let at = start + Math.floor((batch2.key.length - start) / 2);
      if (batch2.key[at] === '/') at++;
      const flipped = batch2.key.slice(0, at) + (batch2.key[at] === 'A' ? 'B' : 'A') + batch2.key.slice(at + 1);
      assert.notEqual(flipped, batch2.key, 'the key changed');
      await raw.delete(batch2.key);
      await raw.put(flipped, Buffer.alloc(0));

      const r = await b.pull();
      assert.deepEqual(r.problems.map((p) => [p.code, p.seq]), [['Tampered', 2]], `batch 2 refused: ${JSON.stringify(r.problems)}`);
      assert.match(r.problems[0]!.message, /failed authentication/, 'as a failed authentication');
      assert.deepEqual(ids(b.entries()), ids(historyEntries('a', 1, 0)), 'only batch 1 is imported; batch 3 waits behind batch 2');
      const again = await b.pull();
      assert.deepEqual(again.problems.map((p) => p.code), ['Tampered'], 'reported on the next pull too');
      assert.equal(b.entryCount(), 1, 'still only batch 1');
      await Promise.all([a.close(), b.close(), raw.close()]);
    });

    it('a retried write of the same bytes succeeds (batch of either form, key check, snapshot); other bytes are a Conflict', async () => {
      const url = await target.newBucket('sync-inline-retry');
      const raw = target.openRaw(url);
      const backend = target.openBackend(url);
      const userId = randomBytes(16).toString('hex');
      const deviceId = randomBytes(16).toString('hex');
      const b64 = (n: number) => randomBytes(n).toString('base64');

      const reg = { userId, deviceId, device: b64(100), keyCheck: b64(100) };
      assert.equal((await backend.registerDevice(reg)).alreadyRegistered, false, 'the first registration');
      await backend.registerDevice(reg); // the same request again: a lost response, retried
      const other = await rejectsWithCode(backend.registerDevice({ ...reg, keyCheck: b64(100) }), isSyncErr, 'Conflict');
      assert.match(other.message, /already exists/, other.message);

      const snapshot = { userId, deviceId, generation: 1, data: b64(2000), covers: { [deviceId]: 0 } };
      await backend.putSnapshot(snapshot);
      await backend.putSnapshot(snapshot);
      await rejectsWithCode(backend.putSnapshot({ ...snapshot, data: b64(2000) }), isSyncErr, 'Conflict');
      const boot = await backend.bootstrap({ userId, deviceId });
      assert.equal(boot.snapshot?.data, snapshot.data, 'the first snapshot stays');

      const small = { deviceId, seq: 1, time: Date.now(), kind: 'entries' as const, data: b64(300) };
      const large = { deviceId, seq: 2, time: Date.now() + 1, kind: 'entries' as const, data: b64(INLINE_MAX_BYTES + 100) };
      for (const batch of [small, large]) {
        const first = await backend.submitEntries({ userId, deviceId, batches: [batch] });
        const retried = await backend.submitEntries({ userId, deviceId, batches: [batch] });
        assert.deepEqual(retried, first, `seq ${batch.seq}: the retry reports the same id`);
      }
      await rejectsWithCode(backend.submitEntries({ userId, deviceId, batches: [{ ...large, data: b64(INLINE_MAX_BYTES + 100) }] }), isSyncErr, 'Conflict');
      const log = await rawLog(raw, userId);
      assert.deepEqual(log.map((k) => [k.seq, k.inline]), [[1, true], [2, false]], `one key per batch: ${log.map((k) => k.key).join('\n')}`);
      const got = await backend.queryEntries({ userId, deviceId: 'a0a0a0a0a0a0a0a0', known: {} });
      assert.deepEqual(got.batches.map((x) => x.data), [small.data, large.data], 'both come back as written');

      // A lease name becomes part of a key: only the one lease there is.
      const bucketBackend = new BucketBackend(raw);
      for (const name of ['../devices/x', 'other']) {
        await rejectsWithCode(bucketBackend.acquireLease({ userId, deviceId, name: name as 'compaction', ttlMs: 1000, now: Date.now() }), isSyncErr, 'InvalidEntry');
        await rejectsWithCode(bucketBackend.releaseLease({ userId, deviceId, name: name as 'compaction', token: 'x' }), isSyncErr, 'InvalidEntry');
      }
      const lease = await bucketBackend.acquireLease({ userId, deviceId, name: 'compaction', ttlMs: 1000, now: Date.now() });
      assert.ok(lease.acquired, 'the compaction lease is taken');
      await backend.close();
      await raw.close();
    });

    if (target.name === 'a local directory') {
      it('on a local directory, a small batch at the position of a body batch is a Conflict', async () => {
        const url = await target.newBucket('sync-inline-cross');
        const backend = target.openBackend(url);
        const userId = randomBytes(16).toString('hex');
        const deviceId = randomBytes(16).toString('hex');
        const position = { deviceId, seq: 1, time: Date.now(), kind: 'entries' as const };
        await backend.submitEntries({ userId, deviceId, batches: [{ ...position, data: randomBytes(INLINE_MAX_BYTES + 1).toString('base64') }] });
        const e = await rejectsWithCode(backend.submitEntries({ userId, deviceId, batches: [{ ...position, data: randomBytes(100).toString('base64') }] }), isSyncErr, 'Conflict');
        assert.match(e.message, /already exists with other contents/, e.message);
        await backend.close();
      });
    }
  });
}
