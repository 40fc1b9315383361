// Backup runs in a child process (run-isolated.ts), as startBackupLoop() runs them in a host app:
// the same backup (uploaded, checked, recorded), an abort that leaves no multipart upload, and
// the loop really running its work in a child. Uploads are slowed with the FAKE fault proxy
// (a delay in front of the real RGW) so that a run is caught in the middle, and its child seen:
// its V8 flags, CPU niceness and idle I/O class.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { HOST_UPLOAD_CONCURRENCY, ISOLATED_RUN_NICENESS, runBackupJobIsolated, startBackupLoop, type BackupJob, type BackupLoopEvent } from '../../src/backup/jobs/index.js';
import { openCatalog } from '../../src/catalog/index.js';
import { readAll } from '../support/data.js';
import { adminClient, createTestBucket, s3ChildEnv, s3TestServer, tempDir } from '../support/env.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { ownConnectionsTo, runChildren } from '../support/processes.js';
import { useTestManifestKey } from './job-support.js';

const MIB = 1024 * 1024;

function fileJob(dir: string, source: string, destinationUrl: string): BackupJob {
  return {
    name: 'blob',
    source: { kind: 'file', location: source },
    destinationUrl,
    localDir: path.join(dir, 'backups'),
    keepLocal: true,
    schedule: '3600',
    jitterSeconds: 0,
    keyTemplate: '{job}-{timestamp}{ext}',
    compress: 'none',
    recipients: [],
    retention: {},
    origin: 'test',
  };
}

const urlVia = (bucket: string, endpoint: string) => `s3://${bucket}/?endpoint=${encodeURIComponent(endpoint)}&region=us-east-1&path_style=true`;

