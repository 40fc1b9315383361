// The HTTP sync backend and `offsite serve`: the token on every endpoint, bodies checked, the
// server binding loopback with a 0600 token file, what a client sees when the server or its
// storage is down, what the server stores (ciphertext only), and request counting. Everything
// a client does through HTTP is also run by sync.test.ts, devices.test.ts and bootstrap.test.ts.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, readFile, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { after, describe, it } from 'node:test';
import { isStorageError } from '../../src/storage/index.js';
import { HttpBackend, isSyncError, SyncClient } from '../../src/sync/index.js';
import { rejectsWithCode } from '../support/assert.js';
import { OFFSITE_BIN, runCli } from '../support/cli.js';
import { s3ChildEnv } from '../support/env.js';
import { closeSyncServers, historyEntries, HTTP_TOKEN, ids, initDevice, joinDevice, localTarget, scratchDir, startSyncServer, stateDir } from './helpers.js';

after(closeSyncServers); // the servers of the HTTP target

const isSyncErr = (e: unknown): e is Error & { code: string } => isSyncError(e);
const isStorageErr = (e: unknown): e is Error & { code: string } => isStorageError(e);

const ENDPOINTS = ['register', 'submit', 'query', 'bootstrap', 'add-deletion-request', 'get-deletion-requests', 'uninstall', 'ping', 'devices', 'publish-cursor', 'lease/acquire', 'lease/release', 'snapshot', 'collect-garbage'];
const USER = 'a'.repeat(64);
const DEVICE = 'b'.repeat(32);

/** A local-directory server (fast, and a real Storage) with the test token. */
async function localServer(label: string): Promise<{ url: string; dir: string }> {
  const dir = await localTarget.newBucket(label);
  process.env.OFFSITE_SYNC_TOKEN = HTTP_TOKEN; // as a user sets it for the clients
  return { url: await startSyncServer(dir), dir };
}

