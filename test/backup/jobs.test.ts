// Backup jobs against the test RGW: a SQLite database backed up while another process keeps
// writing (the copy passes SQLite's integrity check and holds a prefix of the writes), the
// local / s3 / both listing, restore of a bucket-only backup, retention, the seed's
// environment variables, and SIGTERM in the middle of an upload (through the FAKE fault proxy,
// which here only delays part uploads so the signal lands mid-upload).
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import Database from 'better-sqlite3';
import { applyRetention, redact, findJob, listBackups, loadJobsConfig, pruneBackups, restoreBackup, runBackupJob, type BackupEntry } from '../../src/backup/jobs/index.js';
import { HOST_SNAPSHOT_PREFIX } from '../../src/backup/jobs/run.js';
import { openCatalog } from '../../src/catalog/index.js';
import { generateAgeIdentity } from '../../src/codec/index.js';
import { openStorage } from '../../src/storage/index.js';
import { OFFSITE_BIN, runCli } from '../support/cli.js';
import { adminClient, createTestBucket, s3ChildEnv, s3TestServer, s3Url, tempDir } from '../support/env.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { makeDatabase, payloadOf } from '../support/sqlite-writer.js';
import { useTestManifestKey } from './job-support.js';

await useTestManifestKey();

Object.assign(process.env, s3ChildEnv());
const repoRoot = path.resolve(import.meta.dirname, '../..');