describe('backup runs in a child process', () => {
  before(async () => {
    await useTestManifestKey();
    Object.assign(process.env, s3ChildEnv()); // the child's S3 client finds them in its environment
  });

  it('uploads, checks and records the same backup as a run in process', async () => {
    const dir = await tempDir('offsite-isolated-');
    const bucket = await createTestBucket('isolated');
    const source = path.join(dir, 'blob.bin');
    const data = randomBytes(12 * MIB + 5);
    await writeFile(source, data);
    const job = fileJob(dir, source, urlVia(bucket, s3TestServer().endpoint));
    const catalogPath = path.join(dir, 'catalog.db');
    const result = await runBackupJobIsolated(job, { catalogPath });
    const sha256 = createHash('sha256').update(data).digest('hex');
    assert.equal(result.uploaded, true, result.uploadError);
    assert.equal(result.sha256, sha256);
    assert.equal(result.size, data.length);
    const stored = await readAll((await adminClient().send(new GetObjectCommand({ Bucket: bucket, Key: result.name }))).Body as NodeJS.ReadableStream);
    assert.equal(createHash('sha256').update(stored).digest('hex'), sha256);
    const catalog = openCatalog(catalogPath);
    try {
      const record = catalog.getBackup('blob', result.name);
      assert.equal(record?.sha256, sha256);
      assert.ok(record?.uploadedAt, 'recorded as uploaded');
      assert.equal(catalog.recentOperations(1, 'backup')[0]!.status, 'ok');
    } finally {
      catalog.close();
    }
  });

  it('an abort reaches the child: the multipart upload is aborted, no object is left, the run is recorded as interrupted', async () => {
    const dir = await tempDir('offsite-isolated-abort-');
    const bucket = await createTestBucket('isolated-abort');
    const source = path.join(dir, 'blob.bin');
    await writeFile(source, randomBytes(40 * MIB));
    const proxy = await FaultProxy.start(s3TestServer().endpoint);
    try {
      proxy.inject({ method: 'PUT', match: (p) => p.includes('partNumber='), fault: { kind: 'delay', ms: 3000 }, times: 1000 });
      const catalogPath = path.join(dir, 'catalog.db');
      const abort = new AbortController();
      const run = runBackupJobIsolated(fileJob(dir, source, urlVia(bucket, proxy.endpoint)), { catalogPath, signal: abort.signal });
      const deadline = Date.now() + 30_000;
      while (!proxy.seen.some((l) => l.includes('partNumber=')) && Date.now() < deadline) await sleep(50);
      assert.ok(proxy.seen.some((l) => l.includes('partNumber=')), 'a part upload started');
      abort.abort();
      await assert.rejects(run, (e: Error) => e.name === 'AbortError');
      const uploads = await adminClient().send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      assert.equal(uploads.Uploads, undefined, 'the multipart upload was aborted');
      const objects = await adminClient().send(new ListObjectsV2Command({ Bucket: bucket }));
      assert.equal(objects.KeyCount, 0);
      const catalog = openCatalog(catalogPath);
      assert.equal(catalog.recentOperations(1, 'backup')[0]!.status, 'interrupted');
      catalog.close();
      assert.deepEqual(runChildren(), [], 'the child is gone');
    } finally {
      await proxy.close();
    }
  });

  it('startBackupLoop() runs its backups in a child process, not in the host', async () => {
    const dir = await tempDir('offsite-isolated-loop-');
    const bucket = await createTestBucket('isolated-loop');
    const source = path.join(dir, 'blob.bin');
    await writeFile(source, randomBytes(20 * MIB));
    const proxy = await FaultProxy.start(s3TestServer().endpoint);
    try {
      // Slow parts keep the run going long enough to be seen.
      proxy.inject({ method: 'PUT', match: (p) => p.includes('partNumber='), fault: { kind: 'delay', ms: 500 }, times: 1000 });
      const events: BackupLoopEvent[] = [];
      const loop = startBackupLoop({ jobs: [fileJob(dir, source, urlVia(bucket, proxy.endpoint))], catalogPath: path.join(dir, 'catalog.db'), onEvent: (e) => events.push(e) });
      await loop.ready;
      let seen: number[] = [];
      const deadline = Date.now() + 30_000;
      while (seen.length === 0 && Date.now() < deadline && !events.some((e) => e.type === 'run-ok' || e.type === 'run-failed')) {
        seen = runChildren();
        await sleep(20);
      }
      assert.equal(seen.length, 1, 'one child process ran the backup');
      const pid = seen[0]!;
      // Once ionice has exec'd node: the child's command line, CPU niceness and I/O class.
      let argv: string[] = [];
      while (Date.now() < deadline && !(argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'))[0]!.endsWith('node')) await sleep(10);
      assert.ok(argv.includes('--single-threaded-gc'), `child argv: ${argv.join(' ')}`);
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      assert.equal(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]), ISOLATED_RUN_NICENESS, 'the child runs at the isolated niceness');
      assert.match(execFileSync('ionice', ['-p', String(pid)], { encoding: 'utf8' }), /^idle/, 'the child is in the idle I/O class');
      while (!events.some((e) => e.type === 'run-ok' || e.type === 'run-failed') && Date.now() < deadline) await sleep(50);
      await loop.stop();
      const ok = events.find((e) => e.type === 'run-ok');
      assert.ok(ok && ok.type === 'run-ok' && ok.result.uploaded, `events: ${JSON.stringify(events.map((e) => e.type))}`);
    } finally {
      await proxy.close();
    }
  });

  it('the loop prunes in the child after a run: the host gets the outcome as a pruned event', async () => {
    const dir = await tempDir('offsite-isolated-prune-');
    const bucket = await createTestBucket('isolated-prune');
    const source = path.join(dir, 'blob.bin');
    await writeFile(source, randomBytes(64 * 1024));
    // Through a proxy of its own, so that a connection to its port can only be the job's.
    const proxy = await FaultProxy.start(s3TestServer().endpoint);
    const job: BackupJob = { ...fileJob(dir, source, urlVia(bucket, proxy.endpoint)), retention: { keepLast: 1 } };
    const events: BackupLoopEvent[] = [];
    const loop = startBackupLoop({ jobs: [job], catalogPath: path.join(dir, 'catalog.db'), onEvent: (e) => events.push(e) });
    let hostConnections: number;
    try {
      const runsOk = () => events.filter((e) => e.type === 'run-ok').length;
      const deadline = Date.now() + 30_000;
      while (runsOk() < 1 && Date.now() < deadline) await sleep(50);
      await writeFile(source, randomBytes(64 * 1024)); // a second, different backup
      await loop.runNow('blob');
      while (!events.some((e) => e.type === 'pruned' || e.type === 'prune-failed') && Date.now() < deadline) await sleep(50);
      // A prune in the host would have left its client's keep-alive connections open.
      hostConnections = ownConnectionsTo(Number(new URL(proxy.endpoint).port));
    } finally {
      await loop.stop();
      await proxy.close();
    }
    assert.equal(hostConnections, 0, 'the host itself never connected to the bucket');
    const oks = events.flatMap((e) => (e.type === 'run-ok' ? [e.result.name] : []));
    assert.equal(oks.length, 2, `events: ${JSON.stringify(events.map((e) => e.type))}`);
    const pruned = events.find((e) => e.type === 'pruned');
    assert.ok(pruned && pruned.type === 'pruned', `events: ${JSON.stringify(events)}`);
    assert.deepEqual(pruned.deletedRemote, [oks[0]]);
    assert.deepEqual(pruned.deletedLocal, [oks[0]]);
    const objects = await adminClient().send(new ListObjectsV2Command({ Bucket: bucket }));
    assert.deepEqual(objects.Contents?.map((o) => o.Key), [oks[1]], 'only the newer backup is left in the bucket');
  });

  it(`uploads ${HOST_UPLOAD_CONCURRENCY} part at a time in the child, unless the job's URL sets concurrency`, async () => {
    const dir = await tempDir('offsite-isolated-gentle-');
    const bucket = await createTestBucket('isolated-gentle');
    const source = path.join(dir, 'blob.bin');
    const data = randomBytes(40 * MIB); // 5 parts of 8 MiB
    await writeFile(source, data);
    const inFlight: Record<string, number> = {};
    for (const [label, query] of [['default', ''], ['three', '&concurrency=3']] as const) {
      const proxy = await FaultProxy.start(s3TestServer().endpoint);
      try {
        // Slow parts: any that the child sends together are in flight together.
        proxy.inject({ method: 'PUT', match: (p) => p.includes('partNumber='), fault: { kind: 'delay', ms: 300 }, times: 1000 });
        const url = `s3://${bucket}/${label}/?endpoint=${encodeURIComponent(proxy.endpoint)}&region=us-east-1&path_style=true${query}`;
        const job = fileJob(path.join(dir, label), source, url);
        const result = await runBackupJobIsolated(job, { catalogPath: null });
        assert.equal(result.uploaded, true, result.uploadError);
        assert.equal(result.sha256, createHash('sha256').update(data).digest('hex'));
        inFlight[label] = proxy.maxPartUploadsInFlight;
      } finally {
        await proxy.close();
      }
    }
    assert.equal(inFlight['default'], HOST_UPLOAD_CONCURRENCY, JSON.stringify(inFlight));
    assert.equal(inFlight['three'], 3, JSON.stringify(inFlight));
  });
});
