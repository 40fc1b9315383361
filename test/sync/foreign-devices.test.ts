// A made-up device in an account's log, written by someone without the secret (a holder of
// the bucket's credentials or of the server's token): its batches never authenticate. Every
// pull used to report it (exit 8) forever, compaction included, and its registration held back
// garbage collection; now it is reported once as ForeignDevice and ignored, holds nothing back,
// and drop-device removes its registration. Run against a local directory, Ceph RGW and a
// server over RGW.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { runCli } from '../support/cli.js';
import { closeSyncServers, historyEntries, ids, initDevice, joinDevice, TARGETS } from './helpers.js';

after(closeSyncServers); // the servers of the HTTP target

const sha = (entries: readonly object[]) =>
  createHash('sha256')
    .update(JSON.stringify([...entries].map((e) => JSON.stringify(e)).sort()))
    .digest('hex');

/** A sealed-looking batch nobody of the account wrote (random bytes: it cannot authenticate). */
function junkBatch(deviceId: string, seq: number, bytes = 300) {
  return { deviceId, seq, time: Date.now(), kind: 'entries' as const, data: randomBytes(bytes).toString('base64') };
}

for (const target of TARGETS) {
  describe(`a made-up device through ${target.name}`, () => {
    it('junk batches and a junk device, written without the secret, are reported once and skipped; compaction and drop-device stop them blocking', async () => {
      const url = await target.newBucket('foreign-device');
      const { client: a1, secret } = await initDevice(url, { compaction: { auto: false } });
      // a2 publishes its read position after every pull that applied something, so collection sees it.
      const a2 = await joinDevice(url, secret, { compaction: { auto: false }, cursorPublishIntervalMs: 0 });
      await a1.push(historyEntries('desk', 10));
      await a2.pull();
      // Someone with the bucket's credentials or the server's token, but not the secret: a batch
      // and a device record of a made-up device.
      const junkDevice = 'f'.repeat(32);
      const attacker = target.openBackend(url);
      await attacker.submitEntries({ userId: a1.userId, deviceId: junkDevice, batches: [junkBatch(junkDevice, 1)] });
      await attacker.registerDevice({ userId: a1.userId, deviceId: junkDevice, device: randomBytes(80).toString('base64') });
      await a1.push(historyEntries('desk', 5, 10));

      const first = await a2.pull();
      assert.deepEqual(ids(first.entries), ids(historyEntries('desk', 5, 10)), 'the good entries arrive');
      assert.deepEqual(
        first.problems.map((p) => [p.code, p.deviceId]),
        [['ForeignDevice', junkDevice]],
        `the junk device is reported: ${JSON.stringify(first.problems)}`,
      );
      assert.match(first.problems[0]!.message, /not a device of this account.*ignored from now on/, first.problems[0]!.message);
      // Every later pull is clean (the CLI exits 0, not 8), also after more junk from that device.
      await attacker.submitEntries({ userId: a1.userId, deviceId: junkDevice, batches: [junkBatch(junkDevice, 2, 900)] });
      await a1.push(historyEntries('desk', 5, 15));
      const second = await a2.pull();
      assert.deepEqual(second.problems, [], `no problem on the next pull: ${JSON.stringify(second.problems)}`);
      assert.deepEqual(ids(second.entries), ids(historyEntries('desk', 5, 15)));
      const statusA2 = await a2.status();
      assert.deepEqual(statusA2.problems, [], 'status shows no stuck device');
      assert.deepEqual(statusA2.ignoredDevices, [{ deviceId: junkDevice, reason: 'foreign' }], 'and names the ignored one');
      await a2.close();
      const cli = await runCli(['sync', '--dir', a2.stateDir, 'pull'], { env: target.childEnv() });
      assert.equal(cli.code, 0, `a later CLI pull exits 0: ${cli.stderr}`);

      // Compaction is not held back by the junk device record (it never published a cursor).
      const compacted = await a1.compact();
      assert.equal(compacted.compacted, true, JSON.stringify(compacted));
      assert.ok(compacted.compacted && compacted.deletedBatches >= 3, `batches every real device has read are collected: ${JSON.stringify(compacted)}`);
      assert.ok(compacted.compacted && compacted.foreignDevices.includes(junkDevice), `and the junk device is named: ${JSON.stringify(compacted)}`);
      assert.deepEqual((await a1.status()).ignoredDevices, [{ deviceId: junkDevice, reason: 'foreign' }], 'a1 found it too (in the pull compaction starts with)');
      // drop-device removes its record (and cursor) from the backend, for every device.
      const drop = await runCli(['--json', 'sync', '--dir', a1.stateDir, 'drop-device', junkDevice], { env: target.childEnv() });
      assert.equal(drop.code, 0, drop.stderr);
      assert.deepEqual(JSON.parse(drop.stdout), { deviceId: junkDevice, removedFromBackend: true, ignored: true }, drop.stdout);
      const listing = await attacker.listDevices({ userId: a1.userId });
      assert.deepEqual(listing.devices.map((d) => d.deviceId).sort(), [a1.deviceId, a2.deviceId].sort(), 'only the two real devices are left');
      const dropSelf = await runCli(['sync', '--dir', a1.stateDir, 'drop-device', a1.deviceId], { env: target.childEnv() });
      assert.equal(dropSelf.code, 2, `dropping this device itself is refused: ${dropSelf.stderr}`);

      // A device joining now has everything, and its pulls are clean after the first report.
      const late = await joinDevice(url, secret);
      assert.equal(sha(late.entries()), sha(historyEntries('desk', 20)), 'the joining device holds the 20 entries');
      const lateAgain = await late.pull();
      assert.deepEqual(lateAgain.problems, [], JSON.stringify(lateAgain.problems));
      await Promise.all([a1.close(), late.close(), attacker.close()]);
    });
  });
}