async function post(url: string, endpoint: string, body: string | undefined, headers: Record<string, string> = {}): Promise<{ status: number; json: { code?: string; message?: string }; text: string }> {
  const res = await fetch(`${url}/api/v1/${endpoint}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, ...(body === undefined ? {} : { body }) });
  const text = await res.text();
  let json = {};
  try {
    json = JSON.parse(text) as object;
  } catch {
    // not JSON: left empty, the assertions say so
  }
  return { status: res.status, json, text };
}

const auth = (token = HTTP_TOKEN) => ({ authorization: `Bearer ${token}` });

/** A port nothing listens on (taken from the OS, then released). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as { port: number };
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

describe('offsite serve: the HTTP sync backend', () => {
  it('every endpoint answers 401 to no token and to a wrong one; the client’s error is Unauthorized and never shows a token', async () => {
    const { url } = await localServer('http-auth');
    const wrong = `wrong-${HTTP_TOKEN.slice(6)}`;
    for (const endpoint of ENDPOINTS) {
      const body = JSON.stringify({ userId: USER, deviceId: DEVICE });
      for (const headers of [{}, auth(wrong), { authorization: HTTP_TOKEN }, { authorization: `Basic ${HTTP_TOKEN}` }]) {
        const r = await post(url, endpoint, body, headers);
        assert.equal(r.status, 401, `${endpoint} with ${Object.keys(headers).length ? 'a wrong authorization' : 'no token'}: ${r.status} ${r.text}`);
        assert.equal(r.json.code, 'Unauthorized', `${endpoint}: ${r.text}`);
        assert.ok(!r.text.includes(HTTP_TOKEN.slice(6)), `${endpoint}: the answer shows the token`);
      }
    }
    const get = await fetch(`${url}/api/v1/ping`);
    assert.equal(get.status, 401, 'GET ping without a token');
    const unknown = await post(url, 'no-such-endpoint', '{}');
    assert.equal(unknown.status, 401, 'an unknown path without a token says nothing about what exists');
    assert.equal((await fetch(`${url}/api/v1/ping`, { headers: auth() })).status, 200, 'GET ping with the token');
    assert.equal((await post(url, 'ping', '{}', auth())).status, 200, 'POST ping with the token');

    const backend = new HttpBackend(url, { token: wrong });
    const e = await rejectsWithCode(backend.ping(), isSyncErr, 'Unauthorized');
    assert.match(e.message, /refused the token: set OFFSITE_SYNC_TOKEN/, e.message);
    assert.ok(e.message.includes(url), `the message names the server: ${e.message}`);
    assert.ok(!e.message.includes(wrong) && !e.message.includes(HTTP_TOKEN), `the message shows a token: ${e.message}`);
    assert.deepEqual(backend.requestStats().requests, { ping: 1 }, 'a 401 is not retried');

    // A client with no token at all fails before any request, and leaves no state behind.
    const saved = process.env.OFFSITE_SYNC_TOKEN;
    delete process.env.OFFSITE_SYNC_TOKEN;
    try {
      const dir = await stateDir();
      const none = await rejectsWithCode(SyncClient.init({ stateDir: dir, storageUrl: url }), isSyncErr, 'Unauthorized');
      assert.match(none.message, /OFFSITE_SYNC_TOKEN/, none.message);
      assert.ok(!existsSync(dir), 'no state directory is left by a client without a token');
      // The CLI: exit 4 (credentials), and the token given is not printed.
      const cli = await runCli(['--json', 'sync', '--storage', url, 'init'], { env: { OFFSITE_SYNC_DIR: await stateDir(), OFFSITE_SYNC_TOKEN: wrong } });
      assert.equal(cli.code, 4, `exit code ${cli.code}: ${cli.stderr}`);
      assert.equal((JSON.parse(cli.stdout) as { error: { code: string } }).error.code, 'Unauthorized', cli.stdout);
      assert.ok(!cli.stdout.includes(wrong) && !cli.stderr.includes(wrong), `the CLI printed the token: ${cli.stderr}`);
    } finally {
      if (saved !== undefined) process.env.OFFSITE_SYNC_TOKEN = saved;
    }
  });

  it('a malformed body is a 400 that says what is wrong; the backend’s own errors keep their codes', async () => {
    const { url } = await localServer('http-bad');
    const cases: [string, string, RegExp][] = [
      ['query', JSON.stringify({ userId: USER, deviceId: DEVICE }), /required property 'known'/],
      ['query', JSON.stringify({ userId: USER, deviceId: DEVICE, known: {}, extra: 1 }), /additional properties/],
      ['submit', JSON.stringify({ userId: USER, deviceId: DEVICE, batches: [{ deviceId: DEVICE, seq: '1', time: 1, kind: 'entries', data: '' }] }), /must be number/],
      ['lease/acquire', JSON.stringify({ userId: USER, deviceId: DEVICE, name: '../../x', ttlMs: 1, now: 1 }), /allowed values/],
      ['bootstrap', '{"userId": ', /JSON/],
      ['devices', '[]', /must be object/],
    ];
    for (const [endpoint, body, message] of cases) {
      const r = await post(url, endpoint, body, auth());
      assert.equal(r.status, 400, `${endpoint} ${body}: ${r.status} ${r.text}`);
      assert.equal(r.json.code, 'BadRequest', `${endpoint}: ${r.text}`);
      assert.match(r.json.message ?? '', message, `${endpoint}: ${r.text}`);
    }
    const xml = await fetch(`${url}/api/v1/query`, { method: 'POST', headers: { ...auth(), 'content-type': 'application/xml' }, body: '<query/>' });
    assert.equal(xml.status, 415, `a body that is not JSON: ${xml.status}`);
    const text = await post(url, 'query', undefined, { ...auth(), 'content-type': 'text/plain' });
    assert.equal(text.status, 400, `a text body: ${text.status} ${text.text}`);

    // Checked by the backend, as against a bucket: a bad id is InvalidEntry, a second init Conflict.
    const backend = new HttpBackend(url, { token: HTTP_TOKEN });
    const bad = await rejectsWithCode(backend.queryEntries({ userId: 'NOT-AN-ID', deviceId: DEVICE, known: {} }), isSyncErr, 'InvalidEntry');
    assert.match(bad.message, /user id is 8-64 characters/, bad.message);
    const reg = { userId: USER, deviceId: DEVICE, device: Buffer.from('sealed').toString('base64'), keyCheck: Buffer.from('check').toString('base64') };
    assert.equal((await backend.registerDevice(reg)).alreadyRegistered, false, 'the first registration');
    // The same bytes again are a retried request (success); another account's key check is a Conflict.
    assert.equal((await backend.registerDevice(reg)).alreadyRegistered, true, 'a retry of the same registration succeeds');
    const other = { ...reg, keyCheck: Buffer.from('another check').toString('base64') };
    const conflict = await rejectsWithCode(backend.registerDevice(other), isSyncErr, 'Conflict');
    assert.match(conflict.message, /already exists/, conflict.message);
    assert.equal((await post(url, 'register', JSON.stringify(other), auth())).status, 409, 'a Conflict is HTTP 409');
    await backend.close();
  });

  it('`offsite serve` binds 127.0.0.1, creates a 0600 token file and prints its path (not the token), serves a sync, stops on SIGTERM', async () => {
    const dir = await scratchDir('serve-');
    const storage = path.join(dir, 'bucket');
    const tokenFile = path.join(dir, 'config', 'offsite', 'serve-token');
    const env = { ...process.env, OFFSITE_SERVE_TOKEN: '', OFFSITE_SERVE_STORAGE: storage };
    const child = spawn(process.execPath, [OFFSITE_BIN, 'serve', '--port', '0', '--token-file', tokenFile], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const line = await Promise.race([
        new Promise<string>((resolve) => createInterface({ input: child.stdout }).once('line', resolve)),
        exited.then((code) => assert.fail(`offsite serve exited with ${code}: ${stderr}`)),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no address printed in 20 s: ${stderr}`)), 20_000)),
      ]);
      const m = /^listening on (http:\/\/127\.0\.0\.1:(\d+)) \(storage (.+)\)$/.exec(line);
      assert.ok(m, `the first line gives the loopback address: ${line}`);
      const url = m[1]!;
      assert.equal(m[3], pathToFileURL(storage).href, 'and the storage');
      const token = (await readFile(tokenFile, 'utf8')).trim();
      assert.match(token, /^[A-Za-z0-9_-]{43}$/, 'the token is 32 random bytes, base64url');
      assert.equal((await stat(tokenFile)).mode & 0o777, 0o600, 'the token file is 0600');
      assert.equal((await stat(path.dirname(tokenFile))).mode & 0o777, 0o700, 'its directory is 0700');
      // The note follows the address line on the other stream: give it a moment to arrive.
      for (let i = 0; i < 100 && !stderr.includes(tokenFile); i++) await new Promise((resolve) => setTimeout(resolve, 50));
      assert.ok(stderr.includes(tokenFile), `the path of the token file is printed: ${stderr}`);
      assert.ok(!stderr.includes(token) && !line.includes(token), 'the token is not');

      assert.equal((await post(url, 'ping', '{}', auth(token))).status, 200, 'ping with the token of the file');
      assert.equal((await post(url, 'ping', '{}', auth())).status, 401, 'another token is refused');
      const { client: a, secret } = await initDevice(url, { token });
      const b = await joinDevice(url, secret, { token });
      await a.push(historyEntries('served', 4));
      assert.deepEqual(ids((await b.pull()).entries), ids(historyEntries('served', 4)), 'a sync through the served server');
      assert.equal((await b.status()).backend, 'http', 'status names the backend');
      await Promise.all([a.close(), b.close()]);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, `SIGTERM ends it with 0: ${stderr}`);

    // The file exists now: used as is. A file others can read is refused (exit 4).
    await chmod(tokenFile, 0o644);
    const refused = await runCli(['serve', '--storage', storage, '--port', '0', '--token-file', tokenFile], { env: { OFFSITE_SERVE_TOKEN: '' } });
    assert.equal(refused.code, 4, `exit ${refused.code}: ${refused.stderr}`);
    assert.match(refused.stderr, /readable by other users .*chmod 600/, refused.stderr);
    const help = await runCli(['serve', '--help']);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /--token-file/, 'help lists the options');
    assert.match(help.stdout, /offsite serve --storage/, 'and gives an example');
  });

  it('a server that is down, or whose storage is down, gives the client a clear error naming the server, after bounded retries', async () => {
    // No server at all: ServerUnreachable after 4 attempts.
    const nowhere = `http://127.0.0.1:${await closedPort()}`;
    const down = new HttpBackend(nowhere, { token: HTTP_TOKEN, retryDelayMs: 20 });
    const e = await rejectsWithCode(down.ping(), isSyncErr, 'ServerUnreachable');
    assert.match(e.message, /cannot reach the sync server at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED, 4 attempts\)/, e.message);
    assert.equal(down.requestStats().requests.ping, 4, 'each attempt is counted');

    // A server whose S3 endpoint does not answer: its storage error, retried, then Transient.
    Object.assign(process.env, s3ChildEnv());
    const deadStorage = `s3://no-bucket-here?endpoint=${encodeURIComponent(`http://127.0.0.1:${await closedPort()}`)}&path_style=true&region=us-east-1&max_attempts=1`;
    const url = await startSyncServer(deadStorage);
    const backend = new HttpBackend(url, { token: HTTP_TOKEN, retryDelayMs: 20 });
    const s = await rejectsWithCode(backend.ping(), isStorageErr, 'Transient');
    assert.ok(s.message.startsWith(`the sync server at ${url} could not use its storage (4 attempts)`), s.message);
    assert.ok(!s.message.includes(HTTP_TOKEN), 'no token in the message');
    assert.equal(backend.requestStats().requests.ping, 4, 'a 503 is retried');
    const r = await post(url, 'ping', '{}', auth());
    assert.equal(r.status, 503, `the server answers 503: ${r.text}`);
    assert.equal(r.json.code, 'Transient', r.text);

    // The CLI maps both to exit 7 (unreachable after retries).
    const cli = await runCli(['sync', '--storage', nowhere, 'init'], { env: { OFFSITE_SYNC_DIR: await stateDir(), OFFSITE_SYNC_TOKEN: HTTP_TOKEN } });
    assert.equal(cli.code, 7, `exit ${cli.code}: ${cli.stderr}`);
    assert.match(cli.stderr, /cannot reach the sync server at http:\/\/127\.0\.0\.1/, cli.stderr);

    // An abort signal stops a call that the server never answers.
    const silent: Server = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const hung = new HttpBackend(`http://127.0.0.1:${(silent.address() as { port: number }).port}`, { token: HTTP_TOKEN });
      const started = Date.now();
      await assert.rejects(hung.ping({ signal: AbortSignal.timeout(200) }), (err: Error) => err.name === 'TimeoutError' || err.name === 'AbortError', 'the call is aborted');
      assert.ok(Date.now() - started < 5000, `aborted after ${Date.now() - started} ms`);
    } finally {
      silent.close();
    }
  });

  it('the server’s storage holds no plaintext of what was pushed, and the backend counts its requests and bytes', async () => {
    const { url, dir } = await localServer('http-opaque');
    const backend = new HttpBackend(url, { token: HTTP_TOKEN });
    const { client: a, secret } = await initDevice(url);
    const b = (await SyncClient.join(secret, { stateDir: await stateDir(), storageUrl: url, backend })).client;
    const needle = 'rsync --password-file /home/quagga/secret-vault';
    await a.push([{ id: 'vault-entry', command: needle, cwd: '/home/quagga' }, ...historyEntries('quagga', 20)]);
    assert.deepEqual(ids((await b.pull()).entries), ids([{ id: 'vault-entry' }, ...historyEntries('quagga', 20)]), 'b received them');
    const objects = await localTarget.allObjects(dir);
    assert.ok(objects.length >= 4, `${objects.length} objects scanned`);
    for (const o of objects) {
      for (const s of [needle, 'quagga', 'secret-vault']) {
        assert.ok(!o.name.includes(s) && !o.body.includes(s), `${o.name} contains "${s}"`);
      }
    }

    const before = backend.requestStats();
    assert.ok(before.requests.bootstrap === 1 && before.requests.register === 1 && (before.requests.query ?? 0) >= 2, `join and pull: ${JSON.stringify(before.requests)}`);
    assert.equal((await backend.ping()).location, url, 'ping names the server');
    const afterPing = backend.requestStats();
    const pingAnswer = await (await fetch(`${url}/api/v1/ping`, { method: 'POST', headers: { ...auth(), 'content-type': 'application/json' }, body: '{}' })).text();
    assert.deepEqual(afterPing.requests, { ...before.requests, ping: 1 }, 'one ping more');
    assert.equal(afterPing.bytesUp - before.bytesUp, 2, 'the ping sent "{}"');
    assert.equal(afterPing.bytesDown - before.bytesDown, Buffer.byteLength(pingAnswer), `and received its answer: ${pingAnswer}`);
    const empty = await b.pull();
    const after = backend.requestStats();
    assert.deepEqual(empty.requests, { total: 1, byOperation: { query: 1 } }, 'an empty pull is one query');
    assert.equal(after.totalRequests - afterPing.totalRequests, 1, 'one request');
    assert.ok(after.bytesUp > afterPing.bytesUp && after.bytesDown > afterPing.bytesDown, `bytes counted: ${JSON.stringify(after)}`);
    await Promise.all([a.close(), b.close(), backend.close()]);
  });

  it('a sync server URL with credentials or a query is refused before any request', async () => {
    for (const bad of ['http://user:pw@127.0.0.1:1', 'http://127.0.0.1:1/?token=abc', 'ftp://127.0.0.1/']) {
      assert.throws(() => new HttpBackend(bad, { token: HTTP_TOKEN }), (e: Error & { code?: string }) => e.code === 'InvalidUrl' && !e.message.includes('pw') && !e.message.includes('abc'), `${bad} is refused`);
    }
  });
});
