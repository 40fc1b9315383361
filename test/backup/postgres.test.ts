// PostgreSQL dumps and restores against a real server started for this file (scripts/postgres.mjs,
// Debian's PostgreSQL tools): a dump restored into a fresh database holds the same rows; the
// password stays off command lines and out of errors; failures get the right code; an abort
// kills pg_dump.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { inspect } from 'node:util';
import {
  describePostgresTarget,
  dumpPostgres,
  isPostgresError,
  redactPostgresUrl,
  restorePostgres,
  type PostgresErrorCode,
  type PostgresTarget,
} from '../../src/backup/jobs/postgres.js';
import { rejectsWithCode } from '../support/assert.js';
import { runCli } from '../support/cli.js';
import { readAll } from '../support/data.js';
import { createTestBucket, s3ChildEnv, s3Url } from '../support/env.js';
import { openStorage } from '../../src/storage/index.js';
import { useTestManifestKey } from './job-support.js';

await useTestManifestKey();
// S3 credentials in our environment, as a deployment has them: they must not reach the PostgreSQL tools.
Object.assign(process.env, s3ChildEnv());

interface PostgresServer {
  host: string;
  port: number;
  socketDir: string;
  user: string;
  password: string;
  dir: string;
  url: string;
  stop(): Promise<void>;
}
interface PostgresHarness {
  startPostgres(opts?: { quiet?: boolean }): Promise<PostgresServer>;
  postgresBinDir(): string | undefined;
}
// scripts/ is plain JavaScript without type declarations: import it by URL, typed here.
const harnessUrl = new URL('../../scripts/postgres.mjs', import.meta.url).href;
const { startPostgres, postgresBinDir } = (await import(harnessUrl)) as PostgresHarness;

const SOURCE_DB = 'offsite_src';
const TABLES = ['numbers', 'texts', 'blobs', 'events', 'big'] as const;
// A second login whose password needs escaping everywhere: in a URL, in a passfile, in SQL.
const ODD_USER = 'backup user';
const ODD_PASSWORD = `p@ss:w/o\\rd%${randomBytes(4).toString('hex')}`;

const SCHEMA_AND_DATA = `
CREATE TABLE numbers (id int PRIMARY KEY, small smallint, big bigint, exact numeric(20,5), flag boolean, approx double precision);
INSERT INTO numbers SELECT g, (g % 30000)::smallint, g::bigint * 1000000007, g / 7.0, g % 2 = 0, g * 0.25 FROM generate_series(1, 500) g;

CREATE TABLE texts (id int PRIMARY KEY, body text, note varchar(50));
INSERT INTO texts VALUES
  (1, 'héllo wörld', 'latin'), (2, '日本語のテキスト', 'cjk'), (3, 'emoji 🎉🐘', 'astral plane'),
  (4, E'tab\\there\\nnew line', 'control'), (5, '', 'empty'), (6, NULL, 'null'),
  (7, 'quote '' and \\ backslash', 'quotes'), (8, repeat('ü', 100000), 'long, toasted');

CREATE TABLE blobs (id int PRIMARY KEY, data bytea);
INSERT INTO blobs SELECT g, decode(md5(g::text) || md5((g * 2)::text), 'hex') FROM generate_series(1, 100) g;
INSERT INTO blobs VALUES (101, '\\x00ff00'::bytea), (102, ''::bytea), (103, NULL);
INSERT INTO blobs SELECT 104, string_agg(decode(md5(g::text), 'hex'), ''::bytea) FROM generate_series(1, 65536) g;

CREATE TABLE events (id int PRIMARY KEY, at timestamptz, local_at timestamp, day date, span interval);
INSERT INTO events SELECT g, timestamptz '2024-02-29 12:34:56.789+01' + g * interval '1 hour 7 minutes',
  timestamp '1999-12-31 23:59:59.999999' + g * interval '1 day', date '2000-01-01' + g, g * interval '90 seconds'
  FROM generate_series(1, 200) g;

CREATE TABLE big (id bigserial PRIMARY KEY, label text NOT NULL, amount numeric, created timestamptz);
CREATE INDEX big_label ON big (label);
INSERT INTO big (label, amount, created) SELECT 'row ' || g || ' ✓', g * 1.5, timestamptz '2020-01-01 00:00:00+00' + g * interval '1 minute'
  FROM generate_series(1, 10000) g;
`;

