// A shared `offsite serve` with several accounts: every account token reaches only the account
// it created (a second account's token gets 403 on every endpoint, and A's data stays byte for
// byte as it was), tokens are minted and re-issued from the token file by `offsite serve
// token`, and a new token file revokes them. What a holder of the account's own token can still
// do is tested in gc-bounds.test.ts and foreign-devices.test.ts.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { createAccountToken, HttpBackend, isSyncError, SyncClient } from '../../src/sync/index.js';
import { rejectsWithCode } from '../support/assert.js';
import { runCli } from '../support/cli.js';
import { accountObjects, closeSyncServers, entriesDigest, historyEntries, HTTP_TOKEN, httpTarget, ids, initDevice, joinDevice, localTarget, rgwTarget, scratchDir, startSyncServer, stateDir } from './helpers.js';
import { startServeProcess, type ServeProcess } from './serve-process.js';

after(closeSyncServers);
// The clients' token where a test gives none (as a user sets it); the CLI runs inherit it.
process.env.OFFSITE_SYNC_TOKEN = HTTP_TOKEN;

const isSyncErr = (e: unknown): e is Error & { code: string } => isSyncError(e);


async function post(url: string, endpoint: string, token: string, body: object): Promise<{ status: number; code?: string; text: string }> {
  const res = await fetch(`${url}/api/v1/${endpoint}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
  const text = await res.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { code?: string }).code;
  } catch {
    // not JSON
  }
  return { status: res.status, code, text };
}

/** A sealed-looking batch nobody of the account wrote (random bytes: it cannot authenticate). */
function junkBatch(deviceId: string, seq: number, bytes = 300) {
  return { deviceId, seq, time: Date.now(), kind: 'entries' as const, data: randomBytes(bytes).toString('base64') };
}

describe('a shared offsite serve: accounts apart by their tokens', () => {
  it('account B’s token gets 403 on every endpoint for account A (and A’s for B); A’s data and devices are untouched', async () => {
    const url = await startSyncServer(await rgwTarget.newBucket('acct-apart'));
    const tokenA = createAccountToken(HTTP_TOKEN).token;
    const tokenB = createAccountToken(HTTP_TOKEN).token;
    const { client: a1, secret } = await initDevice(url, { token: tokenA });
    const a2 = await joinDevice(url, secret, { token: tokenA });
    await a1.push(historyEntries('alice', 30));
    assert.deepEqual(ids((await a2.pull()).entries), ids(historyEntries('alice', 30)));
    const { client: b1 } = await initDevice(url, { token: tokenB });
    await b1.push(historyEntries('bob', 3));
    const raw = httpTarget.openRaw(url);
    const before = await accountObjects(raw, a1.userId);

    const A = a1.userId;
    const device = a1.deviceId;
    const sealed = randomBytes(64).toString('base64');
    const attacks: [string, object][] = [
      ['register', { userId: A, deviceId: 'c'.repeat(32), device: sealed }],
      ['submit', { userId: A, deviceId: 'c'.repeat(32), batches: [junkBatch('c'.repeat(32), 1)] }],
      ['query', { userId: A, deviceId: device, cursor: null, known: {} }],
      ['bootstrap', { userId: A, deviceId: device, keyCheck: true }],
      ['add-deletion-request', { userId: A, deviceId: device, batch: { ...junkBatch(device, 99), kind: 'deletions' } }],
      ['get-deletion-requests', { userId: A, deviceId: device }],
      ['uninstall', { userId: A, deviceId: device }],
      ['devices', { userId: A }],
      ['publish-cursor', { userId: A, deviceId: device, cursor: sealed }],
      ['lease/acquire', { userId: A, deviceId: device, name: 'compaction', ttlMs: 60_000, now: Date.now() }],
      ['lease/release', { userId: A, deviceId: device, name: 'compaction', token: 'x' }],
      ['snapshot', { userId: A, deviceId: device, generation: 7, data: sealed, covers: { [device]: 1 } }],
      ['collect-garbage', { userId: A, deviceId: device, through: { [device]: 1_000_000 }, keepSnapshotsFrom: 1_000_000 }],
    ];
    for (const [endpoint, body] of attacks) {
      const r = await post(url, endpoint, tokenB, body);
      assert.equal(r.status, 403, `B's token on A's ${endpoint}: ${r.status} ${r.text}`);
      assert.equal(r.code, 'Forbidden', `${endpoint}: ${r.text}`);
      assert.ok(!r.text.includes(tokenB) && !r.text.includes(tokenA), `${endpoint}: the answer shows a token`);
    }
    // And the other way round; and through the client library: a SyncError Forbidden.
    assert.equal((await post(url, 'query', tokenA, { userId: b1.userId, deviceId: b1.deviceId, known: {} })).status, 403, 'A’s token on B’s query');
    const asB = new HttpBackend(url, { token: tokenB });
    const e = await rejectsWithCode(asB.collectGarbage({ userId: A, deviceId: device, through: { [device]: 1_000_000 }, keepSnapshotsFrom: 1_000_000 }), isSyncErr, 'Forbidden');
    assert.match(e.message, /not the account of this token/, e.message);
    // B's token belongs to B's account: it cannot start a second one.
    await rejectsWithCode(SyncClient.init({ stateDir: await stateDir(), storageUrl: url, token: tokenB }), isSyncErr, 'Forbidden');
    // Nor can it join A's account with A's secret (the token, not the secret, opens the door).
    await rejectsWithCode(SyncClient.join(secret, { stateDir: await stateDir(), storageUrl: url, token: tokenB }), isSyncErr, 'Forbidden');
    // A token not minted from this server's token is no token at all.
    const forged = createAccountToken(randomBytes(32).toString('base64url')).token;
    assert.equal((await post(url, 'ping', forged, {})).status, 401, 'an account token of another server');
    const tampered = `${tokenA.slice(0, -2)}${tokenA.endsWith('AA') ? 'BB' : 'AA'}`;
    assert.equal((await post(url, 'ping', tampered, {})).status, 401, 'an account token with another MAC');

    assert.deepEqual(await accountObjects(raw, A), before, 'every object of A is as it was, byte for byte');
    await a1.push(historyEntries('alice', 5, 30));
    const pulled = await a2.pull();
    assert.deepEqual(pulled.problems, [], 'A’s device sees no problem');
    assert.equal(entriesDigest(a2.entries()), entriesDigest(historyEntries('alice', 35)), 'A’s device holds exactly A’s 35 entries');
    const late = await joinDevice(url, secret, { token: tokenA });
    assert.equal(entriesDigest(late.entries()), entriesDigest(historyEntries('alice', 35)), 'a device joining A later gets all 35');
    assert.notEqual(tokenA, tokenB);
    // The server's own token still reaches every account (the single-user default).
    assert.equal((await post(url, 'devices', HTTP_TOKEN, { userId: A })).status, 200, 'the server token on A');
    await Promise.all([a1.close(), a2.close(), b1.close(), late.close(), asB.close(), raw.close()]);
  });

  it('an account moved onto the server by `sync migrate` with an account token is bound to that token', async () => {
    const url = await startSyncServer(await rgwTarget.newBucket('acct-migrate'));
    const { client: a, secret } = await initDevice(await localTarget.newBucket('acct-migrate-from'));
    await a.push(historyEntries('moved', 8));
    const token = createAccountToken(HTTP_TOKEN).token;
    const moved = await a.migrate(url, { token });
    assert.equal(moved.copy.targetHadAccount, false, JSON.stringify(moved.copy));
    assert.equal(entriesDigest(a.entries()), entriesDigest(historyEntries('moved', 8)));
    const b = await joinDevice(url, secret, { token });
    assert.equal(entriesDigest(b.entries()), entriesDigest(historyEntries('moved', 8)), 'a device joining on the server with the same token has the 8 entries');
    const other = createAccountToken(HTTP_TOKEN).token;
    assert.equal((await post(url, 'query', other, { userId: a.userId, deviceId: a.deviceId, known: {} })).status, 403, 'another account token is refused');
    await Promise.all([a.close(), b.close()]);
  });

  it('`offsite serve token` mints account tokens from the token file; a new token file revokes them, `--id` re-issues one for its account', async () => {
    const dir = await scratchDir('serve-token-');
    const tokenFile = path.join(dir, 'serve-token');
    const storage = path.join(dir, 'bucket');
    const env = { OFFSITE_SERVE_TOKEN: '' };
    const servers: ServeProcess[] = [];
    try {
      servers.push(await startServeProcess(['--storage', storage, '--token-file', tokenFile], env));
      const minted = await runCli(['--json', 'serve', 'token', '--token-file', tokenFile], { env });
      assert.equal(minted.code, 0, minted.stderr);
      const { token, id } = JSON.parse(minted.stdout) as { token: string; id: string };
      assert.match(token, /^acct\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{43}$/, token);
      const plain = await runCli(['serve', 'token', '--token-file', tokenFile], { env });
      assert.match(plain.stdout.trim(), /^acct\./, 'without --json: the token alone on stdout');
      assert.ok(!plain.stderr.includes(plain.stdout.trim()), 'and not on stderr');

      const { client: a, secret } = await initDevice(servers[0]!.url, { token });
      await a.push(historyEntries('minted', 6));
      await a.close();
      // A new token file (rotation): every account token minted from the old one stops working.
      await servers.pop()!.stop();
      await rm(tokenFile);
      servers.push(await startServeProcess(['--storage', storage, '--token-file', tokenFile], env));
      const url = servers[0]!.url;
      assert.equal((await post(url, 'ping', token, {})).status, 401, 'the old account token is refused');
      const reissued = await runCli(['--json', 'serve', 'token', '--token-file', tokenFile, '--id', id], { env });
      assert.equal(reissued.code, 0, reissued.stderr);
      const again = JSON.parse(reissued.stdout) as { token: string; id: string };
      assert.equal(again.id, id);
      assert.notEqual(again.token, token);
      const b = await joinDevice(url, secret, { token: again.token });
      assert.equal(entriesDigest(b.entries()), entriesDigest(historyEntries('minted', 6)), 'the re-issued token reaches its account');
      await b.close();
      const other = JSON.parse((await runCli(['--json', 'serve', 'token', '--token-file', tokenFile], { env })).stdout) as { token: string };
      await rejectsWithCode(SyncClient.join(secret, { stateDir: await stateDir(), storageUrl: url, token: other.token }), isSyncErr, 'Forbidden');
      const bad = await runCli(['serve', 'token', '--token-file', tokenFile, '--id', 'no'], { env });
      assert.equal(bad.code, 2, bad.stderr);
    } finally {
      await Promise.all(servers.map((s) => s.stop()));
    }
  });
});

