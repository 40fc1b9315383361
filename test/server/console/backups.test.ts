// Backups over HTTP, end to end against RGW: a SQLite job with no destination of its own uses
// the S3 settings; a run is asynchronous (run id, then poll) and streams its progress as
// server-sent events; the listing merges local and bucket (the bucket part cached); a delete of
// the local copy leaves it S3-only; a restore downloads it, checks it, and the file is the
// backup, byte for byte; with the settings deleted a new backup is local only.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { request, type IncomingMessage } from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { createTestBucket, openTestS3, s3TestServer, tempDir } from '../../support/env.js';
import { startConsole, waitForRun, type ConsoleProcess } from './support.js';

interface SseEvent {
  event: string;
  data: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** Opens GET /api/events and collects its events until stop(). */
function openEvents(c: ConsoleProcess): Promise<{ events: SseEvent[]; comments: string[]; response: IncomingMessage; stop(): void }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: c.port, path: '/api/events', headers: { host: `127.0.0.1:${c.port}`, authorization: `Bearer ${c.token}` } }, (res) => {
      const events: SseEvent[] = [];
      const comments: string[] = [];
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let i: number;
        while ((i = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          let event = 'message';
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) comments.push(line);
            else if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data.push(line.slice(6));
          }
          if (data.length) events.push({ event, data: JSON.parse(data.join('\n')) });
        }
      });
      resolve({ events, comments, response: res, stop: () => req.destroy() });
    });
    req.on('error', (e) => {
      if ((e as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(e);
    });
    req.end();
  });
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

