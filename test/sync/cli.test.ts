// `offsite sync …` as a user runs it (the compiled bin/offsite): init prints the secret once,
// join takes it on stdin, push/pull/delete/status, and the exit codes of a wrong secret, a typo
// and a tampered bucket; then the same commands against the real RGW. Each CLI run starts a
// process (~0.7 s of CPU), so setup that is not under test goes through the library.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { openStorage } from '../../src/storage/index.js';
import { SyncClient } from '../../src/sync/index.js';
import { runCli } from '../support/cli.js';
import { historyEntries, ids, initDevice, joinDevice, localTarget, rgwTarget, scratchDir, stateDir } from './helpers.js';

const jsonl = (entries: object[]) => entries.map((e) => JSON.stringify(e)).join('\n') + '\n';

describe('offsite sync through a local directory', () => {
  it('init, join from stdin, push a file and stdin, pull, delete, status', async () => {
    const url = await localTarget.newBucket('sync-cli');
    const envA = { OFFSITE_SYNC_URL: url, OFFSITE_SYNC_DIR: await stateDir() };
    const envB = { OFFSITE_SYNC_DIR: await stateDir() };

    const init = await runCli(['sync', 'init', '--name', 'desk'], { env: envA });
    assert.equal(init.code, 0, init.stderr);
    const secret = /^\s+([0-9A-Z]{4}(?:-[0-9A-Z]{4}){13})$/m.exec(init.stdout)?.[1];
    assert.ok(secret, init.stdout);
    assert.match(init.stdout, /shown once/);

    const join = await runCli(['--json', 'sync', '--storage', url, 'join', '-'], { env: envB, input: `${secret}\n` });
    assert.equal(join.code, 0, join.stderr);
    assert.equal((JSON.parse(join.stdout) as { entries: number }).entries, 0);

    const file = path.join(await scratchDir('cli-'), 'history.jsonl');
    await writeFile(file, jsonl(historyEntries('desk', 12)));
    const push = await runCli(['sync', 'push', file], { env: envA });
    assert.equal(push.code, 0, push.stderr);
    assert.match(push.stderr, /12 added; 1 batch\(es\) sent, 0 pending/);
    // The other device pushes through the library (push from stdin is run in the RGW test).
    const laptop = await SyncClient.open({ stateDir: envB.OFFSITE_SYNC_DIR });
    await laptop.push(historyEntries('laptop', 3));
    await laptop.close();

    const pull = await runCli(['sync', 'pull'], { env: envB });
    assert.equal(pull.code, 0, pull.stderr);
    const pulled = pull.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: string; command: string });
    assert.deepEqual(pulled.map((e) => e.id).sort(), ids(historyEntries('desk', 12)));
    assert.match(pull.stderr, /12 new, 0 deleted; 1 request \(ListObjectsV2 1\)/, 'a small batch comes with the listing: one request');
    const empty = await runCli(['--json', 'sync', 'pull'], { env: envB });
    assert.deepEqual((JSON.parse(empty.stdout) as { requests: unknown }).requests, { total: 1, byOperation: { ListObjectsV2: 1 } });

    const del = await runCli(['sync', 'delete', 'desk-0', 'desk-1'], { env: envB });
    assert.equal(del.code, 0, del.stderr);
    const pullA = JSON.parse((await runCli(['--json', 'sync', 'pull'], { env: envA })).stdout) as { entries: { id: string }[]; deleted: string[] };
    assert.deepEqual(ids(pullA.entries), ['laptop-0', 'laptop-1', 'laptop-2']);
    assert.deepEqual(pullA.deleted.sort(), ['desk-0', 'desk-1']);

    const status = await runCli(['sync', 'status'], { env: envA });
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /entries: 13; pending: 0 entries/);
    assert.match(status.stdout, /devices \(2\):/);
    assert.match(status.stdout, /desk \(this device\)/);
    assert.match(status.stdout, /requests used by this device: \d+ requests/);
  });

  it('exit codes: a typo 2, a wrong secret 4, no device 2, a tampered batch 8', async () => {
    // The account is set up through the library; only what is asserted runs the CLI.
    const url = await localTarget.newBucket('sync-cli-codes');
    const { client: a, secret } = await initDevice(url);
    const b = await joinDevice(url, secret);
    await a.push(historyEntries('a', 2));
    await Promise.all([a.close(), b.close()]);
    const env = { OFFSITE_SYNC_URL: url };

    const compact = secret.replaceAll('-', '');
    const typo = compact.slice(0, 20) + (compact[20] === 'A' ? 'B' : 'A') + compact.slice(21);
    const typoRun = await runCli(['--json', 'sync', 'join', typo], { env: { ...env, OFFSITE_SYNC_DIR: await stateDir() } });
    assert.equal(typoRun.code, 2, typoRun.stderr);
    assert.equal((JSON.parse(typoRun.stdout) as { error: { code: string } }).error.code, 'InvalidSecret');

    const elsewhere = await localTarget.newBucket('sync-cli-else');
    const wrong = await runCli(['sync', '--storage', elsewhere, 'join', secret], { env: { ...env, OFFSITE_SYNC_DIR: await stateDir() } });
    assert.equal(wrong.code, 4, wrong.stderr);
    assert.match(wrong.stderr, /no sync account for this secret/);

    const none = await runCli(['sync', 'pull'], { env: { ...env, OFFSITE_SYNC_DIR: await stateDir() } });
    assert.equal(none.code, 2);
    assert.match(none.stderr, /sync init|sync join/);

    const storage = openStorage(url);
    for await (const item of storage.list({ prefix: `users/${a.userId}/log/` })) {
      if (item.type === 'object') await storage.put(item.key, Buffer.from('not a sealed batch'));
    }
    await storage.close();
    const tampered = await runCli(['sync', 'pull'], { env: { ...env, OFFSITE_SYNC_DIR: b.stateDir } });
    assert.equal(tampered.code, 8, tampered.stderr);
    assert.equal(tampered.stdout, '', 'nothing printed as an entry');
    assert.match(tampered.stderr, /Tampered: .*failed authentication/);
  });
});

describe('offsite sync through Ceph RGW', () => {
  it('init, join, push and pull with the bucket from OFFSITE_SYNC_URL and credentials from the environment', async () => {
    const url = await rgwTarget.newBucket('sync-cli');
    const env = { ...rgwTarget.childEnv(), OFFSITE_SYNC_URL: url };
    const envA = { ...env, OFFSITE_SYNC_DIR: await stateDir() };
    const envB = { ...env, OFFSITE_SYNC_DIR: await stateDir() };
    const init = await runCli(['--json', 'sync', 'init'], { env: envA });
    assert.equal(init.code, 0, init.stderr);
    const { secret } = JSON.parse(init.stdout) as { secret: string };
    assert.equal((await runCli(['sync', 'join', secret], { env: envB })).code, 0);
    const push = await runCli(['sync', 'push'], { env: envA, input: jsonl(historyEntries('a', 5)) });
    assert.equal(push.code, 0, push.stderr);
    const pull = JSON.parse((await runCli(['--json', 'sync', 'pull'], { env: envB })).stdout) as { entries: { id: string }[] };
    assert.deepEqual(ids(pull.entries), ids(historyEntries('a', 5)));
  });
});
