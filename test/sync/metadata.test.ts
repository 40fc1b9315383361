// What a store learns beyond ciphertext, and what it no longer does: an account's id differs
// per backend (two stores of one account cannot be linked by it), and sizes are padded (every
// small batch, cursor, device record and key check is 480 bytes; larger batches sit on Padmé
// sizes). An account created under the one id of earlier versions keeps working, and moves to
// the new backend's own id when it is migrated. On a local directory, Ceph RGW and an
// `offsite serve` server over RGW.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import type { Storage } from '../../src/storage/index.js';
import { parseLogName } from '../../src/sync/bucket-keys.js';
import { backendName, deriveKeys, legacyUserId, paddedEnvelopeSize, parseSecret, SMALL_ENVELOPE_BYTES, SyncClient, userIdFor } from '../../src/sync/index.js';
import { SyncState } from '../../src/sync/state.js';
import { closeSyncServers, historyEntries, ids, initDevice, joinDevice, localTarget, readObject, rgwTarget, TARGETS, type SyncTarget } from './helpers.js';

after(closeSyncServers); // the servers of the HTTP target

/** The account ids a store holds (users/{id}/...). */
async function accountIds(storage: Storage): Promise<string[]> {
  const found = new Set<string>();
  for await (const item of storage.list({ prefix: 'users/' })) if (item.type === 'object') found.add(item.key.split('/')[1]!);
  return [...found].sort();
}

/** What an Offsite from before per-backend ids left: the account under the legacy id, and a state that recorded it. */
async function asLegacyAccount(storage: Storage, userId: string, legacy: string, stateDirs: string[]): Promise<void> {
  const keys: string[] = [];
  for await (const item of storage.list({ prefix: `users/${userId}/` })) if (item.type === 'object') keys.push(item.key);
  for (const key of keys) {
    await storage.put(key.replace(`users/${userId}/`, `users/${legacy}/`), await readObject(storage, key));
    await storage.delete(key);
  }
  for (const dir of stateDirs) {
    const state = SyncState.open(dir);
    state.setMeta({ userId: legacy });
    state.close();
  }
}

/** Another kind of backend than `target`, for a migration. */
const otherThan = (target: SyncTarget): SyncTarget => (target === localTarget ? rgwTarget : localTarget);

