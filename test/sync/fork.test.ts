// A device's state directory restored from a backup, or copied and used twice: the device must
// not number new batches the same as batches it already stored (its own log is looked at once per
// process, before the first number), and when two copies of one state still write two different
// batches under one number, every device reports the fork and keeps both. On a local directory,
// Ceph RGW and an `offsite serve` server over RGW.
import assert from 'node:assert/strict';
import { cp, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { SyncClient, type SyncBackend, type SyncEntry } from '../../src/sync/index.js';
import { closeSyncServers, historyEntry, ids, initDevice, joinDevice, scratchDir, TARGETS } from './helpers.js';

after(closeSyncServers); // the servers of the HTTP target

const entry = (label: string): SyncEntry => ({ ...historyEntry('a', 0), id: label, command: `echo ${label}` });

/** A copy of a closed device's state directory, as a backup or a copied directory would be. */
async function copyState(dir: string, label: string): Promise<string> {
  const copy = path.join(await scratchDir(`${label}-`), 'state');
  await cp(dir, copy, { recursive: true });
  return copy;
}

async function restore(dir: string, backup: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await cp(backup, dir, { recursive: true });
}

for (const target of TARGETS) {
  describe(`a restored or copied state directory through ${target.name}`, () => {
    it('a device restored from a backup continues after its last stored batch: nothing forks, both devices hold everything, for one LIST', async () => {
      const url = await target.newBucket('sync-restored');
      const { client: first, secret } = await initDevice(url);
      const b = await joinDevice(url, secret);
      await first.push([entry('x1')]); // batch 1
      const dir = first.stateDir;
      await first.close();
      const backup = await copyState(dir, 'backup');

      let a = await SyncClient.open({ stateDir: dir });
      await a.push([entry('x2')]); // batch 2, after the backup
      await b.pull();
      await b.push([entry('x4')]);
      await a.close();

      await restore(dir, backup); // the state forgets batch 2
      const backend: SyncBackend = target.openBackend(url);
      a = await SyncClient.open({ stateDir: dir, backend });
      const before = backend.requestStats();
      const pushed = await a.push([entry('x3')]);
      const op = target.queryOperation;
      const listings = (backend.requestStats().requests[op] ?? 0) - (before.requests[op] ?? 0);
      const later = await a.push([entry('x5')]);

      const ra = await a.pull();
      const rb = await b.pull();
      const all = ['x1', 'x2', 'x3', 'x4', 'x5'];
      assert.deepEqual(ids(b.entries()), all, 'the other device has x3 and x5 (not skipped as batches it held)');
      assert.deepEqual(ids(a.entries()), all, 'the restored device got its batch 2 back');
      assert.deepEqual([...ra.problems, ...rb.problems], [], 'no fork, nothing refused');
      // The cost: one listing before the first send of the process, then nothing more.
      assert.equal(listings, 1, `one ${op} before the first send of this process: ${JSON.stringify(pushed.requests)}`);
      assert.equal(pushed.requests.total, 2, `that listing and the write: ${JSON.stringify(pushed.requests)}`);
      assert.equal(later.requests.total, 1, 'later pushes of the process: the write only');
      await Promise.all([a.close(), b.close(), backend.close()]);
    });

    it('a device restored from a backup older than its collected batches continues after the snapshot that holds them', async () => {
      const url = await target.newBucket('sync-restored-gc');
      const { client: first, secret } = await initDevice(url);
      const b = await joinDevice(url, secret, { cursorPublishIntervalMs: 0 });
      await first.push([entry('x1')]);
      const dir = first.stateDir;
      await first.close();
      const backup = await copyState(dir, 'backup');

      let a = await SyncClient.open({ stateDir: dir });
      await a.push([entry('x2')]);
      await b.pull(); // b has read batches 1 and 2, and says so
      const compacted = await a.compact();
      assert.ok(compacted.compacted && compacted.deletedBatches === 2, `batches 1 and 2 are collected: ${JSON.stringify(compacted)}`);
      await a.close();

      await restore(dir, backup);
      a = await SyncClient.open({ stateDir: dir });
      await a.push([entry('x3')]);
      const rb = await b.pull();
      assert.deepEqual(rb.problems, []);
      assert.deepEqual(ids(rb.entries), ['x3'], 'x3 arrives as a new batch, not under the number of x2');
      assert.deepEqual(ids(a.entries()), ['x1', 'x2', 'x3'], 'x2 came back from the snapshot');
      assert.deepEqual(ids(b.entries()), ['x1', 'x2', 'x3']);
      await Promise.all([a.close(), b.close()]);
    });

    it('two copies of one state directory that both write: every device reports the fork, naming the device, and keeps both batches', async () => {
      const url = await target.newBucket('sync-fork');
      const { client: first, secret } = await initDevice(url);
      const b = await joinDevice(url, secret);
      const c = await joinDevice(url, secret);
      await first.push([entry('a0')]); // batch 1
      const device = first.deviceId;
      const dir = first.stateDir;
      await first.close();
      const copy = await copyState(dir, 'copy');
      const a1 = await SyncClient.open({ stateDir: dir });
      const a2 = await SyncClient.open({ stateDir: copy });
      await a1.push([entry('x1')]); // batch 2
      await a2.push([entry('y1')]); // looks at the log first: batch 3
      assert.deepEqual(ids((await b.pull()).entries), ['a0', 'x1', 'y1'], 'b holds batches 1-3');
      // a1 looked at the log at its first push only (once per process): it numbers x2 as batch 3 too.
      await a1.push([entry('x2')]);

      const everything = ['a0', 'x1', 'x2', 'y1'];
      for (const [name, reader] of [
        ['b (held batch 3 already)', b],
        ['c (sees both copies in one listing)', c],
        ['a1 (wrote x2 as batch 3)', a1],
        ['a2 (wrote y1 as batch 3)', a2],
      ] as const) {
        const r = await reader.pull();
        assert.deepEqual(
          r.problems.map((p) => [p.code, p.deviceId, p.seq]),
          [['Forked', device, 3]],
          `${name}: ${JSON.stringify(r.problems)}`,
        );
        assert.match(r.problems[0]!.message, new RegExp(`device ${device} wrote two different batches numbered 3`));
        assert.deepEqual(ids(reader.entries()), everything, `${name} keeps the entries of both batches`);
        assert.deepEqual((await reader.pull()).problems, [], `${name}: reported once`);
        assert.ok((await reader.status()).problems.some((p) => p.code === 'Forked' && p.deviceId === device), `${name}: status lists the fork`);
      }
      await Promise.all([a1.close(), a2.close(), b.close(), c.close()]);
    });
  });
}