describe('PostgreSQL dump and restore', () => {
  let pg: PostgresServer;
  let binDir: string;
  let work: string;

  /** Runs SQL through psql on the server's unix socket (trusted: no password); returns stdout. */
  function psql(database: string, sql: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = spawn(path.join(binDir, 'psql'), ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', pg.socketDir, '-p', String(pg.port), '-U', pg.user, '-d', database], {
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
      child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`psql exit ${code}: ${err}`))));
      child.stdin.end(sql);
    });
  }

  /** Per test table: its row count and an md5 over every row in id order; and the sequence. */
  async function digests(database: string): Promise<Record<string, string>> {
    const perTable = TABLES.map((table) => `SELECT '${table}', count(*) || ' ' || md5(string_agg(t::text, ',' ORDER BY id)) FROM ${table} t`);
    const rows = await psql(database, [...perTable, "SELECT 'big_id_seq', last_value::text FROM big_id_seq"].join(' UNION ALL '));
    return Object.fromEntries(rows.split('\n').map((line) => line.split('|') as [string, string]));
  }

  async function databaseExists(name: string): Promise<boolean> {
    return (await psql('postgres', `SELECT count(*) FROM pg_database WHERE datname = '${name}'`)) === '1';
  }

  function urlFor(database: string, password = pg.password): string {
    return `postgresql://${pg.user}:${encodeURIComponent(password)}@${pg.host}:${pg.port}/${database}`;
  }

  async function dumpToFile(target: PostgresTarget, file: string): Promise<void> {
    const { stream, done } = dumpPostgres(target);
    await pipeline(stream, createWriteStream(file));
    await done;
  }

  const rejectsWithPostgresCode = (p: Promise<unknown>, code: PostgresErrorCode): Promise<Error> =>
    rejectsWithCode(p, (e): e is Error & { code: PostgresErrorCode } => isPostgresError(e), code);

  /** pids of our own children running `name` (read from /proc: pid (comm) state ppid ...). */
  function childPids(name: string): number[] {
    return readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .flatMap((d) => {
        try {
          const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
          const commEnd = stat.lastIndexOf(')');
          const comm = stat.slice(stat.indexOf('(') + 1, commEnd);
          const ppid = Number(stat.slice(commEnd + 2).split(' ')[1]);
          return ppid === process.pid && comm === name ? [Number(d)] : [];
        } catch {
          return []; // exited meanwhile
        }
      });
  }

  function isAlive(pid: number): boolean {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Holds an ACCESS EXCLUSIVE lock on `table` from another session, so that a pg_dump started
   * meanwhile waits on it: a pg_dump that is certainly still running, to look at or to abort.
   */
  async function holdLock(database: string, table: string): Promise<{ release(): Promise<void> }> {
    const holder: ChildProcess = spawn(path.join(binDir, 'psql'), ['-X', '-q', '-h', pg.socketDir, '-p', String(pg.port), '-U', pg.user, '-d', database], {
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    const exited = new Promise<void>((resolve) => holder.once('close', () => resolve()));
    holder.stdin?.write(`BEGIN; LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE;\n`);
    const release = async (): Promise<void> => {
      if (holder.exitCode === null && holder.signalCode === null) {
        holder.stdin?.end('COMMIT;\n');
        await Promise.race([exited, sleep(5000).then(() => holder.kill('SIGKILL'))]);
      }
    };
    try {
      await waitFor(async () => (await psql(database, `SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = '${table}' AND l.mode = 'AccessExclusiveLock' AND l.granted`)) === '1', 'the lock');
    } catch (e) {
      await release();
      throw e;
    }
    return { release };
  }

  async function waitFor(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
      await sleep(25);
    }
  }

  /** Waits until pg_dump is blocked on the lock; returns its pid. */
  async function blockedPgDump(): Promise<number> {
    await waitFor(async () => (await psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump' AND wait_event_type = 'Lock'")) === '1', 'pg_dump to wait on the lock');
    const pids = childPids('pg_dump');
    assert.equal(pids.length, 1, `expected one pg_dump child, found ${pids.join(', ')}`);
    return pids[0]!;
  }

  before(async () => {
    const t0 = Date.now();
    pg = await startPostgres();
    binDir = postgresBinDir() ?? assert.fail('no PostgreSQL bin directory');
    work = await mkdtemp(path.join(tmpdir(), 'offsite-pg-test-'));
    await psql('postgres', `CREATE DATABASE ${SOURCE_DB}; CREATE ROLE "${ODD_USER}" LOGIN SUPERUSER PASSWORD '${ODD_PASSWORD}';`);
    await psql(SOURCE_DB, SCHEMA_AND_DATA);
    console.error(`# PostgreSQL started and filled in ${Date.now() - t0} ms`);
  });

  after(async () => {
    await pg?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('dumps to custom format and restores into a fresh database it creates, row for row', async () => {
    const file = path.join(work, 'src.dump');
    await dumpToFile({ url: urlFor(SOURCE_DB) }, file);
    assert.equal((await readFile(file)).subarray(0, 5).toString(), 'PGDMP', 'custom-format magic');

    assert.equal(await databaseExists('offsite_restored'), false);
    await restorePostgres({ url: urlFor('offsite_restored') }, file, { createDatabase: true });
    const expected = await digests(SOURCE_DB);
    assert.deepEqual(await digests('offsite_restored'), expected);
    assert.equal(Object.keys(expected).length, TABLES.length + 1);
    assert.match(expected.big ?? '', /^10000 [0-9a-f]{32}$/);
    assert.equal(expected.big_id_seq, '10000');

    // Again over the restored copy: --clean --if-exists replaces what is there, and an existing
    // database is no reason for createDatabase to fail.
    await psql('offsite_restored', "DELETE FROM big WHERE id > 5000; UPDATE texts SET body = 'changed' WHERE id = 1; CREATE TABLE extra (id int);");
    await restorePostgres({ url: urlFor('offsite_restored') }, file, { createDatabase: true, clean: true });
    assert.deepEqual(await digests('offsite_restored'), expected);
  });

  it('takes the connection from PG* variables, with a password that needs escaping in the passfile', async () => {
    const env = { PGHOST: pg.host, PGPORT: String(pg.port), PGUSER: ODD_USER, PGPASSWORD: ODD_PASSWORD, PGDATABASE: SOURCE_DB };
    assert.equal(describePostgresTarget({ env }), `${pg.host}:${pg.port}/${SOURCE_DB} (user ${ODD_USER})`);
    const file = path.join(work, 'env.dump');
    await dumpToFile({ env }, file);
    await restorePostgres({ env: { ...env, PGDATABASE: 'offsite_from_env' } }, file, { createDatabase: true });
    assert.deepEqual(await digests('offsite_from_env'), await digests(SOURCE_DB));

    // The same user and password in a URL, percent-encoded.
    const url = `postgresql://${encodeURIComponent(ODD_USER)}:${encodeURIComponent(ODD_PASSWORD)}@${pg.host}:${pg.port}/${SOURCE_DB}?application_name=offsite-test`;
    assert.equal(describePostgresTarget({ url }), `${pg.host}:${pg.port}/${SOURCE_DB} (user ${ODD_USER})`);
    const viaUrl = await readAll(dumpPostgres({ url }).stream);
    assert.equal(viaUrl.subarray(0, 5).toString(), 'PGDMP');
  });

  it('keeps the password off pg_dump\'s command line, in a 0600 passfile removed afterwards', async () => {
    const lock = await holdLock(SOURCE_DB, 'big');
    try {
      const { stream, done } = dumpPostgres({ url: urlFor(SOURCE_DB) });
      const body = readAll(stream);
      const pid = await blockedPgDump();
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      assert.ok(cmdline.includes('--format=custom') && cmdline.includes('--no-password'), cmdline.join(' '));
      assert.ok(cmdline.includes(`--dbname=postgresql://${pg.user}@${pg.host}:${pg.port}/${SOURCE_DB}`), cmdline.join(' '));
      assert.ok(!cmdline.join(' ').includes(pg.password), 'the password is on the command line');

      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      assert.ok(!environ.some((v) => v.startsWith('PGPASSWORD=')), 'PGPASSWORD reached pg_dump');
      const passfile = environ.find((v) => v.startsWith('PGPASSFILE='))?.slice('PGPASSFILE='.length) ?? assert.fail('no PGPASSFILE');
      assert.equal(statSync(passfile).mode & 0o777, 0o600);
      assert.equal(statSync(path.dirname(passfile)).mode & 0o777, 0o700);

      await lock.release();
      await done;
      assert.equal((await body).subarray(0, 5).toString(), 'PGDMP');
      assert.equal(existsSync(path.dirname(passfile)), false, 'the passfile outlived pg_dump');
    } finally {
      await lock.release();
    }
  });

  it('keeps sslpassword off the command line (a 0600 service file) and gives pg_dump none of Offsite\'s secrets', async () => {
    const sslPassword = `key-pass-${randomBytes(6).toString('hex')}`;
    const planted = { AWS_SECRET_ACCESS_KEY: `aws-${randomBytes(6).toString('hex')}`, OFFSITE_SYNC_TOKEN: `sync-${randomBytes(6).toString('hex')}` };
    const saved = { AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY, OFFSITE_SYNC_TOKEN: process.env.OFFSITE_SYNC_TOKEN };
    Object.assign(process.env, planted);
    const lock = await holdLock(SOURCE_DB, 'big');
    try {
      const { stream, done } = dumpPostgres({ url: `${urlFor(SOURCE_DB)}?sslpassword=${encodeURIComponent(sslPassword)}` });
      const body = readAll(stream);
      const pid = await blockedPgDump();
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
      assert.ok(!cmdline.includes(sslPassword) && !cmdline.includes('sslpassword'), cmdline);
      assert.ok(!cmdline.includes(pg.password), 'the password is on the command line');

      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      for (const [name, value] of Object.entries(planted)) {
        assert.ok(!environ.some((v) => v.startsWith(`${name}=`) || v.includes(value)), `${name} reached pg_dump`);
      }
      assert.ok(!environ.some((v) => v.startsWith('AWS_') || v.startsWith('OFFSITE_')), environ.filter((v) => /^(AWS|OFFSITE)_/.test(v)).join(' '));
      assert.ok(environ.some((v) => v.startsWith('PATH=')), 'pg_dump still gets PATH');
      const serviceFile = environ.find((v) => v.startsWith('PGSERVICEFILE='))?.slice('PGSERVICEFILE='.length) ?? assert.fail('no PGSERVICEFILE');
      assert.ok(environ.includes('PGSERVICE=offsite'));
      assert.equal(statSync(serviceFile).mode & 0o777, 0o600);
      assert.equal(readFileSync(serviceFile, 'utf8'), `[offsite]\nsslpassword=${sslPassword}\n`);

      await lock.release();
      await done; // libpq took the service file (an unknown keyword in it would fail the connection)
      assert.equal((await body).subarray(0, 5).toString(), 'PGDMP');
      assert.equal(existsSync(serviceFile), false, 'the service file outlived pg_dump');
    } finally {
      await lock.release();
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  it('kills pg_dump when the signal aborts, or when the consumer destroys the stream', async () => {
    const lock = await holdLock(SOURCE_DB, 'big');
    try {
      const controller = new AbortController();
      const aborted = dumpPostgres({ url: urlFor(SOURCE_DB) }, { signal: controller.signal });
      const streamFailed = readAll(aborted.stream).then(
        () => assert.fail('the stream of an aborted dump ended as if it were whole'),
        (e: unknown) => e,
      );
      const pid = await blockedPgDump();
      controller.abort();
      await assert.rejects(aborted.done, { name: 'AbortError' });
      assert.equal(isAlive(pid), false, 'pg_dump still runs after the abort');
      assert.equal((await streamFailed as Error).name, 'AbortError');

      const abandoned = dumpPostgres({ url: urlFor(SOURCE_DB) });
      const pid2 = await blockedPgDump();
      abandoned.stream.destroy();
      await assert.rejects(abandoned.done, (e: unknown) => isPostgresError(e, 'DumpFailed'));
      assert.equal(isAlive(pid2), false, 'pg_dump still runs after its stream was destroyed');
    } finally {
      await lock.release();
    }
  });

  it('says AuthFailed for a wrong password, and shows neither password anywhere', async () => {
    const wrong = `Wr0ng-${randomBytes(8).toString('hex')}`;
    const { stream, done } = dumpPostgres({ url: urlFor(SOURCE_DB, wrong) });
    const streamError = readAll(stream).catch((e: unknown) => e);
    const e = await rejectsWithPostgresCode(done, 'AuthFailed');
    assert.equal(await streamError, e, 'the stream fails with the same error');
    assert.match(e.message, new RegExp(`${pg.host}:${pg.port}/${SOURCE_DB}`));
    assert.match(e.message, /password authentication failed/);
    const everything = `${inspect(e, { depth: 5 })} ${e.stack ?? ''} ${JSON.stringify(e)}`;
    assert.ok(!everything.includes(wrong), 'the wrong password leaked into the error');
    assert.ok(!everything.includes(pg.password), 'the real password leaked into the error');

    const restoreError = await rejectsWithPostgresCode(
      restorePostgres({ url: urlFor('offsite_never', wrong) }, path.join(work, 'src.dump'), { createDatabase: true }),
      'AuthFailed',
    );
    assert.ok(!`${inspect(restoreError)} ${restoreError.stack ?? ''}`.includes(wrong));
  });

  it('says ConnectionFailed for a database that does not exist, or a server that is not there', async () => {
    const missing = dumpPostgres({ url: urlFor('no_such_db') });
    void readAll(missing.stream).catch(() => {});
    const e = await rejectsWithPostgresCode(missing.done, 'ConnectionFailed');
    assert.match(e.message, /database "no_such_db" does not exist/);

    const closedPort = pg.port === 1 ? 2 : 1; // below 1024, where nothing of ours listens
    const nowhere = dumpPostgres({ url: `postgresql://${pg.user}:${pg.password}@127.0.0.1:${closedPort}/x` });
    void readAll(nowhere.stream).catch(() => {});
    const e2 = await rejectsWithPostgresCode(nowhere.done, 'ConnectionFailed');
    assert.match(e2.message, /127\.0\.0\.1:1\/x/);
    assert.ok(!inspect(e2).includes(pg.password));
  });

  it('says ToolMissing, naming the Debian package, when pg_dump is not installed', async () => {
    const { stream, done } = dumpPostgres({ url: urlFor(SOURCE_DB) }, { pgDumpPath: '/nonexistent/bin/pg_dump' });
    void readAll(stream).catch(() => {});
    const e = await rejectsWithPostgresCode(done, 'ToolMissing');
    assert.match(e.message, /postgresql-client/);
  });

  it('says RestoreFailed for a file that is not a dump, and InvalidUrl for a URL that is not one', async () => {
    const junk = path.join(work, 'junk.dump');
    await writeFile(junk, 'not a dump at all\n');
    const e = await rejectsWithPostgresCode(restorePostgres({ url: urlFor(SOURCE_DB) }, junk), 'RestoreFailed');
    assert.match(e.message, /pg_restore into/);
    assert.throws(() => dumpPostgres({ url: `mysql://root:${pg.password}@127.0.0.1/x` }), (err: unknown) => isPostgresError(err, 'InvalidUrl') && !err.message.includes(pg.password));
  });
  it('as a backup job through the CLI: pg_dump to the bucket only, listed as s3, restored --into a new database, no password anywhere', async () => {
    const bucket = await createTestBucket('pgjob');
    const dir = path.join(work, 'job');
    await mkdir(dir);
    // The password stays out of the config file: libpq's PG* variables carry the connection.
    await writeFile(
      path.join(dir, 'offsite.toml'),
      `[catalog]\npath = "catalog.db"\n[jobs.pg]\nsource = "postgres:"\ndestination = "${s3Url(bucket, 'pg/')}"\nkeep_local = false\ncompress = "gzip"\n`,
    );
    const env = { ...s3ChildEnv(), PGHOST: pg.host, PGPORT: String(pg.port), PGUSER: ODD_USER, PGPASSWORD: ODD_PASSWORD, PGDATABASE: SOURCE_DB };
    const backup = await runCli(['--json', 'backup', 'pg'], { cwd: dir, env });
    assert.equal(backup.code, 0, backup.stderr);
    const run = JSON.parse(backup.stdout) as { name: string; uploaded: boolean; sha256: string };
    assert.equal(run.uploaded, true);
    assert.match(run.name, /^pg-\d{8}T\d{6}Z\.dump\.gz$/);

    const listed = await runCli(['--json', 'backups', 'pg'], { cwd: dir, env });
    assert.deepEqual((JSON.parse(listed.stdout) as Array<{ name: string; where: string }>).map((e) => [e.name, e.where]), [[run.name, 's3']]);

    // --into with a URL that names the new database; the password comes from PGPASSWORD.
    const into = `postgresql://${encodeURIComponent(ODD_USER)}@${pg.host}:${pg.port}/offsite_from_job`;
    const restore = await runCli(['restore', 'pg', 'latest', '--into', into], { cwd: dir, env });
    assert.equal(restore.code, 0, restore.stderr);
    assert.match(restore.stdout, /from the bucket, sha256 ok \(checked against the catalog\).*pg_restore --list ok \(\d+ entries\); pg_restore ok/);
    assert.deepEqual(await digests('offsite_from_job'), await digests(SOURCE_DB));

    // Into a database that already has the tables: refused without --force, replaced with it.
    const again = await runCli(['restore', 'pg', run.name, '--into', into], { cwd: dir, env });
    assert.equal(again.code, 1, again.stdout);
    assert.match(again.stderr, /already exists/);
    await psql('offsite_from_job', 'DELETE FROM big WHERE id > 100');
    const forced = await runCli(['restore', 'pg', run.name, '--into', into, '--force'], { cwd: dir, env });
    assert.equal(forced.code, 0, forced.stderr);
    assert.deepEqual(await digests('offsite_from_job'), await digests(SOURCE_DB));

    // --into is for PostgreSQL jobs only, and --to writes the dump file itself.
    const toFile = await runCli(['restore', 'pg', run.name, '--to', path.join(dir, 'copy.dump')], { cwd: dir, env });
    assert.equal(toFile.code, 0, toFile.stderr);
    assert.equal((await readFile(path.join(dir, 'copy.dump'))).subarray(0, 5).toString(), 'PGDMP');

    // The password reached neither the outputs, nor the catalog, nor any file the job wrote.
    const outputs = [backup, listed, restore, again, forced, toFile].map((r) => r.stdout + r.stderr).join('\n');
    assert.ok(!outputs.includes(ODD_PASSWORD), 'password in CLI output');
    for (const file of await readdir(dir, { recursive: true })) {
      const full = path.join(dir, file);
      if (statSync(full).isFile()) assert.ok(!(await readFile(full)).includes(ODD_PASSWORD), `password in ${file}`);
    }
  });

  it('a wrong PGPASSWORD makes "offsite backup" exit 4 (credentials refused), the password nowhere', async () => {
    const dir = path.join(work, 'authjob');
    await mkdir(dir);
    await writeFile(path.join(dir, 'offsite.toml'), `[catalog]\npath = "catalog.db"\n[jobs.pg]\nsource = "postgres:"\n`);
    const wrong = `Wr0ng-${randomBytes(8).toString('hex')}`;
    const env = { PGHOST: pg.host, PGPORT: String(pg.port), PGUSER: ODD_USER, PGPASSWORD: wrong, PGDATABASE: SOURCE_DB };
    for (const args of [['backup', 'pg'], ['--json', 'backup', 'pg']]) {
      const r = await runCli(args, { cwd: dir, env });
      assert.equal(r.code, 4, r.stdout + r.stderr);
      assert.match(r.stderr, /^offsite: job pg: pg_dump of .*: authentication refused: .*password authentication failed/);
      assert.ok(!(r.stdout + r.stderr).includes(wrong));
      if (args[0] === '--json') assert.equal((JSON.parse(r.stdout) as { error: { code: string } }).error.code, 'AuthFailed');
    }
  });

  it('restore --into never runs pg_restore on a dump somebody else put in the bucket (exit 8), with the catalog or without', async () => {
    const bucket = await createTestBucket('pgforged');
    const dir = path.join(work, 'forged');
    await mkdir(dir);
    const body = `[jobs.pg]\nsource = "postgres:"\ndestination = "${s3Url(bucket, 'pg/')}"\nkeep_local = false\n`;
    await writeFile(path.join(dir, 'offsite.toml'), `[catalog]\npath = "catalog.db"\n${body}`);
    await writeFile(path.join(dir, 'bare.toml'), `[catalog]\npath = "none/catalog.db"\n${body}`);
    const env = { ...s3ChildEnv(), PGHOST: pg.host, PGPORT: String(pg.port), PGUSER: ODD_USER, PGPASSWORD: ODD_PASSWORD, PGDATABASE: SOURCE_DB };
    const older = await runCli(['--json', 'backup', 'pg'], { cwd: dir, env });
    assert.equal(older.code, 0, older.stderr);
    await sleep(1100); // another timestamp, another name
    const newer = await runCli(['--json', 'backup', 'pg'], { cwd: dir, env });
    assert.equal(newer.code, 0, newer.stderr);
    const name = (JSON.parse(newer.stdout) as { name: string }).name;

    // The attacker's dump: a valid pg_dump archive whose restore would run their SQL.
    await psql('postgres', 'CREATE DATABASE offsite_evil_src');
    await psql('offsite_evil_src', 'CREATE TABLE pwned (who text); INSERT INTO pwned VALUES (\'attacker\')');
    const evilDump = path.join(work, 'evil.dump');
    await dumpToFile({ url: urlFor('offsite_evil_src') }, evilDump);
    const storage = openStorage(s3Url(bucket, 'pg/'));
    const olderMeta = (await storage.head((JSON.parse(older.stdout) as { name: string }).name)).metadata;
    const attempts: Array<[string, Record<string, string> | undefined]> = [
      ['offsite.toml', undefined],
      ['offsite.toml', olderMeta],
      ['bare.toml', undefined],
      ['bare.toml', olderMeta],
    ];
    try {
      for (const [config, metadata] of attempts) {
        await storage.put(name, await readFile(evilDump), metadata ? { metadata } : {});
        const into = `postgresql://${encodeURIComponent(ODD_USER)}@${pg.host}:${pg.port}/offsite_forged`;
        const r = await runCli(['restore', 'pg', 'latest', '--into', into, '--config', config], { cwd: dir, env });
        assert.equal(r.code, 8, `${config} ${metadata ? 'with copied metadata' : 'without metadata'}: ${r.stdout}${r.stderr}`);
        assert.equal(await databaseExists('offsite_forged'), false, 'the restore created the target database');
      }
    } finally {
      await storage.close();
    }
    assert.equal(existsSync(path.join(dir, 'none')), false);
  });
});

describe('redactPostgresUrl', () => {
  it('hides the password wherever a URL can hold one', () => {
    assert.equal(redactPostgresUrl('postgresql://u:secret@db.example:5432/app'), 'postgresql://u:***@db.example:5432/app');
    assert.equal(redactPostgresUrl('postgres://u:se/cr@et@h/db?sslmode=require'), 'postgres://u:***@h/db?sslmode=require');
    assert.equal(redactPostgresUrl('postgresql://h/db?user=u&password=secret&sslpassword=key'), 'postgresql://h/db?user=u&password=***&sslpassword=***');
    assert.equal(redactPostgresUrl('postgresql://u@h/db'), 'postgresql://u@h/db');
    assert.equal(redactPostgresUrl('postgresql://h:5432/db?options=a@b'), 'postgresql://h:5432/db?options=a@b');
  });

  it('describes a target without its password', () => {
    assert.equal(describePostgresTarget({ url: 'postgresql://u:secret@db.example:6543/app', env: {} }), 'db.example:6543/app (user u)');
    assert.equal(describePostgresTarget({ url: 'postgresql://[::1]/app?user=v&password=secret', env: {} }), '[::1]/app (user v)');
  });
});
