// Fire-and-forget backups while the bucket is unreachable, for `offsite daemon` and for
// startBackupLoop() inside a small host app. "RGW stopped" is the FAKE fault proxy in front of
// the real RGW closing its port (connections refused, as from a stopped server): the shared
// RGW of the test run cannot be stopped without failing the other files. When the proxy
// listens again, requests go through to the real RGW untouched.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import Database from 'better-sqlite3';
import { startBackupLoop } from '../../src/backup/jobs/index.js';
import { openCatalog } from '../../src/catalog/index.js';
import { openStorage, type Storage } from '../../src/storage/index.js';
import { OFFSITE_BIN, runCli } from '../support/cli.js';
import { adminClient, createTestBucket, s3ChildEnv, s3TestServer, s3Url, tempDir } from '../support/env.js';
import { readAll } from '../support/data.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { useTestManifestKey } from './job-support.js';

await useTestManifestKey();

Object.assign(process.env, s3ChildEnv());
const repoRoot = path.resolve(import.meta.dirname, '../..');

function makeDatabase(file: string, rows: number): void {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)');
  const ins = db.prepare('INSERT INTO rows (payload) VALUES (?)');
  db.transaction(() => {
    for (let i = 1; i <= rows; i++) ins.run(`row ${i} `.padEnd(500, '.'));
  })();
  db.close();
}

