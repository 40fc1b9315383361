// The device clock's calibration against the store's timestamps, which nothing authenticates:
// one forged LastModified, or a clock that jumps for a moment, must not keep a device from
// pushing, nor leave its batch times years ahead. The calibration rules alone, then a store
// that forges its timestamps (a wrapper over the real backend: no real server does it) on a
// local directory, Ceph RGW and an `offsite serve` server over RGW.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { parseLogName } from '../../src/sync/bucket-keys.js';
import { calibratedOffset, MAX_CLOCK_OFFSET_MS, nextBatchTime, registrationOffset } from '../../src/sync/clock.js';
import { SyncClient, type SyncBackend } from '../../src/sync/index.js';
import { SyncState } from '../../src/sync/state.js';
import { closeSyncServers, historyEntries, ids, initDevice, joinDevice, stateDir, TARGETS } from './helpers.js';

after(closeSyncServers); // the servers of the HTTP target

const HOUR = 3600_000;
const YEAR = 365 * 24 * HOUR;

describe('clock calibration rules', () => {
  it('never corrects by more than MAX_CLOCK_OFFSET_MS, whatever the store says', () => {
    const now = Date.now();
    assert.equal(calibratedOffset(0, [{ time: now, storedAt: now + 300 * YEAR }]), MAX_CLOCK_OFFSET_MS);
    assert.equal(calibratedOffset(0, [{ time: now, storedAt: now - 300 * YEAR }]), -MAX_CLOCK_OFFSET_MS);
    assert.equal(calibratedOffset(0, [{ time: now, storedAt: now + 10 * 60_000 }]), 10 * 60_000, 'an honest ten-minute lag is corrected in full');
    assert.equal(calibratedOffset(0, [{ time: now, storedAt: Number.NaN }]), 0, 'an unreadable timestamp is no sample');
    assert.equal(registrationOffset(300 * YEAR), MAX_CLOCK_OFFSET_MS);
    assert.equal(registrationOffset(5_000), 0, 'small drift is left alone');
  });

  it('a previous batch time beyond the bound (saved by an older version) is not followed', () => {
    const now = Date.UTC(2027, 0, 1);
    assert.deepEqual(nextBatchTime(now, 0, now - 5), { time: now, fromClock: true });
    assert.deepEqual(nextBatchTime(now, 0, now + 5), { time: now + 6, fromClock: false }, 'after the previous batch: not a clock reading');
    assert.deepEqual(nextBatchTime(now, 0, now + 200 * YEAR), { time: now, fromClock: true }, 'a time from a forged clock is dropped');
    assert.deepEqual(nextBatchTime(now, 300 * YEAR, 0), { time: now + MAX_CLOCK_OFFSET_MS, fromClock: true }, 'an offset saved unbounded is bounded');
  });
});

/** The real backend, except that the store's timestamps of this device's own batches are `forged()` while it returns one. */
function forgingTimestamps(backend: SyncBackend, forged: () => string | undefined): SyncBackend {
  return new Proxy(backend, {
    get(target, property, receiver) {
      if (property === 'queryEntries') {
        return async (...args: Parameters<SyncBackend['queryEntries']>) => {
          const result = await target.queryEntries(...args);
          const at = forged();
          return at === undefined ? result : { ...result, ownTimings: result.ownTimings.map((t) => ({ ...t, storedAt: at })) };
        };
      }
      const value = Reflect.get(target, property, receiver) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** The batch times of one device, as its log keys carry them. */
async function batchTimes(target: (typeof TARGETS)[number], url: string, userId: string, deviceId: string): Promise<number[]> {
  const storage = target.openRaw(url);
  const prefix = `users/${userId}/log/`;
  const times: number[] = [];
  for await (const item of storage.list({ prefix })) {
    const name = item.type === 'object' ? parseLogName(item.key.slice(prefix.length)) : undefined;
    if (name?.position.deviceId === deviceId) times.push(name.position.time);
  }
  await storage.close();
  return times;
}

for (const target of TARGETS) {
  describe(`a forged store clock through ${target.name}`, () => {
    it('one forged LastModified 300 years ahead moves the clock by a day at most; the device keeps pushing and returns to the store’s time', async () => {
      const url = await target.newBucket('sync-forged-clock');
      let forged: string | undefined;
      const backend = forgingTimestamps(target.openBackend(url), () => forged);
      const { client: a, secret } = await initDevice(url, { backend });
      const b = await joinDevice(url, secret);
      await a.push(historyEntries('a', 2));

      forged = new Date(Date.now() + 300 * YEAR).toISOString();
      await a.pull(); // the store "says" a's batches were stored in 2326
      forged = undefined;
      const offset = (await a.status()).clockOffsetMs;
      assert.ok(offset <= MAX_CLOCK_OFFSET_MS, `offset ${offset} ms`);

      await a.push(historyEntries('a', 2, 2)); // would need a time past year 2286 unbounded: refused for good
      await a.pull(); // honest timestamps: the lead is corrected back
      await a.push(historyEntries('a', 2, 4));
      await a.pull();
      const back = (await a.status()).clockOffsetMs;
      assert.ok(Math.abs(back) < 60_000, `the offset is back to the store's clock: ${back} ms`);
      const times = await batchTimes(target, url, a.userId, a.deviceId);
      assert.ok(times.every((t) => t < Date.now() + MAX_CLOCK_OFFSET_MS + HOUR), `no batch time beyond the bound: ${times.map((t) => new Date(t).toISOString()).join(', ')}`);
      assert.deepEqual(ids((await b.pull()).entries), ids(historyEntries('a', 6)), 'the other device gets every batch');
      await Promise.all([a.close(), b.close()]);
      await backend.close();
    });

    it('a clock that jumps ten years ahead during a push that fails leaves no trace: the next batches carry the real time', async () => {
      const url = await target.newBucket('sync-clock-jump');
      let jump = 0;
      let failSubmit = false;
      const real = target.openBackend(url);
      const backend = new Proxy(real, {
        get(t, property, receiver) {
          if (property === 'submitEntries') {
            return async (...args: Parameters<SyncBackend['submitEntries']>) => {
              if (failSubmit) throw new Error('connection reset (test)');
              return t.submitEntries(...args);
            };
          }
          const value = Reflect.get(t, property, receiver) as unknown;
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(t) : value;
        },
      });
      const dir = await stateDir();
      const { client: a } = await SyncClient.init({ stateDir: dir, storageUrl: url, backend, clock: () => Date.now() + jump });
      await a.push(historyEntries('a', 1));
      jump = 10 * YEAR;
      failSubmit = true;
      await assert.rejects(a.push(historyEntries('a', 1, 1)), /connection reset/);
      jump = 0;
      failSubmit = false;
      await a.flush();
      await a.push(historyEntries('a', 1, 2));
      await a.close();
      const state = SyncState.open(dir);
      const lastTime = state.get('lastTime');
      state.close();
      assert.ok(lastTime < Date.now() + HOUR, `the time saved is the last one the store took: ${new Date(lastTime).toISOString()}`);
      const times = await batchTimes(target, url, a.userId, a.deviceId);
      assert.equal(times.length, 3);
      assert.ok(times.every((t) => t < Date.now() + HOUR), `no batch is timed in the jump: ${times.map((t) => new Date(t).toISOString()).join(', ')}`);
      await real.close();
    });
  });
}
