// Archive jobs end to end against the test RGW: three years of sessions upload, verify and
// restore byte-identical; plain tools (aws s3 cp, tar, age) restore them without Offsite;
// corruption and hostile archives are caught; a kill -9 mid-upload is recovered by a rerun.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it, before } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadArchiveConfig, rebuildCatalog, restoreSession, uploadSessions, verifyArchives, type ArchiveConfig } from '../../src/backup/archive/index.js';
import { openCatalog } from '../../src/catalog/index.js';
import { generateAgeIdentity } from '../../src/codec/index.js';
import { openStorage, type Storage } from '../../src/storage/index.js';
import { runCli } from '../support/cli.js';
import { adminClient, createTestBucket, s3ChildEnv, s3TestServer, s3Url, tempDir } from '../support/env.js';
import { makeSessions, treeDigest } from './fixtures.js';


Object.assign(process.env, s3ChildEnv());
process.env.OFFSITE_MANIFEST_KEY_FILE = path.join(await tempDir('offsite-manifest-key-'), 'manifest.key');

async function setup(label: string, extraToml = ''): Promise<{ dir: string; root: string; bucket: string; configFile: string; config: ArchiveConfig; storage: Storage }> {
  const dir = await tempDir(`offsite-archive-${label}-`);
  const root = path.join(dir, 'sessions');
  const bucket = await createTestBucket(label);
  const configFile = path.join(dir, 'offsite-archive.toml');
  await writeFile(
    configFile,
    `[destination]\nurl = "${s3Url(bucket)}"\n[sessions]\nroot = "sessions"\n[upload]\ntags = { backup = "deep-archive" }\npart_size_mib = 5\n[catalog]\npath = "catalog.db"\n${extraToml}`,
  );
  const config = await loadArchiveConfig(configFile);
  const storage = openStorage(config.destinationUrl, { partSize: 5 * 1024 * 1024 });
  return { dir, root, bucket, configFile, config, storage };
}