/** Collects a child's output lines; waitFor() resolves when a line matches, or fails after a timeout. */
function watchLines(child: ChildProcess, stream: 'stdout' | 'stderr'): { lines: string[]; waitFor(test: (lines: string[]) => boolean, what: string, timeoutMs?: number): Promise<void> } {
  const lines: string[] = [];
  let rest = '';
  child[stream]!.setEncoding('utf8').on('data', (s: string) => {
    const parts = (rest + s).split('\n');
    rest = parts.pop()!;
    lines.push(...parts);
  });
  return {
    lines,
    async waitFor(test, what, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (!test(lines)) {
        if (child.exitCode !== null || child.signalCode !== null) assert.fail(`the process ended (${child.exitCode ?? child.signalCode}) while waiting for ${what}; ${stream}:\n${lines.join('\n')}`);
        if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}; ${stream}:\n${lines.join('\n')}`);
        await sleep(50);
      }
    },
  };
}

async function objectKeys(storage: Storage): Promise<string[]> {
  const keys: string[] = [];
  for await (const e of storage.list()) if (e.type === 'object') keys.push(e.key);
  return keys;
}

const exited = (child: ChildProcess) => new Promise<number | string>((resolve) => child.once('close', (code, signal) => resolve(code ?? signal ?? -1)));

interface DaemonEvent {
  type: string;
  job?: string;
  code?: string;
  error?: string;
  nextRunAt?: string;
  result?: { name: string; uploaded: boolean; sha256: string };
}

describe('offsite daemon while the bucket is unreachable (FAKE proxy closes its port)', () => {
  const children: ChildProcess[] = [];
  after(() => children.forEach((c) => c.kill('SIGKILL')));

  it('keeps running and logging failures, uploads at the first tick after the bucket is back, and SIGTERM aborts an upload cleanly', async () => {
    const dir = await tempDir('offsite-daemon-');
    const bucket = await createTestBucket('daemon');
    makeDatabase(path.join(dir, 'app.db'), 40_000); // ~20 MB: a multipart upload
    const proxy = await FaultProxy.start(s3TestServer().endpoint);
    const direct = openStorage(s3Url(bucket));
    try {
      await proxy.down();
      const url = `s3://${bucket}/db/?endpoint=${encodeURIComponent(proxy.endpoint)}&region=us-east-1&path_style=true`;
      // A second job that always fails (its database is missing) must not disturb the first.
      await writeFile(
        path.join(dir, 'offsite.toml'),
        `[catalog]\npath = "catalog.db"\n[jobs.app]\nsource = "sqlite:app.db"\ndestination = "${url}"\nschedule = "1s"\n[jobs.broken]\nsource = "sqlite:missing.db"\nschedule = "1s"\n`,
      );
      const daemon = spawn(process.execPath, [OFFSITE_BIN, '--json', 'daemon'], { cwd: dir, env: { ...process.env, ...s3ChildEnv() }, stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(daemon);
      const out = watchLines(daemon, 'stdout');
      const log = watchLines(daemon, 'stderr');
      const events = () => out.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as DaemonEvent);
      const failuresOf = (job: string) => events().filter((e) => e.type === 'run-failed' && e.job === job);

      // Several ticks with the bucket down: each fails, is logged with the next try, and the
      // daemon lives on; the local copies are kept.
      await out.waitFor(() => failuresOf('app').length >= 3 && failuresOf('broken').length >= 3, 'three failed ticks of each job');
      for (const e of failuresOf('app').slice(0, 3)) {
        // The cause's code: the bucket is unreachable (exit code 7 for `offsite backup`).
        assert.equal(e.code, 'Transient', JSON.stringify(e));
        assert.match(e.error!, /local copy kept/);
        assert.ok(e.nextRunAt, 'the failure says when the next try is');
      }
      assert.equal(failuresOf('broken')[0]!.code, 'SourceMissing');
      assert.equal(daemon.exitCode, null, 'the daemon is still running');
      const localCopies = (await readdir(path.join(dir, '.offsite/backups/app'))).filter((f) => f.endsWith('.sqlite'));
      assert.ok(localCopies.length >= 3, `local copies kept: ${localCopies.join(', ')}`);
      assert.deepEqual(await objectKeys(direct), [], 'nothing reached the bucket');

      // The bucket is back: the next tick uploads.
      await proxy.up();
      await out.waitFor(() => events().some((e) => e.type === 'run-ok' && e.job === 'app' && e.result?.uploaded === true), 'an upload after the bucket came back', 30_000);
      const uploaded = events().find((e) => e.type === 'run-ok' && e.job === 'app')!.result!;
      const head = await direct.head(`db/${uploaded.name}`);
      assert.equal(head.metadata['offsite-sha256'], uploaded.sha256);
      assert.equal((await readFile(path.join(dir, '.offsite/backups/app', `${uploaded.name}.sha256`), 'utf8')).split(' ')[0], uploaded.sha256);
      assert.equal(failuresOf('broken').at(-1)!.code, 'SourceMissing', 'the broken job still fails on its own');

      // SIGTERM while parts are being uploaded (the proxy delays them): exit 0, the multipart
      // upload aborted, and no object for the interrupted run.
      const partsBefore = proxy.seen.filter((l) => l.includes('partNumber=')).length;
      proxy.inject({ method: 'PUT', match: (p) => p.includes('partNumber='), fault: { kind: 'delay', ms: 2000 }, times: 1000 });
      await out.waitFor(() => proxy.seen.filter((l) => l.includes('partNumber=')).length > partsBefore, 'a part upload', 60_000);
      daemon.kill('SIGTERM');
      assert.equal(await exited(daemon), 0, log.lines.join('\n'));
      assert.equal(events().at(-1)!.type, 'stopped');
      const uploads = await adminClient().send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      assert.equal(uploads.Uploads, undefined, 'the multipart upload was aborted');
      const catalog = openCatalog(path.join(dir, 'catalog.db'));
      const lastApp = catalog.recentOperations(500, 'backup').find((r) => (r.detail as { job: string }).job === 'app')!;
      catalog.close();
      assert.equal(lastApp.status, 'interrupted');
      const interruptedName = (lastApp.detail as { name: string }).name;
      const keys = await objectKeys(direct);
      assert.ok(!keys.includes(`db/${interruptedName}`), 'the interrupted run left no object');
      assert.ok(keys.includes(`db/${uploaded.name}`));
      // Every object in the bucket is whole: its stored SHA-256 is the local copy's.
      for (const key of keys) {
        const local = await readFile(path.join(dir, '.offsite/backups/app', `${path.basename(key)}.sha256`), 'utf8');
        assert.equal((await direct.head(key)).metadata['offsite-sha256'], local.split(' ')[0], key);
      }
    } finally {
      await direct.close();
      await proxy.close();
    }
  });
});