for (const target of TARGETS) {
  describe(`what the store sees through ${target.name}`, () => {
    it('the account’s id differs from one backend to the next: a migration moves it under the new backend’s own id', async () => {
      const url = await target.newBucket('sync-ids');
      const { client: a, secret } = await initDevice(url);
      await a.push(historyEntries('a', 3));
      const keys = deriveKeys(parseSecret(secret));
      assert.equal(a.userId, userIdFor(keys, backendName(url)), 'the id of this backend');
      assert.notEqual(a.userId, legacyUserId(keys));

      const other = otherThan(target);
      const to = await other.newBucket('sync-ids-to');
      await a.migrate(to);
      const source = target.openRaw(url);
      const destination = other.openRaw(to);
      const [before, afterMove] = [await accountIds(source), await accountIds(destination)];
      assert.equal(before.length, 1);
      assert.equal(afterMove.length, 1);
      assert.notEqual(before[0], afterMove[0], `one account, two unrelated ids: ${before[0]} and ${afterMove[0]}`);
      assert.equal(a.userId, afterMove[0], 'the device uses the new id');
      const b = await joinDevice(to, secret);
      assert.deepEqual(ids(b.entries()), ids(historyEntries('a', 3)), 'a device joining the new backend finds the account');
      await Promise.all([a.close(), b.close(), source.close(), destination.close()]);
    });

    it('an account created under the legacy id keeps working: its devices open it, a new device joins it, a migration gives it the new backend’s id', async () => {
      const url = await target.newBucket('sync-legacy');
      const { client: first, secret } = await initDevice(url);
      const second = await joinDevice(url, secret);
      await first.push(historyEntries('a', 2));
      await second.pull();
      const dirs = [first.stateDir, second.stateDir];
      const userId = first.userId;
      await Promise.all([first.close(), second.close()]);
      const legacy = legacyUserId(deriveKeys(parseSecret(secret)));
      const raw = target.openRaw(url);
      await asLegacyAccount(raw, userId, legacy, dirs);
      assert.deepEqual(await accountIds(raw), [legacy], 'the store holds the account under the legacy id only');

      const a = await SyncClient.open({ stateDir: dirs[0]! });
      const b = await SyncClient.open({ stateDir: dirs[1]! });
      assert.equal(a.userId, legacy, 'the state keeps the id it recorded');
      await a.push(historyEntries('a', 2, 2));
      assert.deepEqual(ids((await b.pull()).entries), ids(historyEntries('a', 2, 2)));
      const c = await joinDevice(url, secret);
      assert.equal(c.userId, legacy, 'a new device finds the legacy account');
      assert.deepEqual(ids(c.entries()), ids(historyEntries('a', 4)));
      assert.deepEqual(await accountIds(raw), [legacy], 'and nothing was written under another id');

      const other = otherThan(target);
      const to = await other.newBucket('sync-legacy-to');
      await a.migrate(to);
      await b.migrate(to);
      assert.equal(a.userId, userIdFor(deriveKeys(parseSecret(secret)), backendName(to)), 'moved under the new backend’s own id');
      assert.equal(b.userId, a.userId, 'the second device finds it there');
      await a.push(historyEntries('a', 1, 4));
      assert.deepEqual(ids((await b.pull()).entries), ids(historyEntries('a', 1, 4)));
      await Promise.all([a.close(), b.close(), c.close(), raw.close()]);
    });

    it('sizes are padded: small batches, cursors, device records and the key check are 480 bytes; larger batches sit on Padmé sizes', async () => {
      const url = await target.newBucket('sync-padding');
      const { client: a, secret } = await initDevice(url, { deviceName: 'a' });
      const b = await joinDevice(url, secret, { deviceName: `a much longer device name ${'x'.repeat(60)}` });
      await a.push([{ id: 'p1', command: 'ls' }]);
      await a.push([{ id: 'p2', command: `git commit -m "${'y'.repeat(120)}"`, cwd: '/home/someone/with/a/long/path' }]);
      await a.delete(['p1']);
      await a.push(historyEntries('a', 30).map((e) => ({ ...e, note: randomBytes(90).toString('base64') })));
      await b.pull();
      const raw = target.openRaw(url);
      const prefix = `users/${a.userId}/`;
      const sizes: Record<string, number[]> = { inline: [], body: [], small: [] };
      for await (const item of raw.list({ prefix })) {
        if (item.type !== 'object' || item.key.endsWith('/leases/compaction')) continue;
        const rest = item.key.slice(prefix.length);
        if (rest.startsWith('log/')) {
          const name = parseLogName(rest.slice(4))!;
          if (name.inline) sizes.inline!.push(name.inline.length);
          else sizes.body!.push(item.size);
        } else sizes.small!.push(item.size);
      }
      assert.deepEqual(sizes.inline, [SMALL_ENVELOPE_BYTES, SMALL_ENVELOPE_BYTES, SMALL_ENVELOPE_BYTES], 'two commands of different lengths and a deletion: one size');
      assert.equal(sizes.body!.length, 1);
      assert.equal(sizes.body![0], paddedEnvelopeSize(sizes.body![0]!), `the large batch (${sizes.body![0]} bytes) sits on a Padmé size`);
      assert.ok(sizes.small!.length >= 5 && sizes.small!.every((n) => n === SMALL_ENVELOPE_BYTES), `key check, device records and cursors: ${sizes.small!.join(', ')}`);
      await Promise.all([a.close(), b.close(), raw.close()]);
    });
  });
}
