// Restores of backup jobs against the test RGW, through the CLI as a user runs them: a restore
// leaves nothing beside its target and keeps what it downloaded as the local copy; it refuses
// an object somebody else put in the bucket (replaced with or without metadata, with the
// metadata of another backup, unencrypted for a job that encrypts), with the catalog and from
// the bucket alone (the manifest key's MAC); a failed upload exits with its cause's code; and
// every file and directory a run or a restore creates is private whatever the umask.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs, { existsSync, statSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import path from 'node:path';
import { before, beforeEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { findJob, loadJobsConfig, runBackupJob, restoreBackup, type BackupJob } from '../../src/backup/jobs/index.js';
import { openCatalog } from '../../src/catalog/index.js';
import { generateAgeIdentity } from '../../src/codec/index.js';
import { openStorage } from '../../src/storage/index.js';
import { OFFSITE_BIN, runCli, type CliResult } from '../support/cli.js';
import { sha256 } from '../support/data.js';
import { createTestBucket, s3ChildEnv, s3Url, tempDir } from '../support/env.js';
import { useTestManifestKey } from './job-support.js';

const manifestKeyFile = await useTestManifestKey();
Object.assign(process.env, s3ChildEnv());

/** A WAL-mode database (as an app keeps it) whose `who` table names its maker, plus some rows. */
function makeDatabase(file: string, who: string, rows = 2000): void {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE who (name TEXT NOT NULL); CREATE TABLE rows (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)');
  db.prepare('INSERT INTO who VALUES (?)').run(who);
  const ins = db.prepare('INSERT INTO rows (id, payload) VALUES (?, ?)');
  db.transaction(() => {
    for (let i = 1; i <= rows; i++) ins.run(i, sha256(`${who} ${i}`));
  })();
  db.close();
}

/** Who made the database at `file`, after SQLite's integrity check and a check of every row. */
function makerOf(file: string): string {
  const db = new Database(file, { readonly: true });
  try {
    assert.equal((db.pragma('integrity_check') as Array<{ integrity_check: string }>)[0]!.integrity_check, 'ok');
    const who = (db.prepare('SELECT name FROM who').get() as { name: string }).name;
    for (const r of db.prepare('SELECT id, payload FROM rows').iterate() as Iterable<{ id: number; payload: string }>) assert.equal(r.payload, sha256(`${who} ${r.id}`));
    return who;
  } finally {
    db.close();
  }
}

async function writeConfig(dir: string, file: string, catalog: string, body: string): Promise<string> {
  const full = path.join(dir, file);
  await writeFile(full, `[catalog]\npath = "${catalog}"\n${body}`);
  return full;
}

const json = <T>(r: CliResult): T => JSON.parse(r.stdout) as T;

/** Runs bin/offsite under `umask 000`, so every mode the tool does not set itself shows. */
function runCliUmask000(args: string[], cwd: string): Promise<CliResult> {
  const child = spawn('sh', ['-c', 'umask 000 && exec "$0" "$@"', process.execPath, OFFSITE_BIN, ...args], { cwd, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr })));
}

const mode = (p: string) => statSync(p).mode & 0o777;