describe('startBackupLoop() inside a host app while the bucket is unreachable (FAKE proxy closes its port)', () => {
  const children: ChildProcess[] = [];
  after(() => children.forEach((c) => c.kill('SIGKILL')));

  it('the host keeps working, warnings are logged, the next tick after the outage uploads, stop() lets the host exit', async () => {
    const dir = await tempDir('offsite-host-');
    const bucket = await createTestBucket('host');
    makeDatabase(path.join(dir, 'host.db'), 2_000);
    const proxy = await FaultProxy.start(s3TestServer().endpoint);
    const direct = openStorage(s3Url(bucket));
    // The host: writes a row every 20 ms and reports how far it got and its worst event-loop
    // delay; the backup loop is configured by the seed's environment variables alone.
    const host = path.join(dir, 'host.mjs');
    await writeFile(
      host,
      `
import { createRequire } from 'node:module';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startBackupLoop } from ${JSON.stringify(pathToFileURL(path.join(repoRoot, 'dist/index.js')).href)};
const Database = createRequire(${JSON.stringify(path.join(repoRoot, 'package.json'))})('better-sqlite3');
const db = new Database('host.db');
const insert = db.prepare('INSERT INTO rows (payload) VALUES (?)');
const lag = monitorEventLoopDelay({ resolution: 10 });
lag.enable();
let writes = 0;
const work = setInterval(() => {
  insert.run('host write ' + ++writes);
  if (writes % 10 === 0) console.log(JSON.stringify({ writes, maxLagMs: lag.max / 1e6 }));
}, 20);
const loop = startBackupLoop();
process.once('SIGTERM', async () => {
  clearInterval(work);
  await loop.stop({ abort: true });
  db.close();
  console.log(JSON.stringify({ stopped: true }));
  // No process.exit(): the loop must not hold the process open.
});
`,
    );
    try {
      await proxy.down();
      const env = {
        ...process.env,
        ...s3ChildEnv(),
        OFFSITE_BACKUP_SOURCE: 'sqlite:host.db',
        S3_BUCKET: bucket,
        S3_ENDPOINT: proxy.endpoint,
        S3_REGION: 'us-east-1',
        S3_SYNC_INTERVAL: '1',
      };
      const child = spawn(process.execPath, [host], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      const out = watchLines(child, 'stdout');
      const err = watchLines(child, 'stderr');
      const writes = () => {
        const last = out.lines.filter((l) => l.includes('"writes"')).at(-1);
        return last ? (JSON.parse(last) as { writes: number }).writes : 0;
      };

      await err.waitFor((lines) => lines.filter((l) => l.includes('OffsiteBackupWarning')).length >= 3, 'three warnings from failed ticks');
      const warnings = err.lines.filter((l) => l.includes('OffsiteBackupWarning'));
      assert.match(warnings[0]!, /job default: upload failed, local copy kept: .*; next try \d{4}-/);
      const during = writes();
      assert.ok(during >= 20, `the host kept writing during the outage (${during} writes)`);
      assert.deepEqual(await objectKeys(direct), []);

      await proxy.up();
      const deadline = Date.now() + 30_000;
      let keys: string[] = [];
      while ((keys = await objectKeys(direct)).length === 0 && Date.now() < deadline) await sleep(200);
      assert.equal(keys.length >= 1, true, 'an upload after the bucket came back');
      assert.match(keys[0]!, /^bramble\/default-\d{8}T\d{6}Z\.sqlite$/);
      assert.ok(writes() > during, 'the host went on writing');

      child.kill('SIGTERM');
      assert.equal(await exited(child), 0, err.lines.join('\n'));
      assert.ok(out.lines.some((l) => l.includes('"stopped":true')), 'the host stopped the loop and exited by itself');
      const maxLagMs = Math.max(...out.lines.filter((l) => l.includes('maxLagMs')).map((l) => (JSON.parse(l) as { maxLagMs: number }).maxLagMs));
      // Not a timing assertion: a sanity bound far above the real figure (the bench measures it).
      assert.ok(maxLagMs < 2000, `the host's event loop was blocked for ${maxLagMs} ms`);
      // The uploaded copy is a whole database holding a prefix of the host's writes.
      const restored = path.join(dir, 'restored.db');
      await writeFile(restored, await readAll((await direct.get(keys[0]!)).body));
      const db = new Database(restored, { readonly: true });
      try {
        assert.equal((db.pragma('integrity_check') as Array<{ integrity_check: string }>)[0]!.integrity_check, 'ok');
        const { n, max } = db.prepare('SELECT COUNT(*) AS n, MAX(id) AS max FROM rows').get() as { n: number; max: number };
        assert.equal(n, max, 'ids 1..n with no gap');
        assert.ok(n >= 2_000, `${n} rows`);
      } finally {
        db.close();
      }
    } finally {
      await direct.close();
      await proxy.close();
    }
  });
});

describe('startBackupLoop() while idle, status and schedule print', () => {
  it('makes no request between runs, continues the interval of the last recorded run, and status and schedule print agree', async () => {
    const dir = await tempDir('offsite-idle-');
    const bucket = await createTestBucket('idle');
    makeDatabase(path.join(dir, 'app.db'), 500);
    const proxy = await FaultProxy.start(s3TestServer().endpoint);
    try {
      const url = `s3://${bucket}/?endpoint=${encodeURIComponent(proxy.endpoint)}&region=us-east-1&path_style=true`;
      const configFile = path.join(dir, 'offsite.toml');
      await writeFile(configFile, `[catalog]\npath = "catalog.db"\n[jobs.app]\nsource = "sqlite:app.db"\ndestination = "${url}"\nschedule = "3600"\n[jobs.nightly]\nsource = "sqlite:app.db"\nschedule = "30 2 * * *"\n`);
      const first = await runCli(['--json', 'backup', 'app', '--config', configFile], { cwd: dir });
      assert.equal(first.code, 0, first.stderr);
      const requestsAfterRun = proxy.seen.length;
      assert.ok(requestsAfterRun >= 2);

      const events: string[] = [];
      const loop = startBackupLoop({ configFile, onEvent: (e) => events.push(e.type) });
      await loop.ready;
      assert.deepEqual(events, ['started']);
      const [app, nightly] = loop.jobs();
      const catalog = openCatalog(path.join(dir, 'catalog.db'));
      const lastStart = new Date(catalog.recentOperations(1, 'backup')[0]!.startedAt);
      catalog.close();
      // The interval continues from the recorded run: the next run is an hour after it.
      assert.equal(app!.nextRunAt!.getTime(), lastStart.getTime() + 3600_000);
      assert.ok(app!.lastSuccessAt);
      assert.equal(nightly!.nextRunAt!.getHours() * 60 + nightly!.nextRunAt!.getMinutes(), 2 * 60 + 30);
      await sleep(3000);
      assert.equal(proxy.seen.length, requestsAfterRun, `requests while idle: ${proxy.seen.slice(requestsAfterRun).join(', ')}`);
      await loop.stop();
      assert.deepEqual(events, ['started', 'stopped']);

      const status = await runCli(['--json', 'status', '--config', configFile], { cwd: dir });
      const rows = JSON.parse(status.stdout) as Array<{ name: string; nextRun: string; lastSuccess: string | null }>;
      assert.equal(rows[0]!.nextRun, app!.nextRunAt!.toISOString());
      assert.equal(rows[1]!.nextRun, nightly!.nextRunAt!.toISOString());
      assert.equal(rows[1]!.lastSuccess, null);

      const cron = await runCli(['schedule', 'print', '--cron', '--config', configFile, '--command', '/usr/local/bin/offsite'], { cwd: dir });
      assert.equal(cron.code, 0, cron.stderr);
      const lines = cron.stdout.split('\n').filter((l) => l && !l.startsWith('#'));
      assert.deepEqual(lines, [
        `0 * * * * /usr/local/bin/offsite --config ${configFile} backup app`,
        `30 2 * * * /usr/local/bin/offsite --config ${configFile} backup nightly`,
      ]);
      const systemd = await runCli(['schedule', 'print', '--systemd', '--job', 'nightly', '--config', configFile, '--command', '/usr/local/bin/offsite'], { cwd: dir });
      assert.match(systemd.stdout, /# ---- \/etc\/systemd\/system\/offsite-backup-nightly\.timer[\s\S]*OnCalendar=\*-\*-\* 02:30:00/);
      assert.match(systemd.stdout, /ExecStart=\/usr\/local\/bin\/offsite --config \S+ backup nightly/);
      const neither = await runCli(['schedule', 'print', '--config', configFile], { cwd: dir });
      assert.equal(neither.code, 2);
      assert.match(neither.stderr, /--systemd or --cron/);
    } finally {
      await proxy.close();
    }
  });
});