/** A process that inserts rows 1, 2, 3, ... into `db` (WAL mode) as fast as it can until killed. */
function startWriter(db: string): ChildProcess {
  const code = `
    const Database = require('better-sqlite3');
    const { createHash } = require('node:crypto');
    const db = new Database(${JSON.stringify(db)}, { timeout: 10000 });
    db.pragma('journal_mode = WAL');
    const max = db.prepare('SELECT COALESCE(MAX(id), 0) AS m FROM rows').get().m;
    const ins = db.prepare('INSERT INTO rows (id, payload) VALUES (?, ?)');
    let id = max;
    const batch = db.transaction((n) => { for (let i = 0; i < n; i++) { id++; ins.run(id, createHash('sha256').update('row ' + id).digest('hex').repeat(8)); } });
    process.stdout.write('ready\\n');
    for (;;) batch(50);
  `;
  return spawn(process.execPath, ['-e', code], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
}

/** Rows 1..n, each with its own payload: a prefix of the writer's inserts, nothing torn. */
function assertPrefixOfWrites(file: string, atLeast: number): number {
  const db = new Database(file, { readonly: true });
  try {
    assert.equal((db.pragma('integrity_check') as Array<{ integrity_check: string }>)[0]!.integrity_check, 'ok');
    const { n, max } = db.prepare('SELECT COUNT(*) AS n, MAX(id) AS max FROM rows').get() as { n: number; max: number };
    assert.equal(n, max, 'ids are 1..n with no gap');
    assert.ok(n >= atLeast, `at least the ${atLeast} rows written before the backup, got ${n}`);
    for (const row of db.prepare('SELECT id, payload FROM rows WHERE id % 997 = 0 OR id = ?').iterate(max) as Iterable<{ id: number; payload: string }>) {
      assert.equal(row.payload, payloadOf(row.id));
    }
    return n;
  } finally {
    db.close();
  }
}

async function writeConfig(dir: string, body: string): Promise<string> {
  const file = path.join(dir, 'offsite.toml');
  await writeFile(file, `[catalog]\npath = "catalog.db"\n${body}`);
  return file;
}

describe('backup jobs: SQLite to RGW while a writer runs', () => {
  let dir: string;
  let bucket: string;
  let writer: ChildProcess | undefined;
  before(async () => {
    dir = await tempDir('offsite-jobs-');
    bucket = await createTestBucket('jobs');
    await makeDatabase(path.join(dir, 'app.db'), 60_000);
  });
  after(() => writer?.kill('SIGKILL'));

  it('backs up a consistent copy, lists local/s3/both, restores a bucket-only backup, records the run', async () => {
    const configFile = await writeConfig(dir, `[jobs.app]\nsource = "sqlite:app.db"\ndestination = "${s3Url(bucket, 'db/')}"\n`);
    const config = await loadJobsConfig({ file: configFile });
    const job = findJob(config, 'app');
    assert.equal(job.localDir, path.join(dir, '.offsite', 'backups', 'app'));

    writer = startWriter(path.join(dir, 'app.db'));
    await new Promise<void>((resolve) => writer!.stdout!.once('data', () => resolve()));
    await sleep(200);
    const catalog = openCatalog(config.catalogPath);
    const storage = openStorage(job.destinationUrl!);
    const first = await runBackupJob(job, { catalog, storage, now: new Date('2026-11-20T10:00:00Z') });
    const second = await runBackupJob(job, { catalog, storage, now: new Date('2026-11-21T10:00:00Z') });
    writer.kill('SIGKILL');
    writer = undefined;
    assert.equal(first.uploaded, true, first.uploadError);
    assert.equal(first.name, 'app-20261120T100000Z.sqlite');
    assert.ok((first.requests.PutObject ?? 0) + (first.requests.UploadPart ?? 0) >= 1, JSON.stringify(first.requests));
    const n1 = assertPrefixOfWrites(first.localPath, 60_000);
    const n2 = assertPrefixOfWrites(second.localPath, n1);
    assert.ok(n2 > n1, `the writer kept writing between the backups (${n1} then ${n2} rows)`);
    // The local .sha256 file is what sha256sum -c reads.
    assert.equal((await readFile(`${first.localPath}.sha256`, 'utf8')).trim(), `${first.sha256}  ${first.name}`);
    assert.equal((await storage.head(first.name)).metadata['offsite-sha256'], first.sha256);

    // Delete the local copy of the first and the remote copy of the second.
    await rm(first.localPath);
    await storage.delete(second.name);
    const third = await runBackupJob(job, { catalog, storage, now: new Date('2026-11-22T10:00:00Z') });
    const listed = await listBackups(job, storage);
    assert.deepEqual(
      listed.map((e) => [e.name, e.where]),
      [
        [third.name, 'both'],
        [second.name, 'local'],
        [first.name, 's3'],
      ],
    );
    // Restore the bucket-only backup: downloaded, SHA-256 checked, integrity-checked.
    const restored = await restoreBackup(job, first.name, { to: path.join(dir, 'restored.db'), storage });
    assert.equal(restored.from, 's3');
    assert.equal(restored.sha256, first.sha256);
    // No catalog given: the object's metadata counts because the manifest key signed it.
    assert.equal(restored.verifiedBy, 'manifest-key');
    assert.equal(restored.keptLocal, true);
    assert.equal(assertPrefixOfWrites(path.join(dir, 'restored.db'), 60_000), n1);
    await assert.rejects(restoreBackup(job, first.name, { to: path.join(dir, 'restored.db'), storage }), { code: 'TargetExists' });

    const runs = catalog.recentOperations(10, 'backup');
    assert.equal(runs.length, 3);
    assert.ok(runs.every((r) => r.status === 'ok' && (r.requests?.HeadObject ?? 0) >= 1));
    catalog.close();
    await storage.close();

    // The CLI shows the same merged list; the restored backup was kept as its local copy.
    const cli = await runCli(['--json', 'backups', 'app', '--config', configFile], { cwd: dir });
    assert.equal(cli.code, 0, cli.stderr);
    assert.deepEqual(
      (JSON.parse(cli.stdout) as Array<{ name: string; where: string }>).map((e) => e.where),
      ['both', 'local', 'both'],
    );
  });

  it('a stored backup that no longer matches its SHA-256 is refused on restore (exit 8)', async () => {
    const configFile = await writeConfig(dir, `[jobs.app]\nsource = "sqlite:app.db"\ndestination = "${s3Url(bucket, 'db/')}"\n`);
    const job = findJob(await loadJobsConfig({ file: configFile }), 'app');
    const storage = openStorage(job.destinationUrl!);
    const [newest] = await listBackups(job, storage);
    // Replace the object, keeping the SHA-256 metadata of the real one.
    const head = await storage.head(newest!.name);
    await storage.put(newest!.name, Buffer.from('not the database'), { metadata: head.metadata });
    await rm(path.join(job.localDir, newest!.name));
    const r = await runCli(['restore', 'app', newest!.name, '--to', path.join(dir, 'bad.db'), '--config', configFile], { cwd: dir });
    assert.equal(r.code, 8, r.stderr);
    assert.match(r.stderr, /^offsite: the stored \S+ is 16 bytes, and the backup Offsite made was \d+: it was replaced or damaged in the bucket/);
    await storage.close();
  });
});

describe('backup jobs: a directory, as a tar', () => {
  it('backs up a tree (gzip + age), restores it from the bucket byte for byte, and Debian\'s tar reads the local copy', async () => {
    const dir = await tempDir('offsite-dirjob-');
    const bucket = await createTestBucket('dirjob');
    const tree = path.join(dir, 'etc-app');
    await mkdir(path.join(tree, 'conf.d'), { recursive: true });
    await writeFile(path.join(tree, 'app.conf'), 'port = 8080\n');
    await writeFile(path.join(tree, 'conf.d', 'extra.conf'), randomBytes(200_000));
    await symlink('app.conf', path.join(tree, 'current.conf'));
    const { identity, recipient } = await generateAgeIdentity();
    const configFile = await writeConfig(dir, `[jobs.conf]\nsource = "dir:etc-app"\ndestination = "${s3Url(bucket)}"\ncompress = "gzip"\nrecipients = ["${recipient}"]\n`);
    const job = findJob(await loadJobsConfig({ file: configFile }), 'conf');
    const storage = openStorage(job.destinationUrl!);
    try {
      const r = await runBackupJob(job, { storage, now: new Date('2026-11-23T08:00:00Z') });
      assert.equal(r.name, 'conf-20261123T080000Z.tar.gz.age');
      assert.equal(r.uploaded, true, r.uploadError);
      // Plain tools read the local copy: age -d | tar -tz.
      await writeFile(path.join(dir, 'key.txt'), identity);
      const listing = spawnSync('sh', ['-c', `age -d -i key.txt '.offsite/backups/conf/${r.name}' | tar -tzf -`], { cwd: dir, encoding: 'utf8' });
      assert.equal(listing.status, 0, listing.stderr);
      assert.deepEqual(listing.stdout.trim().split('\n').sort(), ['etc-app/', 'etc-app/app.conf', 'etc-app/conf.d/', 'etc-app/conf.d/extra.conf', 'etc-app/current.conf']);

      await rm(r.localPath);
      const to = path.join(dir, 'restored');
      const restored = await restoreBackup(job, r.name, { to, storage, identities: [identity] });
      assert.equal(restored.from, 's3');
      assert.match(restored.check, /^tar: 2 files extracted/);
      for (const file of ['app.conf', 'conf.d/extra.conf']) {
        assert.deepEqual(await readFile(path.join(to, 'etc-app', file)), await readFile(path.join(tree, file)), file);
      }
      assert.equal(await readlink(path.join(to, 'etc-app', 'current.conf')), 'app.conf');
      await assert.rejects(restoreBackup(job, r.name, { to, storage, identities: [identity] }), { code: 'TargetExists' });
    } finally {
      await storage.close();
    }
  });
});

describe('backup jobs: secrets in messages', () => {
  it('redact() hides a password in the userinfo (even with "/" in it) and in ?password=', () => {
    assert.equal(redact('postgres://app:s3cr/t@db:5432/app'), 'postgres://app:***@db:5432/app');
    assert.equal(redact('postgresql://db/app?user=app&password=hunter2&sslmode=require'), 'postgresql://db/app?user=app&password=***&sslmode=require');
    assert.equal(redact('/var/lib/app.db'), '/var/lib/app.db');
  });
});

describe('backup jobs: retention', () => {
  const entry = (iso: string, where: BackupEntry['where'] = 'both'): BackupEntry => ({ name: `j-${iso}`, where, takenAt: new Date(iso), size: 1 });
  it('keeps last N plus the newest of each day/week/month, and always the newest', () => {
    const entries = ['2026-11-22T12:00:00Z', '2026-11-22T06:00:00Z', '2026-11-21T12:00:00Z', '2026-11-15T12:00:00Z', '2026-10-30T12:00:00Z', '2026-09-01T00:00:00Z'].map((d) => entry(d));
    const kept = (r: Parameters<typeof applyRetention>[1]) => applyRetention(entries, r).filter((d) => d.keep).map((d) => d.entry.name.slice(2, 12));
    assert.deepEqual(kept({ keepLast: 2 }), ['2026-11-22', '2026-11-22']);
    assert.deepEqual(kept({ keepDaily: 2 }), ['2026-11-22', '2026-11-21']);
    assert.deepEqual(kept({ keepWeekly: 3 }), ['2026-11-22', '2026-11-15', '2026-10-30']);
    assert.deepEqual(kept({ keepMonthly: 3 }), ['2026-11-22', '2026-10-30', '2026-09-01']);
    assert.equal(kept({}).length, entries.length, 'no rules: nothing is deleted');
  });
  it('never deletes the newest backup in the bucket, even when only local copies are newer', () => {
    const entries = [entry('2026-11-22T12:00:00Z', 'local'), entry('2026-11-21T12:00:00Z', 'local'), entry('2026-11-20T12:00:00Z', 's3'), entry('2026-11-19T12:00:00Z', 's3')];
    const d = applyRetention(entries, { keepLast: 1 });
    assert.deepEqual(d.map((x) => x.keep), [true, false, true, false]);
    assert.deepEqual(d[2]!.reasons, ['newest in the bucket']);
  });
  it('prune deletes on both sides; --dry-run deletes nothing', async () => {
    const dir = await tempDir('offsite-prune-');
    const bucket = await createTestBucket('prune');
    await writeFile(path.join(dir, 'settings.json'), '{"a":1}');
    const configFile = await writeConfig(dir, `[jobs.cfg]\nsource = "file:settings.json"\ndestination = "${s3Url(bucket)}"\nretention = { keep_last = 2 }\n`);
    const job = findJob(await loadJobsConfig({ file: configFile }), 'cfg');
    const storage = openStorage(job.destinationUrl!);
    for (const day of ['18', '19', '20', '21']) await runBackupJob(job, { storage, now: new Date(`2026-11-${day}T00:00:00Z`) });
    const dry = await pruneBackups(job, { storage, dryRun: true });
    assert.deepEqual(dry.decisions.map((d) => d.keep), [true, true, false, false]);
    assert.equal((await listBackups(job, storage)).length, 4);
    const r = await pruneBackups(job, { storage });
    assert.deepEqual(r.deletedRemote, ['cfg-20261119T000000Z.json', 'cfg-20261118T000000Z.json']);
    assert.deepEqual((await listBackups(job, storage)).map((e) => [e.name, e.where]), [
      ['cfg-20261121T000000Z.json', 'both'],
      ['cfg-20261120T000000Z.json', 'both'],
    ]);
    await storage.close();
  });
});

describe('backup jobs: names are never reused', () => {
  it('two runs in the same second get two names: the second waits for the next second instead of replacing the first', async () => {
    const dir = await tempDir('offsite-same-second-');
    await writeFile(path.join(dir, 'settings.json'), '{"a":1}');
    const configFile = await writeConfig(dir, `[jobs.cfg]\nsource = "file:settings.json"\n`);
    const job = findJob(await loadJobsConfig({ file: configFile }), 'cfg');
    const catalog = openCatalog(path.join(dir, 'catalog.db'));
    try {
      // A given time moves on at once.
      const now = new Date('2026-11-20T10:00:00.900Z');
      const a = await runBackupJob(job, { catalog, now });
      await writeFile(path.join(dir, 'settings.json'), '{"a":2}');
      const b = await runBackupJob(job, { catalog, now });
      assert.deepEqual([a.name, b.name], ['cfg-20261120T100000Z.json', 'cfg-20261120T100001Z.json']);
      assert.equal(await readFile(a.localPath, 'utf8'), '{"a":1}');
      assert.equal(await readFile(b.localPath, 'utf8'), '{"a":2}');
      // The clock: back-to-back runs, each named after a second of its own.
      const names = [];
      for (let i = 0; i < 3; i++) names.push((await runBackupJob(job, { catalog })).name);
      assert.equal(new Set(names).size, 3, names.join(' '));
    } finally {
      catalog.close();
    }
  });
});

describe('backup jobs: a snapshot staged by a host (the DuckDB copy through its connection)', () => {
  it('is taken when it is ours, refused as a link or outside the job\'s directory; one left by a dead host is removed', async () => {
    const dir = await tempDir('offsite-staged-');
    await writeFile(path.join(dir, 'settings.json'), '{"a":1}');
    const configFile = await writeConfig(dir, `[jobs.cfg]\nsource = "file:settings.json"\n`);
    const job = findJob(await loadJobsConfig({ file: configFile }), 'cfg');
    await mkdir(job.localDir, { recursive: true });
    // Ours: moved into place as the backup, whatever the source now holds.
    const staged = path.join(job.localDir, `${HOST_SNAPSHOT_PREFIX}${process.pid}-abc.json`);
    await writeFile(staged, '{"staged":true}');
    const run = await runBackupJob(job, { snapshotFile: staged });
    assert.equal(await readFile(run.localPath, 'utf8'), '{"staged":true}');
    assert.equal(await readFile(staged).catch(() => 'gone'), 'gone', 'the staged file was taken, not copied');
    // A link in its place, or a file elsewhere, is refused: nothing is backed up through them.
    const target = path.join(dir, 'secret.txt');
    await writeFile(target, 'not for the bucket');
    const link = path.join(job.localDir, `${HOST_SNAPSHOT_PREFIX}${process.pid}-link.json`);
    await symlink(target, link);
    await assert.rejects(runBackupJob(job, { snapshotFile: link }), /not a regular file/);
    await assert.rejects(runBackupJob(job, { snapshotFile: target }), /must be a \.offsite-host-snapshot-\* file in/);
    await rm(link);
    // Left by a host that died before its child took it (pid 2^22 + 1 is above pid_max's
    // default): the next run removes it; a live host's is left alone.
    const dead = path.join(job.localDir, `${HOST_SNAPSHOT_PREFIX}4194305-dead.json`);
    const live = path.join(job.localDir, `${HOST_SNAPSHOT_PREFIX}${process.pid}-live.json`);
    await writeFile(dead, 'x');
    await writeFile(live, 'y');
    await runBackupJob(job);
    assert.equal(await readFile(dead).catch(() => 'gone'), 'gone');
    assert.equal(await readFile(live, 'utf8'), 'y');
  });
});

describe('backup jobs: the seed\'s environment variables', () => {
  it('S3_BUCKET / S3_KEY_PREFIX / S3_SYNC_INTERVAL define the "default" job; S3_BUCKET empty switches uploads off', async () => {
    const dir = await tempDir('offsite-envjob-');
    await makeDatabase(path.join(dir, 'sensor.db'), 100);
    const bucket = await createTestBucket('envjob');
    const env = {
      ...s3ChildEnv(),
      OFFSITE_CONFIG: path.join(dir, 'none.toml'),
      OFFSITE_BACKUP_SOURCE: path.join(dir, 'sensor.db'),
      OFFSITE_BACKUP_LOCAL_DIR: path.join(dir, 'local'),
      S3_BUCKET: bucket,
      S3_ENDPOINT: s3TestServer().endpoint,
      S3_REGION: 'us-east-1',
      S3_SYNC_INTERVAL: '900',
    };
    await writeFile(env.OFFSITE_CONFIG, '');
    const config = await loadJobsConfig({ env });
    const job = findJob(config, 'default');
    assert.equal(job.schedule, '900');
    assert.match(job.destinationUrl!, new RegExp(`^s3://${bucket}/bramble/\\?endpoint=`));
    const r = await runCli(['--json', 'backup', 'default'], { cwd: dir, env });
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { name: string; uploaded: boolean };
    assert.equal(result.uploaded, true);
    const listed = await adminClient().send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    assert.equal(listed.Uploads, undefined);
    const storage = openStorage(`${s3Url(bucket, 'bramble/')}`);
    assert.equal((await storage.head(result.name)).size > 0, true);
    await storage.close();

    const off = await runCli(['--json', 'backup', 'default'], { cwd: dir, env: { ...env, S3_BUCKET: '' } });
    assert.equal(off.code, 0, off.stderr);
    assert.equal((JSON.parse(off.stdout) as { uploaded: boolean }).uploaded, false);
    const status = await runCli(['--json', 'status'], { cwd: dir, env: { ...env, S3_BUCKET: '' } });
    const rows = JSON.parse(status.stdout) as Array<{ name: string; disabled: string | null; lastSuccess: string | null }>;
    assert.match(rows[0]!.disabled!, /S3_BUCKET is empty/);
    assert.ok(rows[0]!.lastSuccess);
  });
});

describe('backup jobs: SIGTERM in the middle of an upload (FAKE proxy delays the parts)', () => {
  it('leaves no object and no multipart upload; the next run succeeds', async () => {
    const dir = await tempDir('offsite-sigterm-');
    const bucket = await createTestBucket('sigterm');
    await makeDatabase(path.join(dir, 'big.db'), 120_000); // ~60 MB: a multipart upload
    const proxy = await FaultProxy.start(s3TestServer().endpoint);
    try {
      const url = `s3://${bucket}/?endpoint=${encodeURIComponent(proxy.endpoint)}&region=us-east-1&path_style=true`;
      const configFile = await writeConfig(dir, `[jobs.big]\nsource = "sqlite:big.db"\ndestination = "${url}"\n`);
      proxy.inject({ method: 'PUT', match: (p) => p.includes('partNumber='), fault: { kind: 'delay', ms: 1500 }, times: 1000 });
      const child = spawn(process.execPath, [OFFSITE_BIN, 'backup', 'big', '--config', configFile], { cwd: dir, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
      // Up to 60 s: the database and its local copy come first, slow on a loaded machine.
      for (let i = 0; i < 1200 && !proxy.seen.some((l) => l.includes('partNumber=')); i++) await sleep(50);
      assert.ok(proxy.seen.some((l) => l.includes('partNumber=')), 'the upload reached its parts');
      child.kill('SIGTERM');
      const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)));
      assert.notEqual(code, 0, 'an interrupted backup does not exit 0');
      const s = openStorage(s3Url(bucket));
      const keys: string[] = [];
      for await (const e of s.list()) if (e.type === 'object') keys.push(e.key);
      assert.deepEqual(keys, [], 'no partial object counts as a backup');
      const uploads = await adminClient().send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      assert.equal(uploads.Uploads, undefined, 'the multipart upload was aborted');
      proxy.clear();
      const again = await runCli(['--json', 'backup', 'big', '--config', configFile], { cwd: dir, env: { ...process.env } });
      assert.equal(again.code, 0, again.stderr + stderr);
      assert.equal((JSON.parse(again.stdout) as { uploaded: boolean }).uploaded, true);
      await s.close();
    } finally {
      await proxy.close();
    }
  });
});