describe('backup jobs: what a restore leaves behind and keeps', () => {
  let dir: string;
  let configFile: string;
  let job: BackupJob;
  let name: string;
  let sha: string;
  let bucket: string;
  before(async () => {
    dir = await tempDir('offsite-restore-');
    bucket = await createTestBucket('restore');
    makeDatabase(path.join(dir, 'app.db'), 'genuine');
    configFile = await writeConfig(dir, 'offsite.toml', 'catalog.db', `[jobs.app]\nsource = "sqlite:app.db"\ndestination = "${s3Url(bucket, 'db/')}"\n`);
    const backup = await runCli(['--json', 'backup', 'app', '--config', configFile], { cwd: dir });
    assert.equal(backup.code, 0, backup.stderr);
    ({ name, sha256: sha } = json<{ name: string; sha256: string }>(backup));
    job = findJob(await loadJobsConfig({ file: configFile }), 'app');
  });

  it('restoring a WAL-mode SQLite backup --to FILE, twice, leaves FILE alone in its directory', async () => {
    const out = path.join(dir, 'r');
    await fs.promises.mkdir(out);
    for (const extra of [[], ['--force']]) {
      const r = await runCli(['restore', 'app', 'latest', '--to', path.join(out, 'restored.db'), '--config', configFile, ...extra], { cwd: dir });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await readdir(out), ['restored.db'], 'no -shm, -wal or temporary file beside the restored database');
    }
    assert.equal(makerOf(path.join(out, 'restored.db')), 'genuine');
  });

  it('keeps a backup downloaded from the bucket as the local copy (SHA-256 checked), so it is listed as both', async () => {
    await rm(path.join(job.localDir, name));
    await rm(path.join(job.localDir, `${name}.sha256`));
    const before = await runCli(['--json', 'backups', 'app', '--config', configFile], { cwd: dir });
    assert.deepEqual(json<Array<{ name: string; where: string }>>(before).map((e) => [e.name, e.where]), [[name, 's3']]);

    const r = await runCli(['restore', 'app', name, '--to', path.join(dir, 'kept.db'), '--config', configFile], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    const after = await runCli(['--json', 'backups', 'app', '--config', configFile], { cwd: dir });
    assert.deepEqual(json<Array<{ name: string; where: string }>>(after).map((e) => [e.name, e.where]), [[name, 'both']]);
    assert.match(r.stdout, /from the bucket, kept as the local copy, sha256 ok \(checked against the catalog\)/);
    const local = path.join(job.localDir, name);
    assert.equal(sha256(await readFile(local)), sha);
    assert.equal(await readFile(`${local}.sha256`, 'utf8'), `${sha}  ${name}\n`);
    assert.deepEqual([mode(local), mode(`${local}.sha256`)], [0o600, 0o600]);
    assert.deepEqual((await readdir(job.localDir)).filter((f) => f.startsWith('.')), [], 'no temporary file left');
    assert.equal(makerOf(path.join(dir, 'kept.db')), 'genuine');
  });

  it('a keep_local = false job keeps no local copy of what it restores', async () => {
    const cfg = await writeConfig(dir, 'nolocal.toml', 'catalog.db', `[jobs.nolocal]\nsource = "sqlite:app.db"\ndestination = "${s3Url(bucket, 'nolocal/')}"\nkeep_local = false\n`);
    const backup = await runCli(['--json', 'backup', 'nolocal', '--config', cfg], { cwd: dir });
    assert.equal(backup.code, 0, backup.stderr);
    const r = await runCli(['--json', 'restore', 'nolocal', 'latest', '--to', path.join(dir, 'nolocal.db'), '--config', cfg], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(json<{ keptLocal: boolean }>(r).keptLocal, false);
    const localDir = findJob(await loadJobsConfig({ file: cfg }), 'nolocal').localDir;
    assert.deepEqual(await readdir(localDir), []);
    const listed = await runCli(['--json', 'backups', 'nolocal', '--config', cfg], { cwd: dir });
    assert.deepEqual(json<Array<{ where: string }>>(listed).map((e) => e.where), ['s3']);
    assert.equal(makerOf(path.join(dir, 'nolocal.db')), 'genuine');
  });

  it('reads a local copy once: hashed while it is decoded', async () => {
    const gz = await writeConfig(dir, 'gz.toml', 'catalog.db', `[jobs.gz]\nsource = "sqlite:app.db"\ncompress = "gzip"\n`);
    const gzJob = findJob(await loadJobsConfig({ file: gz }), 'gz');
    const made = await runBackupJob(gzJob);
    const opened: string[] = [];
    const original = fs.createReadStream;
    fs.createReadStream = ((file: fs.PathLike, options?: unknown) => {
      opened.push(String(file));
      return original(file, options as Parameters<typeof original>[1]);
    }) as typeof fs.createReadStream;
    syncBuiltinESMExports();
    try {
      const r = await restoreBackup(gzJob, made.name, { to: path.join(dir, 'gz.db') });
      assert.equal(r.sha256, made.sha256);
    } finally {
      fs.createReadStream = original;
      syncBuiltinESMExports();
    }
    assert.deepEqual(opened.filter((f) => f === made.localPath), [made.localPath], `the local copy was read ${opened.filter((f) => f === made.localPath).length} times`);
    assert.equal(makerOf(path.join(dir, 'gz.db')), 'genuine');
  });

  it('backups, restore, prune and status never create a catalog', async () => {
    const fresh = await tempDir('offsite-nocatalog-');
    makeDatabase(path.join(fresh, 'app.db'), 'genuine', 10);
    const cfg = await writeConfig(fresh, 'offsite.toml', 'state/catalog.db', `[jobs.app]\nsource = "sqlite:app.db"\nretention = { keep_last = 1 }\n`);
    const localJob = findJob(await loadJobsConfig({ file: cfg }), 'app');
    await runBackupJob(localJob, { now: new Date('2026-11-01T00:00:00Z') });
    await runBackupJob(localJob, { now: new Date('2026-11-02T00:00:00Z') });
    for (const args of [['backups', 'app'], ['status'], ['restore', 'app', 'latest', '--to', 'out.db'], ['prune', 'app', '--dry-run'], ['prune', 'app']]) {
      const r = await runCli([...args, '--config', cfg], { cwd: fresh });
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(existsSync(path.join(fresh, 'state')), false, `"offsite ${args.join(' ')}" created the catalog`);
    }
    assert.equal(makerOf(path.join(fresh, 'out.db')), 'genuine');
  });
});

describe('backup jobs: a restore refuses a backup Offsite did not make', () => {
  let dir: string;
  let configFile: string;
  /** The same job and bucket, with a catalog that does not exist: restores from the bucket alone. */
  let bareConfig: string;
  let job: BackupJob;
  let older: string;
  let newer: string;
  let evil: Buffer;
  const out = () => path.join(dir, 'out');

  /** The object `name` replaced with the attacker's database, with the given metadata. */
  async function replace(name: string, metadata: Record<string, string> | undefined): Promise<void> {
    const storage = openStorage(job.destinationUrl!);
    try {
      await storage.put(name, evil, metadata ? { metadata } : {});
    } finally {
      await storage.close();
    }
    await rm(path.join(job.localDir, name), { force: true });
    await rm(path.join(job.localDir, `${name}.sha256`), { force: true });
  }

  async function metadataOf(name: string): Promise<Record<string, string>> {
    const storage = openStorage(job.destinationUrl!);
    try {
      return (await storage.head(name)).metadata;
    } finally {
      await storage.close();
    }
  }

  async function assertNothingRestored(): Promise<void> {
    assert.equal(existsSync(out()), false, 'something was written at the target');
    assert.deepEqual((await readdir(dir)).filter((f) => f.startsWith('.offsite-restore')), [], 'a temporary file was left beside the target');
  }

  // Each attack on its own: a target left by another test must not decide this one.
  beforeEach(() => rm(out(), { force: true }));

  before(async () => {
    dir = await tempDir('offsite-forged-');
    const bucket = await createTestBucket('forged');
    makeDatabase(path.join(dir, 'app.db'), 'genuine');
    makeDatabase(path.join(dir, 'evil.db'), 'attacker');
    evil = await readFile(path.join(dir, 'evil.db'));
    const body = `[jobs.app]\nsource = "sqlite:app.db"\ndestination = "${s3Url(bucket, 'db/')}"\n`;
    configFile = await writeConfig(dir, 'offsite.toml', 'catalog.db', body);
    bareConfig = await writeConfig(dir, 'bare.toml', 'no-such-catalog.db', body);
    const config = await loadJobsConfig({ file: configFile });
    job = findJob(config, 'app');
    const catalog = openCatalog(config.catalogPath);
    const storage = openStorage(job.destinationUrl!);
    try {
      older = (await runBackupJob(job, { catalog, storage, now: new Date('2026-11-20T10:00:00Z') })).name;
      newer = (await runBackupJob(job, { catalog, storage, now: new Date('2026-11-21T10:00:00Z') })).name;
    } finally {
      catalog.close();
      await storage.close();
    }
  });

  it('prefers the catalog\'s SHA-256 to the local .sha256 file: a planted local copy is passed over for the bucket\'s', async () => {
    const local = path.join(job.localDir, newer);
    await writeFile(local, evil);
    await writeFile(`${local}.sha256`, `${sha256(evil)}  ${newer}\n`);
    const r = await runCli(['--json', 'restore', 'app', newer, '--to', out(), '--config', configFile], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([json<{ from: string }>(r).from, json<{ verifiedBy: string }>(r).verifiedBy], ['s3', 'catalog']);
    assert.equal(makerOf(out()), 'genuine');
    assert.notEqual(sha256(await readFile(local)), sha256(evil), 'the planted local copy was replaced by the checked download');
    await rm(out());
  });

  it('"latest" is the newest backup the catalog recorded: a newer name planted in the bucket is passed over', async () => {
    const planted = newer.replace('20261121T100000Z', '20261130T100000Z');
    assert.notEqual(planted, newer);
    const storage = openStorage(job.destinationUrl!);
    try {
      await storage.put(planted, evil);
      const r = await runCli(['--json', 'restore', 'app', 'latest', '--to', out(), '--config', configFile], { cwd: dir });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.equal(json<{ name: string }>(r).name, newer);
      assert.equal(makerOf(out()), 'genuine');
    } finally {
      await storage.delete(planted);
      await storage.close();
    }
  });

  it('with the catalog: an object replaced without metadata, or with another backup\'s, is refused (exit 8), nothing written', async () => {
    const saved = await metadataOf(newer);
    await replace(newer, undefined);
    const bare = await runCli(['restore', 'app', newer, '--to', out(), '--config', configFile], { cwd: dir });
    assert.equal(bare.code, 8, bare.stdout + bare.stderr);
    // The attacker's database has the same size: the catalog's SHA-256 tells them apart.
    assert.match(bare.stderr, /^offsite: the stored \S+ does not match its SHA-256 \([0-9a-f]{64} instead of [0-9a-f]{64}, from the catalog\): it was replaced or damaged in the bucket; nothing was restored\n$/);
    await assertNothingRestored();

    await replace(newer, await metadataOf(older));
    const copied = await runCli(['restore', 'app', 'latest', '--to', out(), '--config', configFile], { cwd: dir });
    assert.equal(copied.code, 8, copied.stdout + copied.stderr);
    await assertNothingRestored();
    // Even one of the same size and claimed hash: the catalog's SHA-256 decides.
    await replace(newer, { ...saved });
    const same = await runCli(['restore', 'app', newer, '--to', out(), '--config', configFile, '--unverified'], { cwd: dir });
    assert.equal(same.code, 8, same.stdout + same.stderr);
    await assertNothingRestored();
  });

  it('from the bucket alone: a backup whose manifest-key MAC is authentic is restored', async () => {
    await rm(path.join(job.localDir, older));
    const r = await runCli(['--json', 'restore', 'app', older, '--to', out(), '--config', bareConfig], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(json<{ verifiedBy: string }>(r).verifiedBy, 'manifest-key');
    assert.equal(makerOf(out()), 'genuine');
    assert.equal(existsSync(path.join(dir, 'no-such-catalog.db')), false);
    await rm(out());
  });

  it('from the bucket alone: no MAC is refused (exit 8) unless --unverified; another backup\'s MAC is refused always; no key: exit 2', async () => {
    await replace(newer, undefined);
    const unsigned = await runCli(['restore', 'app', newer, '--to', out(), '--config', bareConfig], { cwd: dir });
    assert.equal(unsigned.code, 8, unsigned.stdout + unsigned.stderr);
    assert.match(unsigned.stderr, /carries no MAC, so nothing proves Offsite wrote it.*pass --unverified/);
    await assertNothingRestored();
    // Asked for explicitly: restored (it is the attacker's), said so, and not kept as a local copy.
    const forced = await runCli(['restore', 'app', newer, '--to', out(), '--config', bareConfig, '--unverified'], { cwd: dir });
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stderr, /WITHOUT verification/);
    assert.equal(makerOf(out()), 'attacker');
    assert.equal(existsSync(path.join(job.localDir, newer)), false, 'an unverified download became a local copy');
    await rm(out());

    await replace(newer, await metadataOf(older));
    for (const extra of [[], ['--unverified']]) {
      const forged = await runCli(['restore', 'app', newer, '--to', out(), '--config', bareConfig, ...extra], { cwd: dir });
      assert.equal(forged.code, 8, forged.stdout + forged.stderr);
      assert.match(forged.stderr, /does not match its MAC: it was altered in the bucket/);
      await assertNothingRestored();
    }

    await rm(path.join(job.localDir, older), { force: true });
    const noKey = await runCli(['restore', 'app', older, '--to', out(), '--config', bareConfig], { cwd: dir, env: { OFFSITE_MANIFEST_KEY_FILE: path.join(dir, 'absent.key') } });
    assert.equal(noKey.code, 2, noKey.stdout + noKey.stderr);
    assert.match(noKey.stderr, /signed by manifest key [0-9a-f]{16}, which was not found here/);
    await assertNothingRestored();
  });

  it('a job that encrypts refuses an object that is not age-encrypted, even --unverified', async () => {
    const { identity, recipient } = await generateAgeIdentity();
    await writeFile(path.join(dir, 'key.txt'), identity);
    const body = `[jobs.enc]\nsource = "sqlite:app.db"\ndestination = "${job.destinationUrl!.replace('/db/', '/enc/')}"\nrecipients = ["${recipient}"]\n`;
    const encConfig = await writeConfig(dir, 'enc.toml', 'catalog.db', body);
    const encBare = await writeConfig(dir, 'enc-bare.toml', 'no-such-catalog.db', body);
    const made = await runCli(['--json', 'backup', 'enc', '--config', encConfig], { cwd: dir });
    assert.equal(made.code, 0, made.stderr);
    assert.match(json<{ name: string }>(made).name, /\.sqlite\.age$/);
    // A newer name the job's pattern also accepts, without ".age" ("latest" with the catalog
    // passes over it, so it is named; without the catalog "latest" picks it).
    const encJob = findJob(await loadJobsConfig({ file: encConfig }), 'enc');
    const storage = openStorage(encJob.destinationUrl!);
    await storage.put('enc-20991231T000000Z.sqlite', evil);
    await storage.close();
    const plain = await runCli(['restore', 'enc', 'enc-20991231T000000Z.sqlite', '--to', out(), '--identity', path.join(dir, 'key.txt'), '--config', encConfig], { cwd: dir });
    assert.equal(plain.code, 8, plain.stdout + plain.stderr);
    await assertNothingRestored();
    // Even when the user takes the risk of an unverified restore: never without decryption.
    const r = await runCli(['restore', 'enc', 'latest', '--to', out(), '--identity', path.join(dir, 'key.txt'), '--unverified', '--config', encBare], { cwd: dir });
    assert.equal(r.code, 8, r.stdout + r.stderr);
    assert.match(r.stderr, /is not age-encrypted, and backups of job enc are/);
    await assertNothingRestored();
    // The genuine one restores.
    const ok = await runCli(['restore', 'enc', json<{ name: string }>(made).name, '--to', out(), '--identity', path.join(dir, 'key.txt'), '--config', encBare], { cwd: dir });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(makerOf(out()), 'genuine');
    await rm(out());
  });
});

describe('backup jobs: a failed upload', () => {
  it('exits with its cause\'s code (4: credentials refused), prefixed "offsite: ", the local copy kept; --json gives the failure shape with the backup', async () => {
    const dir = await tempDir('offsite-upfail-');
    const bucket = await createTestBucket('upfail');
    makeDatabase(path.join(dir, 'app.db'), 'genuine', 10);
    const cfg = await writeConfig(dir, 'offsite.toml', 'catalog.db', `[jobs.app]\nsource = "sqlite:app.db"\ndestination = "${s3Url(bucket)}"\n`);
    const wrong = { AWS_SECRET_ACCESS_KEY: 'wrong-secret' };
    const human = await runCli(['backup', 'app', '--config', cfg], { cwd: dir, env: wrong });
    assert.equal(human.code, 4, human.stderr);
    assert.match(human.stderr, /^offsite: upload failed: s3: .*rejected the credentials.*; the local copy \S+ is kept and listed as "local"\n$/m);
    assert.match(human.stdout, /NOT uploaded/);

    const r = await runCli(['--json', 'backup', 'app', '--config', cfg], { cwd: dir, env: wrong });
    assert.equal(r.code, 4, r.stderr);
    const failure = json<{ ok: boolean; error: { code: string; message: string; backup: { localPath: string; sha256: string; uploaded: boolean } } }>(r);
    assert.equal(failure.ok, false);
    assert.equal(failure.error.code, 'InvalidCredentials');
    assert.match(failure.error.message, /^upload failed: /);
    assert.equal(failure.error.backup.uploaded, false);
    assert.equal(sha256(await readFile(failure.error.backup.localPath)), failure.error.backup.sha256, 'the kept local copy is whole');
    assert.ok(!r.stdout.includes('wrong-secret') && !r.stderr.includes('wrong-secret'));
  });
});

describe('backup jobs: private files whatever the umask', () => {
  it('under umask 000, a run makes 0700 directories and 0600 files (copy, .sha256, catalog, key), and a restore a 0600 file', async () => {
    const dir = await tempDir('offsite-umask-');
    const bucket = await createTestBucket('umask');
    makeDatabase(path.join(dir, 'app.db'), 'genuine', 10);
    const cfg = await writeConfig(dir, 'offsite.toml', 'state/catalog.db', `[jobs.app]\nsource = "sqlite:app.db"\ndestination = "${s3Url(bucket)}"\ncompress = "gzip"\n`);
    const key = path.join(dir, 'keys', 'manifest.key');
    process.env.OFFSITE_MANIFEST_KEY_FILE = key;
    try {
      const r = await runCliUmask000(['--json', 'backup', 'app', '--config', cfg], dir);
      assert.equal(r.code, 0, r.stderr);
      const { localPath } = json<{ localPath: string }>(r);
      assert.deepEqual(
        [path.join(dir, '.offsite'), path.join(dir, '.offsite/backups'), path.join(dir, '.offsite/backups/app'), path.join(dir, 'state')].map(mode),
        [0o700, 0o700, 0o700, 0o700],
      );
      assert.deepEqual([localPath, `${localPath}.sha256`, path.join(dir, 'state/catalog.db')].map(mode), [0o600, 0o600, 0o600]);
      assert.deepEqual([path.join(dir, 'keys'), key].map(mode), [0o700, 0o600]);
      assert.match(r.stderr, /created the manifest key .*keys\/manifest\.key: .*Keep a copy with your age identity/);
      await rm(localPath); // so the restore downloads, checks and keeps it
      const restored = await runCliUmask000(['restore', 'app', 'latest', '--to', 'restored.db', '--config', cfg], dir);
      assert.equal(restored.code, 0, restored.stderr);
      assert.deepEqual([mode(path.join(dir, 'restored.db')), mode(localPath)], [0o600, 0o600]);
      assert.equal(makerOf(path.join(dir, 'restored.db')), 'genuine');

      // A plain copy (no gzip, no age) is the snapshot itself, moved into place: private too.
      await writeFile(cfg, `${await readFile(cfg, 'utf8')}[jobs.plain]\nsource = "sqlite:app.db"\n`);
      const plain = await runCliUmask000(['--json', 'backup', 'plain', '--config', cfg], dir);
      assert.equal(plain.code, 0, plain.stderr);
      const copy = json<{ localPath: string; sha256: string }>(plain);
      assert.deepEqual([copy.localPath, `${copy.localPath}.sha256`, path.join(dir, '.offsite/backups/plain')].map(mode), [0o600, 0o600, 0o700]);
      assert.equal(sha256(await readFile(copy.localPath)), copy.sha256);
      assert.equal(makerOf(copy.localPath), 'genuine');
      assert.deepEqual((await readdir(path.join(dir, '.offsite/backups/plain'))).filter((f) => f.startsWith('.offsite-tmp-')), [], 'no work directory left');
    } finally {
      process.env.OFFSITE_MANIFEST_KEY_FILE = manifestKeyFile;
    }
  });
});
