// What the console does on its own and what it shows besides backups: scheduled runs (as runs,
// with trigger 'schedule', in the job's last/next run), no storage request while idle and a
// bucket listing cached between requests (counted through a proxy in front of RGW that only
// records requests), and the archive and sync views.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { openCatalog } from '../../../src/catalog/index.js';
import { runCli } from '../../support/cli.js';
import { createTestBucket, openTestS3, s3TestServer, tempDir } from '../../support/env.js';
import { FaultProxy } from '../../support/fault-proxy.js';
import { consoleEnv, startConsole, waitForRun, type ConsoleProcess } from './support.js';

describe('console schedules, idle requests and views', () => {
  const rgw = s3TestServer();
  let proxy: FaultProxy;
  let c: ConsoleProcess;
  let dir: string;
  let bucket: string;

  before(async () => {
    bucket = await createTestBucket('console-views');
    proxy = await FaultProxy.start(rgw.endpoint);
    dir = await tempDir('offsite-console-views-');
    for (const name of ['app', 'ticker']) {
      const db = new Database(path.join(dir, `${name}.db`));
      db.exec('CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);');
      db.close();
    }
    // An archive catalog with one done session.
    const catalog = openCatalog(path.join(dir, 'archive-catalog.db'));
    const row = catalog.beginArchive({ sessionId: '2025-11-02_m31', year: 2025, key: '2025/2025-11-02_m31.tar', manifestKey: '2025/2025-11-02_m31.tar.manifest.json', destination: 's3://astro/sessions/', compression: 'none', encrypted: false, storageClass: 'DEEP_ARCHIVE' });
    catalog.completeArchive(row.id, { size: 123456, sha256: 'a'.repeat(64), etag: 'e', fileCount: 3, sourceBytes: 123456 });
    catalog.close();
    // A sync device on a local-directory store.
    const syncToml = path.join(dir, 'sync.toml');
    await writeFile(syncToml, `url = "${path.join(dir, 'sync-store')}"\nstate_dir = "${path.join(dir, 'sync-state')}"\n`);
    const init = await runCli(['sync', '--config', syncToml, 'init', '--name', 'console-desk'], { env: await consoleEnv(dir) });
    assert.equal(init.code, 0, init.stderr);

    await writeFile(
      path.join(dir, 'offsite.toml'),
      `[jobs.app]\nsource = "sqlite:${dir}/app.db"\nschedule = "86400"\nlocal_dir = "${dir}/backups/app"\n\n` +
        `[jobs.ticker]\nsource = "sqlite:${dir}/ticker.db"\nschedule = "2"\nlocal_dir = "${dir}/backups/ticker"\ndestination = "${dir}/ticker-bucket"\n`,
    );
    c = await startConsole({ dir, args: ['--archive-catalog', path.join(dir, 'archive-catalog.db'), '--sync-config', syncToml] });
    const put = await c.api('PUT', '/api/settings/s3', { endpoint: proxy.endpoint, bucket, region: 'us-east-1', access_key_id: rgw.accessKeyId, secret_access_key: rgw.secretAccessKey, prefix: 'views', path_style: true });
    assert.equal(put.status, 200, put.text);
  });
  after(async () => {
    if (c.child.exitCode === null) await c.stop();
    await new Promise<void>((r) => proxy.server.close(() => r()));
  });

  it('runs a job on its schedule: a run with trigger "schedule", and the job\'s last and next run', async () => {
    const until = Date.now() + 15_000;
    let scheduled;
    while (Date.now() < until) {
      const runs = (await c.api('GET', '/api/runs')).json.runs as Array<{ id: string; job: string; trigger: string; status: string }>;
      scheduled = runs.find((r) => r.job === 'ticker' && r.trigger === 'schedule' && r.status !== 'running');
      if (scheduled) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(scheduled, 'a scheduled run of ticker within 15 s');
    const run = await waitForRun(c, scheduled.id);
    assert.equal(run.json.status, 'ok', run.text);
    assert.equal(run.json.uploaded, true, 'to its own destination (a local directory)');
    const job = (await c.api('GET', '/api/jobs/ticker')).json;
    assert.equal(job.destination_from, 'job');
    assert.ok(job.last_success);
    assert.ok(job.running || (job.next_run && Date.parse(job.next_run) > Date.parse(job.last_success) - 1000), JSON.stringify(job));
    // The job that waits a day has not run, and says when it will.
    const app = (await c.api('GET', '/api/jobs/app')).json;
    assert.equal(app.status, 'never');
    assert.ok(Date.parse(app.next_run) > Date.now() + 86_000_000);
  });

  it('makes no storage request while idle; the bucket is listed once, then served from the cache', async () => {
    const lists = () => proxy.seen.filter((s) => s.startsWith('GET') && s.includes('list-type=2')).length;
    const idleFrom = proxy.seen.length;
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(proxy.seen.length, idleFrom, `requests while idle: ${proxy.seen.slice(idleFrom).join(', ')}`);
    const first = await c.api('GET', '/api/jobs/app/backups');
    assert.equal(first.status, 200, first.text);
    assert.equal(lists(), 1);
    const second = await c.api('GET', '/api/databases/app/backups');
    assert.equal(lists(), 1, 'the second listing within 60 s is the cached one');
    assert.equal(second.json.listed_at, first.json.listed_at);
    assert.equal(second.json.stale_after_seconds, 60);
    // Our own upload updates the cache: listed as both without a new LIST.
    const run = await waitForRun(c, (await c.api('POST', '/api/jobs/app/backup', {})).json.run_id);
    assert.equal(run.json.status, 'ok', run.text);
    const third = await c.api('GET', '/api/jobs/app/backups');
    assert.equal(lists(), 1);
    assert.deepEqual(third.json.backups.map((b: { name: string; where: string }) => [b.name, b.where]), [[run.json.backup, 'both']]);
  });

  it('the archive view shows the catalog of --archive-catalog', async () => {
    const r = await c.api('GET', '/api/archives');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.configured, true);
    assert.deepEqual(r.json.totals, [{ year: 2025, storage_class: 'DEEP_ARCHIVE', archives: 1, bytes: 123456 }]);
    assert.equal(r.json.sessions.length, 1);
    assert.equal(r.json.sessions[0].session, '2025-11-02_m31');
    assert.equal(r.json.sessions[0].status, 'done');
    assert.equal(r.json.sessions[0].size, 123456);
  });

  it('the sync view shows the device of --sync-config', async () => {
    const r = await c.api('GET', '/api/sync');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.configured, true);
    assert.equal(r.json.devices.length, 1);
    assert.equal(r.json.devices[0].self, true);
    assert.equal(r.json.devices[0].name, 'console-desk');
    assert.deepEqual(Object.keys(r.json.pending).sort(), ['deletions', 'entries', 'unsent_batches']);
  });

  it('SIGTERM during an upload aborts it cleanly: exit 0, no object left, the run recorded as interrupted', async () => {
    // The upload's PUT is held by the proxy, so the signal arrives while it is in flight.
    proxy.inject({ method: 'PUT', match: (p) => p.includes('/views/app/'), fault: { kind: 'delay', ms: 4000 }, times: 1 });
    await new Promise((r) => setTimeout(r, 1100)); // a new name
    const started = await c.api('POST', '/api/jobs/app/backup', {});
    assert.equal(started.status, 202);
    const until = Date.now() + 10_000;
    while (!proxy.seen.some((x) => x.startsWith('PUT') && x.includes('/views/app/')) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    const t0 = Date.now();
    assert.equal(await c.stop(), 0, c.stderr());
    assert.ok(Date.now() - t0 < 3500, 'the held upload was aborted, not waited for');
    const catalog = openCatalog(path.join(c.dataDir, 'catalog.db'));
    try {
      const last = catalog.recentOperations(1, 'backup')[0]!;
      assert.equal(last.status, 'interrupted');
      const name = (last.detail as { name: string }).name;
      const s3 = openTestS3(bucket);
      try {
        await assert.rejects(s3.head(`views/app/${name}`), (e: Error & { code?: string }) => e.code === 'NotFound', 'no object of the aborted upload');
      } finally {
        await s3.close();
      }
    } finally {
      catalog.close();
    }
  });
});