describe('archive: upload, verify, restore', () => {
  let env: Awaited<ReturnType<typeof setup>>;
  before(async () => {
    env = await setup('arch');
    await makeSessions(env.root, [
      { year: 2022, id: 'S2022A' },
      { year: 2023, id: 'S2023A', bigBytes: 7 * 1024 * 1024 },
      { year: 2023, id: 'S2023B' },
      { year: 2024, id: 'S2024A' },
    ]);
  });

  it('uploads every session as one tar with a manifest and its notes, then skips them on a rerun', async () => {
    const catalog = openCatalog(env.config.catalogPath);
    const r = await uploadSessions(env.config, env.storage, catalog);
    assert.deepEqual(r.failed, []);
    assert.equal(r.uploaded, 4);
    const keys: string[] = [];
    for await (const e of env.storage.list()) if (e.type === 'object') keys.push(e.key);
    assert.deepEqual(keys.filter((k) => k.startsWith('backups/')), [
      'backups/raw/2022/S2022A.tar',
      'backups/raw/2022/S2022A.tar.manifest.json',
      'backups/raw/2023/S2023A.tar',
      'backups/raw/2023/S2023A.tar.manifest.json',
      'backups/raw/2023/S2023B.tar',
      'backups/raw/2023/S2023B.tar.manifest.json',
      'backups/raw/2024/S2024A.tar',
      'backups/raw/2024/S2024A.tar.manifest.json',
    ]);
    assert.ok(keys.includes('sessions/2023/S2023A_observing.md'));
    assert.ok(keys.includes('sessions/2023/S2023A-summary.md'));
    assert.deepEqual(await env.storage.getTags('backups/raw/2023/S2023A.tar'), { backup: 'deep-archive' });
    assert.equal((await env.storage.head('sessions/2023/S2023A-summary.md')).storageClass, 'STANDARD');
    const rows = catalog.listArchives({ destination: env.storage.url });
    assert.equal(rows.length, 4);
    assert.ok(rows.every((row) => row.status === 'done' && row.sha256 && row.size));

    // A skipped session is planned from the catalog (what was archived), without walking it.
    const archivedBytes = rows.find((row) => row.sessionId === 'S2022A')!.sourceBytes;
    await writeFile(path.join(env.root, '2022', 'S2022A', 'added-later.txt'), 'x'.repeat(1000));
    const again = await uploadSessions(env.config, env.storage, catalog);
    assert.equal(again.uploaded, 0);
    assert.equal(again.skipped, 4);
    const skipped = again.plan.find((p) => p.sessionId === 'S2022A')!;
    assert.equal(skipped.bytes, archivedBytes);
    await rm(path.join(env.root, '2022', 'S2022A', 'added-later.txt'));
    catalog.close();
  });

  it('restores each session byte-identical, checked against the manifest', async () => {
    const catalog = openCatalog(env.config.catalogPath);
    const target = path.join(env.dir, 'restored');
    for (const [year, id] of [[2022, 'S2022A'], [2023, 'S2023A'], [2023, 'S2023B'], [2024, 'S2024A']] as const) {
      const r = await restoreSession(env.config, env.storage, catalog, { sessionId: id, to: target });
      assert.equal(r.status, 'restored');
      assert.deepEqual(await treeDigest(path.join(target, id)), await treeDigest(path.join(env.root, String(year), id)), id);
    }
    catalog.close();
  });

  it('restores with only aws s3 cp and tar -xf', async () => {
    const out = path.join(env.dir, 'plain');
    await mkdir(out);
    const s = s3TestServer();
    execFileSync('bash', ['-c', `aws --endpoint-url "${s.endpoint}" s3 cp "s3://${env.bucket}/backups/raw/2023/S2023B.tar" - | tar -xf - -C "${out}"`], {
      env: { ...process.env, ...s3ChildEnv(), AWS_CA_BUNDLE: '' },
    });
    assert.deepEqual(await treeDigest(path.join(out, 'S2023B')), await treeDigest(path.join(env.root, '2023', 'S2023B')));
  });

  it('verify: HEAD checks pass; an archive overwritten with garbage is caught, by verify --full too, naming the session', async () => {
    const ok = await runCli(['archive', '--config', env.configFile, 'verify'], { cwd: env.dir });
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /all 4 archive\(s\) verified \(HEAD\)/);
    const full = await runCli(['archive', '--config', env.configFile, 'verify', '--full'], { cwd: env.dir });
    assert.equal(full.code, 0, full.stdout + full.stderr);

    const key = 'backups/raw/2024/S2024A.tar';
    const size = (await env.storage.head(key)).size;
    await env.storage.put(key, Buffer.alloc(size, 0x5a));
    const head = await runCli(['archive', '--config', env.configFile, 'verify'], { cwd: env.dir });
    assert.equal(head.code, 8, head.stdout + head.stderr);
    assert.match(head.stdout, /FAIL S2024A .*ETag/);
    const deep = await runCli(['--json', 'archive', '--config', env.configFile, 'verify', '--full', '--session-id', 'S2024A'], { cwd: env.dir });
    assert.equal(deep.code, 8);
    const result = deep.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; failed?: Array<{ sessionId: string; problems: string[] }> }).find((e) => e.type === 'result')!;
    assert.equal(result.failed![0]!.sessionId, 'S2024A');
    assert.match(result.failed![0]!.problems.join(' '), /SHA-256/);
  });

  it('a crafted archive with ../ entries put in place of an archive is refused before anything is extracted, writing nothing', async () => {
    const key = 'backups/raw/2022/S2022A.tar';
    const evilDir = path.join(env.dir, 'evil-src');
    await mkdir(path.join(evilDir, 'S2022A'), { recursive: true });
    await writeFile(path.join(evilDir, 'S2022A', 'ok.txt'), 'ok');
    await writeFile(path.join(env.dir, 'escaped.txt'), 'original');
    // A tar whose second entry climbs out: built with GNU tar's --transform.
    const tarBytes = execFileSync('tar', ['-cf', '-', '-C', evilDir, '--transform', 's,^S2022A/ok.txt$,S2022A/../../escaped.txt,', 'S2022A'], { maxBuffer: 1 << 24 });
    await env.storage.put(key, tarBytes);
    const catalog = openCatalog(env.config.catalogPath);
    const target = path.join(env.dir, 'restore-evil', 'inner');
    // Not the archive the catalog recorded: refused on its size. (The entry itself is refused
    // on extraction too: test/backup/archive-restore.test.ts, where the catalog agrees with it.)
    await assert.rejects(restoreSession(env.config, env.storage, catalog, { sessionId: 'S2022A', to: target }), (e: unknown) => (e as { code?: string }).code === 'ArchiveCorrupted');
    assert.equal(await readFile(path.join(env.dir, 'escaped.txt'), 'utf8'), 'original');
    await assert.rejects(readdir(path.join(env.dir, 'restore-evil')), { code: 'ENOENT' });
    catalog.close();
  });

  it('catalog rebuild recreates the catalog from the manifests in the bucket', async () => {
    const file = path.join(env.dir, 'rebuilt.db');
    const catalog = openCatalog(file);
    const r = await rebuildCatalog(env.config, env.storage, catalog);
    assert.equal(r.archives, 4);
    const original = openCatalog(env.config.catalogPath);
    const pick = (rows: ReturnType<typeof catalog.listArchives>) => rows.map((x) => [x.sessionId, x.year, x.key, x.sha256, x.size]).sort();
    assert.deepEqual(pick(catalog.listArchives({ destination: env.storage.url })), pick(original.listArchives({ destination: env.storage.url })));
    catalog.close();
    original.close();
  });
});

