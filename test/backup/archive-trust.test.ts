// Attacks by whoever can write to the bucket (leaked S3 credentials, a compromised provider),
// mounted on the test RGW: an archive replaced and its manifest rewritten to match, a manifest
// rewritten with the archive intact, forged and unsigned manifests read by `catalog rebuild` on
// a machine without the catalog. What was uploaded comes from the local catalog; a manifest
// from the bucket counts only when the user's manifest key authenticates it.
import assert from 'node:assert/strict';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { canonicalJson, generateAgeIdentity, loadManifestKey } from '../../src/codec/index.js';
import { s3ChildEnv, tempDir } from '../support/env.js';
import { archiveEnv, attackerTar, getJson, jsonEvents, listTree, putJson, replaceWithPlainTar } from './archive-env.js';
import { makeSessions, treeDigest } from './fixtures.js';

Object.assign(process.env, s3ChildEnv());
// The user's manifest key, shared by "this machine" and "the fresh machine" of these tests.
const KEY_FILE = path.join(await tempDir('offsite-manifest-key-'), 'manifest.key');
process.env.OFFSITE_MANIFEST_KEY_FILE = KEY_FILE;
const PASSPHRASE = 'correct horse battery staple';

/** A session an attacker wants restored: an executable script and some data. */
async function hostileSession(dir: string, id: string): Promise<Awaited<ReturnType<typeof attackerTar>>> {
  const evil = path.join(dir, `evil-${id}`);
  await mkdir(path.join(evil, id), { recursive: true });
  await writeFile(path.join(evil, id, 'run.sh'), '#!/bin/sh\necho pwned > /tmp/pwned\n', { mode: 0o755 });
  await writeFile(path.join(evil, id, 'data.txt'), 'not your data\n');
  return attackerTar(evil, id);
}

