// A restore either puts the whole session in place or leaves nothing new in the target: it
// extracts into a private directory beside the target and moves the session into place only
// once every entry was accepted, every file matched and the whole object's SHA-256 matched the
// catalog. On the test RGW; hostile archives are built as an attacker with bucket access would.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, cp, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { rebuildCatalog, restoreSession, type ArchiveEvent } from '../../src/backup/archive/index.js';
import { openCatalog } from '../../src/catalog/index.js';
import { generateAgeIdentity, isCodecError } from '../../src/codec/index.js';
import { s3ChildEnv, tempDir } from '../support/env.js';
import { sha256 } from '../support/data.js';
import { archiveEnv, attackerTar, getJson, listTree, putJson, replaceWithPlainTar } from './archive-env.js';
import { makeSessions, treeDigest } from './fixtures.js';

Object.assign(process.env, s3ChildEnv());
process.env.OFFSITE_MANIFEST_KEY_FILE = path.join(await tempDir('offsite-manifest-key-'), 'manifest.key');

function codeOf(e: unknown): string | undefined {
  return (e as { code?: string }).code;
}

describe('archive restore: all or nothing', () => {
  it('a refused ../ entry leaves nothing behind, not even the files extracted before it', async () => {
    const env = await archiveEnv('escape');
    await makeSessions(env.root, [{ year: 2022, id: 'S4' }]);
    assert.equal((await env.cli(['upload'])).code, 0);
    // ok.txt first, then an entry that climbs out (GNU tar's --transform), described by an
    // unsigned manifest: what a user restoring from the bucket alone with
    // --trust-unsigned-manifests could be handed.
    const evil = path.join(env.dir, 'evil');
    await mkdir(path.join(evil, 'S4'), { recursive: true });
    await writeFile(path.join(evil, 'S4', 'ok.txt'), 'ok');
    await writeFile(path.join(evil, 'S4', 'zz.txt'), 'escaped');
    const listed = await attackerTar(evil, 'S4');
    const bytes = execFileSync('tar', ['-cf', '-', '-C', evil, '--transform', 's,^S4/zz.txt$,S4/../../escape.txt,', 'S4/ok.txt', 'S4/zz.txt'], { maxBuffer: 1 << 24 });
    await replaceWithPlainTar(env.storage, 'backups/raw/2022/S4.tar', { ...listed, bytes, sha256: sha256(bytes) }, { dropMac: true });
    const catalog = openCatalog(path.join(env.dir, 'fresh.db'));
    await rebuildCatalog(env.config, env.storage, catalog);

    const target = path.join(env.dir, 'target', 'inner');
    await assert.rejects(restoreSession(env.config, env.storage, catalog, { sessionId: 'S4', to: target, trustUnsignedManifests: true }), (e: unknown) => isCodecError(e, 'UnsafeArchiveEntry'));
    // Not S4/ok.txt, nor the staging directory, nor the directories the restore created.
    assert.deepEqual(await listTree(path.join(env.dir, 'target')), []);
    catalog.close();
  });

  it('a session id from the bucket that is not a plain directory name is refused before anything is written', async () => {
    const env = await archiveEnv('badid');
    await makeSessions(env.root, [{ year: 2022, id: 'ID1' }]);
    assert.equal((await env.cli(['upload'])).code, 0);
    const manifestKey = 'backups/raw/2022/ID1.tar.manifest.json';
    const { mac: _mac, ...m } = await getJson(env.storage, manifestKey);
    await putJson(env.storage, manifestKey, { ...m, sessionId: '..' });
    const catalog = openCatalog(path.join(env.dir, 'fresh.db'));
    await rebuildCatalog(env.config, env.storage, catalog);
    const target = path.join(env.dir, 'target', 'inner');
    await assert.rejects(restoreSession(env.config, env.storage, catalog, { sessionId: '..', to: target, trustUnsignedManifests: true }), (e: unknown) => codeOf(e) === 'ArchiveCorrupted');
    assert.deepEqual(await listTree(path.join(env.dir, 'target')), []);
    catalog.close();
  });

  it('files that do not match the manifest leave nothing behind, even inside a read-only directory', async () => {
    const env = await archiveEnv('mismatch');
    await makeSessions(env.root, [{ year: 2022, id: 'RO' }]);
    assert.equal((await env.cli(['upload'])).code, 0);
    const evil = path.join(env.dir, 'evil');
    await mkdir(path.join(evil, 'RO', 'locked'), { recursive: true });
    await writeFile(path.join(evil, 'RO', 'locked', 'a.txt'), 'a');
    await chmod(path.join(evil, 'RO', 'locked'), 0o555);
    const tar = await attackerTar(evil, 'RO');
    await chmod(path.join(evil, 'RO', 'locked'), 0o755);
    const files = (tar.files as Array<{ path: string; type: string }>).map((f) => (f.type === 'file' ? { ...f, sha256: 'f'.repeat(64) } : f));
    await replaceWithPlainTar(env.storage, 'backups/raw/2022/RO.tar', { ...tar, files }, { dropMac: true });
    const catalog = openCatalog(path.join(env.dir, 'fresh.db'));
    await rebuildCatalog(env.config, env.storage, catalog);

    const target = path.join(env.dir, 'target');
    await assert.rejects(restoreSession(env.config, env.storage, catalog, { sessionId: 'RO', to: target, trustUnsignedManifests: true }), (e: unknown) => isCodecError(e, 'ArchiveMismatch'));
    assert.deepEqual(await listTree(target), []);
    catalog.close();
  });

  it('an object whose SHA-256 differs from the catalog is refused after a complete extraction, and nothing is moved into place', async () => {
    const env = await archiveEnv('hash');
    await makeSessions(env.root, [{ year: 2023, id: 'H1' }]);
    assert.equal((await env.cli(['upload'])).code, 0);
    const key = 'backups/raw/2023/H1.tar';
    const original = await env.storage.head(key);
    // The same tree with one file changed, same length: a tar of exactly the same size, with a
    // manifest rewritten to match it.
    const copy = path.join(env.dir, 'copy');
    await cp(path.join(env.root, '2023'), copy, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
    const log = path.join(copy, 'H1', 'session.log');
    const text = await readFile(log, 'utf8');
    await writeFile(log, text.replace('session H1', 'SESSION H1'));
    const tar = await attackerTar(copy, 'H1');
    assert.equal(tar.bytes.length, original.size, 'same size as the original');
    await replaceWithPlainTar(env.storage, key, tar);

    const catalog = openCatalog(env.config.catalogPath);
    const target = path.join(env.dir, 'target');
    await assert.rejects(restoreSession(env.config, env.storage, catalog, { sessionId: 'H1', to: target }), (e: unknown) => codeOf(e) === 'ArchiveCorrupted' && /SHA-256/.test((e as Error).message));
    assert.deepEqual(await listTree(target), []);
    catalog.close();
  });

  it('a decryption failure leaves nothing behind', async () => {
    const id = await generateAgeIdentity();
    const other = await generateAgeIdentity();
    const wrongKey = path.join(await tempDir(), 'wrong.txt');
    await writeFile(wrongKey, `${other.identity}\n`);
    const env = await archiveEnv('decrypt', `[encryption]\nrecipients = ["${id.recipient}"]\n`);
    await makeSessions(env.root, [{ year: 2021, id: 'E1' }]);
    assert.equal((await env.cli(['upload'])).code, 0);
    const catalog = openCatalog(env.config.catalogPath);
    const target = path.join(env.dir, 'target');
    await assert.rejects(restoreSession({ ...env.config, identityFile: wrongKey }, env.storage, catalog, { sessionId: 'E1', to: target }), (e: unknown) => isCodecError(e, 'DecryptionFailed'));
    assert.deepEqual(await listTree(target), []);
    catalog.close();
  });

  it('an aborted restore leaves nothing behind; while it runs, the staging directory beside the target is private (0700)', async () => {
    const env = await archiveEnv('abort');
    await makeSessions(env.root, [{ year: 2020, id: 'A1', bigBytes: 24 * 1024 * 1024 }]);
    assert.equal((await env.cli(['upload'])).code, 0);
    const catalog = openCatalog(env.config.catalogPath);
    const target = path.join(env.dir, 'target');
    const ac = new AbortController();
    let staging: { name: string; mode: number } | undefined;
    let probing = false;
    const onEvent = (e: ArchiveEvent) => {
      if (e.type !== 'progress' || e.done < 8 * 1024 * 1024 || probing || ac.signal.aborted) return;
      probing = true;
      void listTree(target).then(async (names) => {
        const name = names.find((n) => !n.includes('/'));
        if (name) staging = { name, mode: (await stat(path.join(target, name))).mode & 0o777 };
        ac.abort(new Error('stopped by the test'));
      });
    };
    await assert.rejects(restoreSession(env.config, env.storage, catalog, { sessionId: 'A1', to: target, signal: ac.signal, onEvent }));
    assert.ok(staging, 'a staging directory existed during the restore');
    assert.match(staging.name, /^\.offsite-restore-/);
    assert.equal(staging.mode, 0o700);
    assert.deepEqual(await listTree(target), []);

    // The same restore, not interrupted: in place, and the staging directory gone.
    const r = await restoreSession(env.config, env.storage, catalog, { sessionId: 'A1', to: target });
    assert.equal(r.status, 'restored');
    assert.deepEqual(await treeDigest(path.join(target, 'A1')), await treeDigest(path.join(env.root, '2020', 'A1')));
    assert.deepEqual((await listTree(target)).filter((n) => !n.includes('/')), ['A1']);

    // Restoring again over it is refused, and what is there is left alone.
    await writeFile(path.join(target, 'A1', 'mine.txt'), 'mine');
    await assert.rejects(restoreSession(env.config, env.storage, catalog, { sessionId: 'A1', to: target }), (e: unknown) => codeOf(e) === 'TargetExists');
    assert.equal(await readFile(path.join(target, 'A1', 'mine.txt'), 'utf8'), 'mine');
    catalog.close();
  });

  it('the restore log counts files, not directories', async () => {
    const env = await archiveEnv('count');
    const dir = path.join(env.root, '2023', 'S2');
    await mkdir(path.join(dir, 'a', 'b'), { recursive: true });
    await writeFile(path.join(dir, 'a', 'one.txt'), 'one');
    await writeFile(path.join(dir, 'a', 'b', 'two.txt'), 'two');
    assert.equal((await env.cli(['upload'])).code, 0);
    const r = await env.cli(['restore', '--session-id', 'S2', '--to', path.join(env.dir, 'target')]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stderr, /S2 \(2023\): 2 files/);
    assert.match(r.stdout, /restored S2 to .*: 2 files/);
  });
});