describe('archive: encrypted and compressed', () => {
  it('gzip + age: Debian age -d and tar -xzf restore it; so does offsite with the identity file', async () => {
    const id = await generateAgeIdentity();
    const keyFile = path.join(await tempDir(), 'key.txt');
    await writeFile(keyFile, `${id.identity}\n`);
    const env = await setup('enc', `[encryption]\nrecipients = ["${id.recipient}"]\nidentity_file = "${keyFile}"\n`);
    await makeSessions(env.root, [{ year: 2021, id: 'ENC1' }]);
    const catalog = openCatalog(env.config.catalogPath);
    const config = { ...env.config, compress: 'gzip' as const };
    const r = await uploadSessions(config, env.storage, catalog);
    assert.equal(r.uploaded, 1, JSON.stringify(r.failed));
    const key = 'backups/raw/2021/ENC1.tar.gz.age';
    const stored = await env.storage.get(key);
    const head = Buffer.alloc(0);
    for await (const c of stored.body as AsyncIterable<Buffer>) {
      assert.ok(!c.includes(Buffer.from('session ENC1')), 'no plaintext in the stored object');
      void head;
    }
    const out = path.join(env.dir, 'plain');
    await mkdir(out);
    const s = s3TestServer();
    execFileSync('bash', ['-c', `set -o pipefail; aws --endpoint-url "${s.endpoint}" s3 cp "s3://${env.bucket}/${key}" - | age -d -i "${keyFile}" | tar -xzf - -C "${out}"`], {
      env: { ...process.env, ...s3ChildEnv(), AWS_CA_BUNDLE: '' },
    });
    assert.deepEqual(await treeDigest(path.join(out, 'ENC1')), await treeDigest(path.join(env.root, '2021', 'ENC1')));
    const restored = await restoreSession(config, env.storage, catalog, { sessionId: 'ENC1', to: path.join(env.dir, 'r') });
    assert.equal(restored.status, 'restored');
    assert.deepEqual(await treeDigest(path.join(env.dir, 'r', 'ENC1')), await treeDigest(path.join(env.root, '2021', 'ENC1')));
    const v = await verifyArchives(config, env.storage, catalog, { full: true });
    assert.equal(v.ok, true, JSON.stringify(v.failed));
    // Recipients and a passphrase at once: refused before anything is planned, naming both.
    await assert.rejects(uploadSessions({ ...config, passphrase: 'also-a-passphrase' }, env.storage, catalog, { skipExisting: false }), {
      name: 'ConfigError',
      message: /encryption\.recipients is set and so is OFFSITE_ARCHIVE_PASSPHRASE/,
    });
    catalog.close();
  });
});

describe('archive: kill -9 mid-upload, then rerun', () => {
  it('finishes, never marks an incomplete archive done, and aborts the abandoned multipart upload', async () => {
    const env = await setup('kill');
    await makeSessions(env.root, [{ year: 2020, id: 'BIG', bigBytes: 40 * 1024 * 1024 }]);
    const child = spawn(process.execPath, [path.join(process.cwd(), 'bin/offsite'), 'archive', '--config', env.configFile, 'upload', '--bwlimit', '4M'], {
      cwd: env.dir,
      env: process.env,
      stdio: 'ignore',
    });
    const admin = adminClient();
    const key = 'backups/raw/2020/BIG.tar';
    // Wait until a multipart upload has started and some parts are in.
    let uploads = 0;
    for (let i = 0; i < 100 && uploads === 0; i++) {
      await sleep(200);
      uploads = (await admin.send(new ListMultipartUploadsCommand({ Bucket: env.bucket, Prefix: key }))).Uploads?.length ?? 0;
    }
    assert.ok(uploads > 0, 'a multipart upload was in progress');
    await sleep(1500);
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));

    const catalog = openCatalog(env.config.catalogPath);
    const row = catalog.getArchive(env.storage.url, key);
    assert.notEqual(row?.status, 'done', 'an interrupted archive is not done');
    const recorded = (await admin.send(new ListMultipartUploadsCommand({ Bucket: env.bucket, Prefix: key }))).Uploads?.map((u) => u.UploadId);
    assert.ok(row?.uploadId && recorded?.includes(row.uploadId), `the catalog kept the upload id (${row?.uploadId}; in the store: ${recorded?.join(', ')})`);
    await assert.rejects(env.storage.head(key), 'no object at the key');
    catalog.close();

    const rerun = await runCli(['archive', '--config', env.configFile, 'upload'], { cwd: env.dir });
    assert.equal(rerun.code, 0, rerun.stdout + rerun.stderr);
    assert.match(rerun.stderr, /aborted 1 abandoned multipart upload\(s\) \(including .*recorded by the interrupted run\)/);
    const left = (await admin.send(new ListMultipartUploadsCommand({ Bucket: env.bucket }))).Uploads ?? [];
    assert.deepEqual(left, [], 'no multipart upload left behind');
    admin.destroy();
    const after = openCatalog(env.config.catalogPath);
    assert.equal(after.getArchive(env.storage.url, key)?.status, 'done');
    after.close();
    const v = await runCli(['archive', '--config', env.configFile, 'verify', '--full'], { cwd: env.dir });
    assert.equal(v.code, 0, v.stdout + v.stderr);
    await rm(path.join(env.dir, 'sessions'), { recursive: true, force: true });
  });
});
