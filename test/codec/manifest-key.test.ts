import assert from 'node:assert/strict';
import { chmod, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { inspect } from 'node:util';
import { describe, it } from 'node:test';
import { canonicalJson, checkManifestMac, isCodecError, loadManifestKey, MANIFEST_KEY_ENV } from '../../src/codec/index.js';
import { tempDir } from '../support/env.js';

describe('manifest key', () => {
  it('is created 0600 once, then read back as the same key', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'cfg/offsite/manifest.key');
    assert.equal(await loadManifestKey({ file }), undefined);
    const made = await loadManifestKey({ file, create: true });
    assert.ok(made?.created);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal((await stat(path.dirname(file))).mode & 0o777, 0o700);
    const again = await loadManifestKey({ file, create: true });
    assert.equal(again?.created, false);
    assert.equal(again?.key.id, made.key.id);
    assert.equal(again?.key.mac({ a: 1 }), made.key.mac({ a: 1 }));
  });

  it('finds the file named by the environment', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'k');
    const made = await loadManifestKey({ file, create: true });
    const found = await loadManifestKey({ env: { [MANIFEST_KEY_ENV]: file } });
    assert.equal(found?.key.id, made?.key.id);
  });

  it('never shows the secret', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'k');
    const { key } = (await loadManifestKey({ file, create: true }))!;
    const secret = (await readFile(file, 'utf8')).match(/KEY-1:(\S+)/)![1]!;
    for (const shown of [inspect(key), JSON.stringify({ key }), String(key.mac({ x: 1 }))]) assert.ok(!shown.includes(secret), shown);
  });

  it('refuses a key file others can read', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'k');
    await loadManifestKey({ file, create: true });
    await chmod(file, 0o644);
    await assert.rejects(loadManifestKey({ file }), (e) => isCodecError(e, 'InvalidIdentity') && /chmod 600/.test(e.message));
  });

  it('authenticates a record and tells every other case apart', async () => {
    const dir = await tempDir();
    const mine = (await loadManifestKey({ file: path.join(dir, 'a'), create: true }))!.key;
    const theirs = (await loadManifestKey({ file: path.join(dir, 'b'), create: true }))!.key;
    const record = { sha256: 'ab'.repeat(32), size: 10, encryption: { type: 'age' }, files: [{ path: 'x', size: 1 }] };
    const mac = mine.mac(record);
    assert.equal(checkManifestMac(mine, { files: record.files, size: 10, encryption: { type: 'age' }, sha256: record.sha256 }, mac).status, 'authentic');
    assert.equal(checkManifestMac(mine, { ...record, encryption: null }, mac).status, 'forged');
    assert.equal(checkManifestMac(mine, { ...record, size: 11 }, mac).status, 'forged');
    assert.equal(checkManifestMac(mine, record, `${mac.slice(0, -2)}AA`).status, 'forged');
    assert.equal(checkManifestMac(theirs, record, mac).status, 'other-key');
    assert.equal(checkManifestMac(undefined, record, mac).status, 'no-key');
    assert.equal(checkManifestMac(mine, record, undefined).status, 'unsigned');
    assert.equal(checkManifestMac(mine, record, 'garbage').status, 'forged');
  });

  it('canonical JSON sorts keys at every level and drops undefined', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [1, { z: 0, y: null }], c: undefined } }), '{"a":{"d":[1,{"y":null,"z":0}]},"b":1}');
  });
});