describe('console backups flow', () => {
  const rgw = s3TestServer();
  let bucket: string;
  let c: ConsoleProcess;
  let dir: string;

  before(async () => {
    bucket = await createTestBucket('console-backups');
    dir = await tempDir('offsite-console-backups-');
    // Big enough that the upload is seen in progress (several MiB of incompressible rows).
    const db = new Database(path.join(dir, 'app.db'));
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)');
    const insert = db.prepare('INSERT INTO t (v) VALUES (randomblob(4096))');
    db.transaction(() => {
      for (let i = 0; i < 3000; i++) insert.run();
    })();
    db.close();
    await writeFile(path.join(dir, 'offsite.toml'), `[jobs.app]\nsource = "sqlite:${dir}/app.db"\nschedule = "86400"\nlocal_dir = "${dir}/backups/app"\n`);
    c = await startConsole({ dir });
    const put = await c.api('PUT', '/api/settings/s3', { endpoint: rgw.endpoint, bucket, region: 'us-east-1', access_key_id: rgw.accessKeyId, secret_access_key: rgw.secretAccessKey, prefix: 'flow', path_style: true });
    assert.equal(put.status, 200, put.text);
  });
  after(async () => {
    assert.equal(await c.stop(), 0);
  });

  let backupName: string;
  let backupSha: string;

  it('POST backup → run id → the run ends ok, uploaded; the stream showed its progress and result; listed both', async () => {
    const sse = await openEvents(c);
    assert.equal(sse.response.statusCode, 200);
    assert.match(String(sse.response.headers['content-type']), /^text\/event-stream/);
    const started = await c.api('POST', '/api/databases/app/backup', {});
    assert.equal(started.status, 202, started.text);
    assert.equal(started.json.status, 'running');
    assert.equal(started.json.job, 'app');
    const busy = await c.api('POST', '/api/jobs/app/backup', {});
    assert.equal(busy.status, 409, 'a second run of a running job is refused');
    assert.equal(busy.json.error.code, 'Busy');
    const run = await waitForRun(c, started.json.run_id);
    assert.equal(run.json.status, 'ok', run.text);
    assert.equal(run.json.kind, 'backup');
    assert.equal(run.json.trigger, 'manual');
    assert.equal(run.json.uploaded, true);
    assert.equal(run.json.phase, 'done');
    assert.ok(run.json.finished_at);
    backupName = run.json.backup;
    backupSha = run.json.result.sha256;
    assert.match(backupName, /^app-\d{8}T\d{6}Z\.sqlite$/);

    const until = Date.now() + 5000;
    while (!sse.events.some((e) => e.event === 'jobs') && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    sse.stop();
    const mine = sse.events.filter((e) => e.event === 'run' && e.data.id === started.json.run_id).map((e) => e.data);
    assert.equal(mine[0].status, 'running');
    const upload = mine.find((r) => r.phase === 'upload');
    assert.ok(upload, `an upload progress event: ${JSON.stringify(mine.map((r) => [r.phase, r.bytes_done, r.bytes_total]))}`);
    assert.equal(upload.bytes_total, run.json.result.size);
    assert.ok(mine.some((r) => r.phase === 'snapshot'));
    const last = mine.at(-1);
    assert.equal(last.status, 'ok');
    assert.equal(last.uploaded, true);
    assert.equal(last.backup, backupName);
    const jobs = sse.events.find((e) => e.event === 'jobs');
    assert.equal(jobs?.data.jobs[0].status, 'ok');

    const listed = await c.api('GET', '/api/jobs/app/backups');
    assert.equal(listed.status, 200);
    assert.deepEqual(listed.json.backups.map((b: { name: string; where: string }) => [b.name, b.where]), [[backupName, 'both']]);
    assert.equal(listed.json.backups[0].sha256, backupSha);
    assert.equal(listed.json.backups[0].size, run.json.result.size);
    assert.equal(listed.json.stale_after_seconds, 60);
    assert.equal(listed.json.bucket_error, null);
    // The object is where the settings say: PREFIX/JOB/NAME.
    const s3 = openTestS3(bucket);
    try {
      const head = await s3.head(`flow/app/${backupName}`);
      assert.equal(head.size, run.json.result.size);
    } finally {
      await s3.close();
    }
    const job = await c.api('GET', '/api/jobs/app');
    assert.equal(job.json.status, 'ok');
    assert.ok(job.json.last_success);
    assert.ok(job.json.next_run);
  });

  it('DELETE where=local leaves it S3 only (the cached listing updated, not re-listed)', async () => {
    const before = await c.api('GET', '/api/jobs/app/backups');
    const del = await c.api('DELETE', `/api/jobs/app/backups/${backupName}?where=local`);
    assert.equal(del.status, 200, del.text);
    assert.deepEqual(del.json, { deleted: { local: true, s3: false } });
    await assert.rejects(stat(path.join(dir, 'backups', 'app', backupName)));
    await assert.rejects(stat(path.join(dir, 'backups', 'app', `${backupName}.sha256`)));
    const listed = await c.api('GET', '/api/jobs/app/backups');
    assert.deepEqual(listed.json.backups.map((b: { name: string; where: string }) => [b.name, b.where]), [[backupName, 's3']]);
    assert.equal(listed.json.backups[0].sha256, backupSha, 'from the catalog now');
    assert.equal(listed.json.listed_at, before.json.listed_at, 'served from the cache');
    const again = await c.api('DELETE', `/api/jobs/app/backups/${backupName}?where=local`);
    assert.equal(again.status, 404);
    assert.equal(again.json.error.code, 'NotFound');
  });

  it('restore of the S3-only backup downloads it first: the file passes integrity_check, its SHA-256 is the backup\'s', async () => {
    const started = await c.api('POST', '/api/jobs/app/restore', { backup: backupName });
    assert.equal(started.status, 202, started.text);
    const run = await waitForRun(c, started.json.run_id);
    assert.equal(run.json.status, 'ok', run.text);
    assert.equal(run.json.kind, 'restore');
    const r = run.json.result;
    assert.equal(r.from, 's3');
    assert.equal(r.verified_by, 'catalog');
    assert.equal(r.kept_local, true);
    assert.equal(r.to, path.join(c.dataDir, 'restores', 'app', backupName));
    const bytes = await readFile(r.to);
    assert.equal(sha256(bytes), backupSha);
    assert.equal(r.sha256, backupSha);
    assert.equal((await stat(r.to)).mode & 0o777, 0o600);
    const db = new Database(r.to, { readonly: true });
    try {
      assert.equal((db.pragma('integrity_check', { simple: true }) as string), 'ok');
      assert.equal((db.prepare('SELECT COUNT(*) AS n FROM t').get() as { n: number }).n, 3000);
    } finally {
      db.close();
    }
    // Kept as the local copy: listed both again.
    const listed = await c.api('GET', '/api/jobs/app/backups');
    assert.equal(listed.json.backups[0].where, 'both');
    // A second restore to the same place is refused unless forced.
    const exists = await waitForRun(c, (await c.api('POST', '/api/jobs/app/restore', { backup: 'latest' })).json.run_id);
    assert.equal(exists.json.status, 'failed');
    assert.equal(exists.json.error.code, 'TargetExists');
    const forced = await waitForRun(c, (await c.api('POST', '/api/jobs/app/restore', { backup: 'latest', force: true })).json.run_id);
    assert.equal(forced.json.status, 'ok', forced.text);
    assert.equal(forced.json.result.from, 'local');
  });

  it('with the settings deleted, the next backup is local only', async () => {
    assert.equal((await c.api('DELETE', '/api/settings/s3')).status, 200);
    await new Promise((r) => setTimeout(r, 1100)); // a new second: a new name
    const started = await c.api('POST', '/api/jobs/app/backup', {});
    const run = await waitForRun(c, started.json.run_id);
    assert.equal(run.json.status, 'ok', run.text);
    assert.equal(run.json.uploaded, false);
    const listed = await c.api('GET', '/api/jobs/app/backups');
    assert.equal(listed.json.backups[0].name, run.json.backup);
    assert.equal(listed.json.backups[0].where, 'local');
    // Without a bucket the older backup is shown by its local copy only.
    assert.deepEqual(
      listed.json.backups.map((b: { where: string }) => b.where),
      ['local', 'local'],
    );
    const runs = await c.api('GET', '/api/runs');
    assert.equal(runs.json.runs[0].id, started.json.run_id, 'newest first');
  });
});
