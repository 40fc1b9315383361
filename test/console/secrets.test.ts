// Secrets at rest in the console's database: the sealed format, where a ciphertext may live,
// the key checks at start-up, and rekey (engine level; the CLI's refusal is in
// test/server/console/cli.test.ts).
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import {
  CONSOLE_DB_FILE,
  SECRET_PLACE,
  isConsoleError,
  keyIdOf,
  openConsoleState,
  openSealed,
  readKeyFile,
  rekeyConsole,
  seal,
  sealedKeyId,
  type ConsoleKey,
} from '../../src/console/index.js';
import { tempDir } from '../support/env.js';

const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';

const settings = {
  endpoint: 'http://127.0.0.1:7480',
  bucket: 'console-bucket',
  region: 'us-east-1',
  accessKeyId: 'AKIAEXAMPLE',
  prefix: 'apps',
  pathStyle: true,
  secretAccessKey: SECRET,
};

async function dataDirWithSettings(): Promise<{ dir: string; key: ConsoleKey }> {
  const dir = await tempDir('offsite-console-secrets-');
  const state = await openConsoleState(dir, {});
  state.store.saveSettings(state.key, settings);
  state.store.close();
  return { dir, key: state.key };
}

function rawSecretCt(dir: string): string {
  const db = new Database(path.join(dir, CONSOLE_DB_FILE), { readonly: true });
  try {
    return (db.prepare('SELECT secret_ct FROM settings WHERE id = 1').get() as { secret_ct: string }).secret_ct;
  } finally {
    db.close();
  }
}

function setRawSecretCt(dir: string, sealed: string): void {
  const db = new Database(path.join(dir, CONSOLE_DB_FILE));
  try {
    db.prepare('UPDATE settings SET secret_ct = ? WHERE id = 1').run(sealed);
  } finally {
    db.close();
  }
}

async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    const state = (await p) as { store?: { close(): void } };
    state.store?.close();
  } catch (e) {
    assert.ok(isConsoleError(e), `expected a ConsoleError, got ${String(e)}`);
    return { code: e.code, message: e.message };
  }
  assert.fail('expected the start to be refused');
}

describe('console secret box', () => {
  const key: ConsoleKey = { file: '/nowhere/console.key', key: Buffer.alloc(32, 7), keyId: keyIdOf(Buffer.alloc(32, 7)) };
  const rowA = { table: 'settings', field: 'secret_access_key', rowId: 1 };
  const rowB = { table: 'settings', field: 'secret_access_key', rowId: 2 };
  const otherField = { table: 'settings', field: 'access_key_id', rowId: 1 };

  it('seals in the versioned format with a fresh nonce each time, and opens back', () => {
    const a = seal(key, rowA, SECRET);
    const b = seal(key, rowA, SECRET);
    assert.match(a, /^v1\.[0-9a-f]{8}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/);
    assert.equal(sealedKeyId(a), key.keyId);
    assert.notEqual(a.split('.')[2], b.split('.')[2], 'each seal has its own nonce');
    assert.notEqual(a, b);
    assert.equal(openSealed(key, rowA, a), SECRET);
    assert.equal(openSealed(key, rowA, b), SECRET);
    assert.ok(!a.includes(SECRET) && !Buffer.from(a.split('.')[3]!, 'base64url').includes(Buffer.from(SECRET)));
  });

  it('a ciphertext swapped to another row or another field fails to open', () => {
    const a = seal(key, rowA, 'secret-of-row-1');
    const b = seal(key, rowB, 'secret-of-row-2');
    const f = seal(key, otherField, 'the-access-key');
    assert.throws(() => openSealed(key, rowB, a), (e) => isConsoleError(e, 'Tampered'));
    assert.throws(() => openSealed(key, rowA, b), (e) => isConsoleError(e, 'Tampered'));
    assert.throws(() => openSealed(key, rowA, f), (e) => isConsoleError(e, 'Tampered'));
    assert.throws(() => openSealed(key, otherField, a), (e) => isConsoleError(e, 'Tampered'));
    // A flipped bit anywhere in the body fails too.
    const body = Buffer.from(a.split('.')[3]!, 'base64url');
    body[0]! ^= 1;
    const flipped = [...a.split('.').slice(0, 3), body.toString('base64url')].join('.');
    assert.throws(() => openSealed(key, rowA, flipped), (e) => isConsoleError(e, 'Tampered'));
  });

  it('a value sealed under another key says so (WrongKey), without opening', () => {
    const other: ConsoleKey = { file: '/x', key: Buffer.alloc(32, 9), keyId: keyIdOf(Buffer.alloc(32, 9)) };
    const a = seal(other, rowA, SECRET);
    assert.throws(() => openSealed(key, rowA, a), (e) => isConsoleError(e, 'WrongKey') && !e.message.includes(SECRET));
    // The key id is bound as associated data: relabelling the id does not help.
    const relabelled = a.replace(`.${other.keyId}.`, `.${key.keyId}.`);
    assert.throws(() => openSealed(key, rowA, relabelled), (e) => isConsoleError(e, 'Tampered'));
  });
});