describe('archive: the bucket cannot make Offsite restore what it did not upload', () => {
  it('the issue: an encrypted gzipped archive replaced by a plain tar with a rewritten manifest is refused (exit 8, nothing written); verify --full fails', async () => {
    const env = await archiveEnv('attack', '', { OFFSITE_ARCHIVE_PASSPHRASE: PASSPHRASE, OFFSITE_ARCHIVE_COMPRESS: 'gzip' });
    await makeSessions(env.root, [{ year: 2022, id: 'S1', bigBytes: 300_000 }]);
    const up = await env.cli(['upload']);
    assert.equal(up.code, 0, up.stdout + up.stderr);
    const key = 'backups/raw/2022/S1.tar.gz.age';
    await replaceWithPlainTar(env.storage, key, await hostileSession(env.dir, 'S1'));

    const target = path.join(env.dir, 'restored');
    const r = await env.cli(['restore', '--session-id', 'S1', '--to', target]);
    assert.equal(r.code, 8, r.stdout + r.stderr);
    assert.doesNotMatch(r.stdout, /every file checked/);
    assert.match(r.stderr, /catalog/);
    assert.deepEqual(await listTree(target), [], 'nothing was written into the target');

    const full = await env.cli(['verify', '--full']);
    assert.equal(full.code, 8, full.stdout + full.stderr);
    assert.match(full.stdout, /FAIL S1 .*catalog/);
  });

  it('a manifest rewritten with the archive intact is reported and not used: restore gives back the original files, verify fails', async () => {
    const id = await generateAgeIdentity();
    const identityFile = path.join(await tempDir(), 'identity.txt');
    await writeFile(identityFile, `${id.identity}\n`);
    const env = await archiveEnv('rewrite', `[encryption]\nrecipients = ["${id.recipient}"]\nidentity_file = "${identityFile}"\n`);
    await makeSessions(env.root, [{ year: 2023, id: 'M1' }]);
    assert.equal((await env.cli(['upload'])).code, 0);
    const manifestKey = 'backups/raw/2023/M1.tar.age.manifest.json';
    // Claims the archive is a plain tar (a downgrade) and changes a file's hash.
    const m = await getJson(env.storage, manifestKey);
    const files = (m.files as Array<{ path: string; sha256?: string }>).map((f) => (f.path.endsWith('session.log') ? { ...f, sha256: '0'.repeat(64) } : f));
    await putJson(env.storage, manifestKey, { ...m, encryption: null, compression: 'none', files });

    const target = path.join(env.dir, 'restored');
    const r = await env.cli(['restore', '--session-id', 'M1', '--to', target]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(await treeDigest(path.join(target, 'M1')), await treeDigest(path.join(env.root, '2023', 'M1')));
    assert.match(r.stderr, /manifest .*altered.*not used/);
    assert.match(r.stdout, /SHA-256 recorded in the catalog/);

    const full = await env.cli(['verify', '--full']);
    assert.equal(full.code, 8, full.stdout + full.stderr);
    assert.match(full.stdout, /FAIL M1 .*manifest .*altered/);
    const cheap = await env.cli(['verify']);
    assert.equal(cheap.code, 8, cheap.stdout + cheap.stderr);
  });

  it('after catalog rebuild on a fresh machine: a forged manifest (MAC mismatch) is refused with exit 8, one signed by another key with exit 2, nothing written', async () => {
    const env = await archiveEnv('forged');
    await makeSessions(env.root, [
      { year: 2021, id: 'F1' },
      { year: 2021, id: 'F2' },
      { year: 2021, id: 'F3' },
    ]);
    assert.equal((await env.cli(['upload'])).code, 0);
    // F1: replaced, manifest rewritten, the user's MAC left in place (the attacker cannot redo it).
    await replaceWithPlainTar(env.storage, 'backups/raw/2021/F1.tar', await hostileSession(env.dir, 'F1'));
    // F2: replaced and signed with the attacker's own key.
    await replaceWithPlainTar(env.storage, 'backups/raw/2021/F2.tar', await hostileSession(env.dir, 'F2'), { dropMac: true });
    const theirs = (await loadManifestKey({ file: path.join(env.dir, 'attacker.key'), create: true }))!.key;
    const m2 = await getJson(env.storage, 'backups/raw/2021/F2.tar.manifest.json');
    await putJson(env.storage, 'backups/raw/2021/F2.tar.manifest.json', { ...m2, mac: theirs.mac(m2) });

    const fresh = ['--catalog', 'fresh.db'];
    const rebuild = await env.cli([...fresh, 'catalog', 'rebuild']);
    assert.equal(rebuild.code, 8, rebuild.stdout + rebuild.stderr);
    assert.match(rebuild.stdout, /F1\.tar\.manifest\.json.*altered/);
    assert.match(rebuild.stdout, /F2\.tar\.manifest\.json.*not by this machine's key/);
    assert.match(rebuild.stdout, /1 authenticated/);

    const target = path.join(env.dir, 'restored');
    const r1 = await env.cli([...fresh, 'restore', '--session-id', 'F1', '--to', target]);
    assert.equal(r1.code, 8, r1.stdout + r1.stderr);
    assert.match(r1.stderr, /altered/);
    const r2 = await env.cli([...fresh, 'restore', '--session-id', 'F2', '--to', target, '--trust-unsigned-manifests']);
    assert.equal(r2.code, 2, r2.stdout + r2.stderr);
    assert.match(r2.stderr, /OFFSITE_MANIFEST_KEY_FILE/);
    assert.deepEqual(await listTree(target), [], 'nothing was written into the target');
    const ok = await env.cli([...fresh, 'restore', '--session-id', 'F3', '--to', target]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.deepEqual(await treeDigest(path.join(target, 'F3')), await treeDigest(path.join(env.root, '2021', 'F3')));

    const v = await env.cli([...fresh, 'verify', '--full']);
    assert.equal(v.code, 8, v.stdout + v.stderr);
    assert.match(v.stdout, /FAIL F1 /);
    assert.match(v.stdout, /FAIL F2 /);
    assert.doesNotMatch(v.stdout, /FAIL F3 /);
  });

  it('after catalog rebuild: an unsigned (old-style) manifest is refused without --trust-unsigned-manifests, accepted with it and reported as unauthenticated', async () => {
    const env = await archiveEnv('unsigned');
    await makeSessions(env.root, [{ year: 2020, id: 'U1' }]);
    assert.equal((await env.cli(['upload'])).code, 0);
    const manifestKey = 'backups/raw/2020/U1.tar.manifest.json';
    const { mac, ...old } = await getJson(env.storage, manifestKey);
    assert.match(String(mac), /^v1\.[0-9a-f]{16}\./, 'upload signs the manifest');
    await putJson(env.storage, manifestKey, old);

    const fresh = ['--catalog', 'fresh.db'];
    const rebuild = await env.cli([...fresh, 'catalog', 'rebuild']);
    assert.equal(rebuild.code, 0, rebuild.stdout + rebuild.stderr);
    assert.match(rebuild.stdout, /U1\.tar\.manifest\.json carries no MAC/);

    const target = path.join(env.dir, 'restored');
    const refused = await env.cli([...fresh, 'restore', '--session-id', 'U1', '--to', target]);
    assert.equal(refused.code, 2, refused.stdout + refused.stderr);
    assert.match(refused.stderr, /--trust-unsigned-manifests/);
    assert.deepEqual(await listTree(target), []);
    const vRefused = await env.cli([...fresh, 'verify', '--full']);
    assert.equal(vRefused.code, 8, vRefused.stdout + vRefused.stderr);
    assert.match(vRefused.stdout, /--trust-unsigned-manifests/);

    const accepted = await env.json([...fresh, 'restore', '--session-id', 'U1', '--to', target, '--trust-unsigned-manifests']);
    assert.equal(accepted.code, 0, accepted.stdout + accepted.stderr);
    assert.deepEqual(await treeDigest(path.join(target, 'U1')), await treeDigest(path.join(env.root, '2020', 'U1')));
    const result = jsonEvents(accepted.stdout).find((e) => e.type === 'result')!;
    assert.equal(result.manifest, 'unsigned');
    assert.ok(jsonEvents(accepted.stdout).some((e) => e.type === 'notice' && /carries no MAC/.test(String(e.message))));
    const vAccepted = await env.cli([...fresh, 'verify', '--full', '--trust-unsigned-manifests']);
    assert.equal(vAccepted.code, 0, vAccepted.stdout + vAccepted.stderr);
    assert.match(vAccepted.stderr, /carries no MAC/);
  });

  it('an unsigned manifest that drops the encryption the config asks for is refused even with --trust-unsigned-manifests', async () => {
    const env = await archiveEnv('downgrade', '', { OFFSITE_ARCHIVE_PASSPHRASE: PASSPHRASE });
    await makeSessions(env.root, [{ year: 2019, id: 'D1' }]);
    assert.equal((await env.cli(['upload'])).code, 0);
    await replaceWithPlainTar(env.storage, 'backups/raw/2019/D1.tar.age', await hostileSession(env.dir, 'D1'), { dropMac: true });
    const fresh = ['--catalog', 'fresh.db'];
    assert.equal((await env.cli([...fresh, 'catalog', 'rebuild'])).code, 0);
    const target = path.join(env.dir, 'restored');
    const r = await env.cli([...fresh, 'restore', '--session-id', 'D1', '--to', target, '--trust-unsigned-manifests']);
    assert.equal(r.code, 8, r.stdout + r.stderr);
    assert.match(r.stderr, /not encrypted/);
    assert.deepEqual(await listTree(target), []);
  });

  it('from the bucket alone: without the manifest key nothing is trusted; with it (even set after the rebuild) the session restores', async () => {
    const id = await generateAgeIdentity();
    const identityFile = path.join(await tempDir(), 'identity.txt');
    await writeFile(identityFile, `${id.identity}\n`);
    const env = await archiveEnv('bucketonly', `[encryption]\nrecipients = ["${id.recipient}"]\nidentity_file = "${identityFile}"\n`);
    await makeSessions(env.root, [{ year: 2018, id: 'B1' }]);
    assert.equal((await env.cli(['upload'])).code, 0);

    const fresh = ['--catalog', 'fresh.db'];
    const noKey = { OFFSITE_MANIFEST_KEY_FILE: path.join(env.dir, 'no-such.key') };
    const rebuild = await env.cli([...fresh, 'catalog', 'rebuild'], noKey);
    assert.equal(rebuild.code, 0, rebuild.stdout + rebuild.stderr);
    assert.match(rebuild.stdout, /signed by manifest key [0-9a-f]{16}, which was not found here/);
    const target = path.join(env.dir, 'restored');
    const refused = await env.cli([...fresh, 'restore', '--session-id', 'B1', '--to', target], noKey);
    assert.equal(refused.code, 2, refused.stdout + refused.stderr);
    assert.match(refused.stderr, /OFFSITE_MANIFEST_KEY_FILE/);
    assert.deepEqual(await listTree(target), []);

    const restored = await env.cli([...fresh, 'restore', '--session-id', 'B1', '--to', target]);
    assert.equal(restored.code, 0, restored.stdout + restored.stderr);
    assert.deepEqual(await treeDigest(path.join(target, 'B1')), await treeDigest(path.join(env.root, '2018', 'B1')));
    assert.match(restored.stdout, /every file checked against the manifest/);
  });

  it('upload creates the manifest key once (0600), says so once, and signs each manifest over its canonical JSON', async () => {
    const env = await archiveEnv('mkey');
    await makeSessions(env.root, [{ year: 2017, id: 'K1' }]);
    const keyFile = path.join(env.dir, 'keys', 'manifest.key');
    const first = await env.cli(['upload'], { OFFSITE_MANIFEST_KEY_FILE: keyFile });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, new RegExp(`created the manifest key ${keyFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*keep a copy`));
    assert.equal((await stat(keyFile)).mode & 0o777, 0o600);
    await makeSessions(env.root, [{ year: 2017, id: 'K2' }]);
    const second = await env.cli(['upload'], { OFFSITE_MANIFEST_KEY_FILE: keyFile });
    assert.equal(second.code, 0, second.stderr);
    assert.doesNotMatch(second.stderr, /created the manifest key/);
    const key = (await loadManifestKey({ file: keyFile }))!.key;
    const { mac, ...record } = await getJson(env.storage, 'backups/raw/2017/K2.tar.manifest.json');
    assert.equal(mac, key.mac(JSON.parse(canonicalJson(record))));
  });
});