describe('console state: the key at start-up', () => {
  it('creates a 0600 key file (64 hex digits) and a 0600 database in a 0700 directory; the secret is not in the file', async () => {
    const { dir, key } = await dataDirWithSettings();
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    assert.equal((await stat(path.join(dir, 'console.key'))).mode & 0o777, 0o600);
    assert.equal((await stat(path.join(dir, CONSOLE_DB_FILE))).mode & 0o777, 0o600);
    assert.match(await readFile(path.join(dir, 'console.key'), 'utf8'), /^[0-9a-f]{64}\n$/);
    for (const f of [CONSOLE_DB_FILE, `${CONSOLE_DB_FILE}-wal`]) {
      const bytes = await readFile(path.join(dir, f)).catch(() => Buffer.alloc(0));
      assert.ok(!bytes.includes(Buffer.from(SECRET)), `${f} holds the secret`);
    }
    assert.equal(sealedKeyId(rawSecretCt(dir)), key.keyId);
    const state = await openConsoleState(dir, {});
    assert.equal(state.store.settings(state.key)?.secretAccessKey, SECRET);
    state.store.close();
  });

  it('refuses to start with a missing key file, a wrong key file, or a ciphertext moved from another row', async () => {
    const { dir, key } = await dataDirWithSettings();
    const keyFile = path.join(dir, 'console.key');
    const saved = await readFile(keyFile);

    // Another key in the file.
    await writeFile(keyFile, `${'ab'.repeat(32)}\n`);
    const wrong = await refusal(openConsoleState(dir, {}));
    assert.equal(wrong.code, 'WrongKey');
    assert.ok(wrong.message.includes(keyFile), wrong.message);
    assert.ok(!wrong.message.includes('ab'.repeat(32)) && !wrong.message.includes(saved.toString().trim()), 'the message holds no key');

    // The key file gone: refused, never a fresh key over existing ciphertext.
    await writeFile(keyFile, saved);
    const { rm } = await import('node:fs/promises');
    await rm(keyFile);
    const missing = await refusal(openConsoleState(dir, {}));
    assert.equal(missing.code, 'KeyMissing');
    assert.ok(missing.message.includes(keyFile));
    await assert.rejects(stat(keyFile), 'no new key was made');

    // $OFFSITE_CONSOLE_KEY_FILE naming a file that does not exist.
    await writeFile(keyFile, saved);
    const named = await refusal(openConsoleState(dir, { OFFSITE_CONSOLE_KEY_FILE: path.join(dir, 'elsewhere.key') }));
    assert.equal(named.code, 'KeyMissing');
    assert.ok(named.message.includes('elsewhere.key') && named.message.includes('OFFSITE_CONSOLE_KEY_FILE'));

    // A ciphertext of the same key, sealed for row 2, copied into row 1.
    setRawSecretCt(dir, seal(key, { ...SECRET_PLACE, rowId: 2 }, 'another-secret'));
    const moved = await refusal(openConsoleState(dir, {}));
    assert.equal(moved.code, 'Tampered');
  });

  it('a key file named by OFFSITE_CONSOLE_KEY_FILE is used (and not created)', async () => {
    const dir = await tempDir('offsite-console-keyenv-');
    const keyFile = path.join(await tempDir('offsite-console-keyfile-'), 'k');
    await writeFile(keyFile, `${'cd'.repeat(32)}\n`, { mode: 0o600 });
    const state = await openConsoleState(dir, { OFFSITE_CONSOLE_KEY_FILE: keyFile });
    assert.equal(state.key.keyId, keyIdOf(Buffer.from('cd'.repeat(32), 'hex')));
    state.store.saveSettings(state.key, settings);
    state.store.close();
    await assert.rejects(stat(path.join(dir, 'console.key')));
    assert.equal(sealedKeyId(rawSecretCt(dir)), state.key.keyId);
  });

  it('rekey re-encrypts under a new key and replaces the key file; a restart reads the settings back', async () => {
    const { dir, key } = await dataDirWithSettings();
    const before = rawSecretCt(dir);
    const r = await rekeyConsole({ dataDir: dir, env: {} });
    assert.equal(r.oldKeyId, key.keyId);
    assert.notEqual(r.newKeyId, key.keyId);
    assert.equal(r.values, 1);
    const after = rawSecretCt(dir);
    assert.notEqual(after, before);
    assert.equal(sealedKeyId(after), r.newKeyId);
    assert.equal((await readKeyFile(path.join(dir, 'console.key'))).keyId, r.newKeyId);
    assert.equal((await stat(path.join(dir, 'console.key'))).mode & 0o777, 0o600);
    await assert.rejects(stat(path.join(dir, 'console.key.new')));
    const state = await openConsoleState(dir, {});
    assert.equal(state.store.settings(state.key)?.secretAccessKey, SECRET);
    state.store.close();

    // With a given new key file.
    const next = path.join(await tempDir('offsite-console-nextkey-'), 'next.key');
    await writeFile(next, `${'ef'.repeat(32)}\n`);
    const r2 = await rekeyConsole({ dataDir: dir, env: {}, newKeyFile: next });
    assert.equal(r2.newKeyId, keyIdOf(Buffer.from('ef'.repeat(32), 'hex')));
    const again = await openConsoleState(dir, {});
    assert.equal(again.key.keyId, r2.newKeyId);
    assert.equal(again.store.settings(again.key)?.secretAccessKey, SECRET);
    again.store.close();
  });

  it('a rekey interrupted after the database switched (new key still pending) is finished at start-up', async () => {
    const { dir } = await dataDirWithSettings();
    const keyFile = path.join(dir, 'console.key');
    const oldKey = await readFile(keyFile);
    await rekeyConsole({ dataDir: dir, env: {} });
    const newKey = await readFile(keyFile);
    // As if the rename had not happened: the new key only in console.key.new, the old one in place.
    await writeFile(`${keyFile}.new`, newKey, { mode: 0o600 });
    await writeFile(keyFile, oldKey);
    const state = await openConsoleState(dir, {});
    assert.equal(state.store.settings(state.key)?.secretAccessKey, SECRET);
    state.store.close();
    assert.deepEqual(await readFile(keyFile), newKey);
    await assert.rejects(stat(`${keyFile}.new`));
  });
});
