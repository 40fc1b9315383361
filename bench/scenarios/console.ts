// The console under a realistic catalog (issue 14): 20 jobs with 500 backups each (10,000), in
// the console's catalog and in the bucket. Times `GET /api/jobs/{name}/backups` (the first call
// per job LISTs the bucket: reported apart as "cold"; later calls use the cached listing),
// weighs the page's first load (every asset index.html names, raw and gzipped), and watches
// the idle console: its resident memory and the requests it makes to storage while nobody asks
// anything (counted by a forwarding proxy between the console and RGW).
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { backupTimestamp } from '../../src/backup/jobs/index.js';
import { openCatalog } from '../../src/catalog/index.js';
import { startCountingProxy } from '../counting-proxy.js';
import { withNodeOnPath } from '../peers.js';
import { formatColumns, median, type TargetCheck } from '../report.js';
import type { BenchBucket } from '../target.js';
import type { S3Target } from '../types.js';

export const SCENARIO = 'console';
const OFFSITE_BIN = fileURLToPath(new URL('../../bin/offsite', import.meta.url));
const PREFIX = 'console-bench';

export interface ConsoleBenchResult {
  jobs: number;
  backupsPerJob: number;
  seedSeconds: number;
  /** The first request of each job (a LIST of its prefix), ms. */
  coldMs: number[];
  /** Later requests (the cached listing), ms. */
  warm: { requests: number; p50: number; p99: number; max: number };
  staleAfterSeconds: number | null;
  firstLoad: { files: number; bytes: number; gzipBytes: number; servedEncoded: boolean };
  idle: { seconds: number; storageRequests: number; rssMb: number; peakRssMb: number; samples: Array<{ atSeconds: number; rssMb: number }> };
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

/** Starts `offsite console` on a free port; resolves with its URL once it listens. */
async function startConsole(args: string[], env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string; stderr: () => string }> {
  // As a user runs it: through bin/offsite's shebang (its V8 flags included), node first on PATH.
  const child = spawn(OFFSITE_BIN, ['console', ...args], { env: withNodeOnPath(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`offsite console did not start in 30 s: ${err.slice(-500)}`)), 30_000);
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!.replace(/\/$/, ''));
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`offsite console exited with ${code}: ${err.slice(-500)}`));
    });
  });
  return { child, url, stderr: () => err };
}

function rssOf(pid: number): { rssMb: number; peakRssMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMb: kb('VmRSS') / 1024, peakRssMb: kb('VmHWM') / 1024 };
}

export async function consoleBench(opts: {
  target: S3Target;
  bucket: BenchBucket;
  scratchDir: string;
  jobs: number;
  backupsPerJob: number;
  requests: number;
  idleSeconds: number;
  log: (line: string) => void;
}): Promise<ConsoleBenchResult> {
  const { target, scratchDir, jobs, backupsPerJob, log } = opts;
  const dir = path.join(scratchDir, 'console');
  const dataDir = path.join(dir, 'data');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const names = Array.from({ length: jobs }, (_, i) => `app-${String(i + 1).padStart(2, '0')}`);
  // Names as the jobs' key template makes them (backupTimestamp), so the console lists them.
  // Cron schedules: an interval job with no recorded run would back up at start and disturb the timing.
  writeFileSync(
    path.join(dir, 'offsite.toml'),
    names.map((n) => `[jobs.${n}]\nsource = "sqlite:${path.join(dir, `${n}.db`)}"\nschedule = "0 3 * * *"\nlocal_dir = "${path.join(dir, 'local', n)}"\n`).join('\n'),
  );

  // The catalog and the bucket hold the same 10,000 backups, one an hour back from now.
  const t0 = performance.now();
  const catalog = openCatalog(path.join(dataDir, 'catalog.db'));
  const s3 = new S3Client({ endpoint: target.endpoint, region: target.region, forcePathStyle: true, credentials: { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey } });
  const body = Buffer.alloc(64, 7);
  const now = Date.now();
  const puts: Array<{ key: string }> = [];
  for (const job of names) {
    for (let i = 0; i < backupsPerJob; i++) {
      const name = `${job}-${backupTimestamp(new Date(now - (i + 1) * 3_600_000))}.sqlite`;
      catalog.recordBackup({ job, name, size: body.length, sha256: '0'.repeat(64), encrypted: false, compression: 'none' });
      catalog.markBackupUploaded(job, name, `s3://${target.bucket}/${PREFIX}/${job}/`);
      puts.push({ key: `${PREFIX}/${job}/${name}` });
    }
  }
  catalog.close();
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < puts.length) {
        const { key } = puts[next++]!;
        await s3.send(new PutObjectCommand({ Bucket: target.bucket, Key: key, Body: body }));
      }
    }),
  );
  s3.destroy();
  const seedSeconds = (performance.now() - t0) / 1000;
  log(`console: ${jobs} jobs x ${backupsPerJob} backups in the catalog and the bucket in ${seedSeconds.toFixed(1)} s`);

  const proxy = await startCountingProxy(target.endpoint);
  const tokenFile = path.join(dir, 'token');
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: dir, OFFSITE_MANIFEST_KEY_FILE: path.join(dir, 'manifest.key'), AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
  const server = await startConsole(['--config', path.join(dir, 'offsite.toml'), '--data-dir', dataDir, '--port', '0', '--token-file', tokenFile], env);
  try {
    const token = readFileSync(tokenFile, 'utf8').trim();
    const api = async (method: string, route: string, json?: unknown): Promise<Response> => {
      const res = await fetch(`${server.url}${route}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(json ? { 'content-type': 'application/json' } : {}) },
        ...(json ? { body: JSON.stringify(json) } : {}),
      });
      if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${await res.text()}`);
      return res;
    };
    await api('PUT', '/api/settings/s3', { endpoint: proxy.endpoint, bucket: target.bucket, region: target.region, access_key_id: target.accessKeyId, secret_access_key: target.secretAccessKey, prefix: PREFIX, path_style: true });

    const coldMs: number[] = [];
    const warmMs: number[] = [];
    let staleAfterSeconds: number | null = null;
    for (let i = 0; i < jobs + opts.requests; i++) {
      const job = names[i % jobs]!;
      const t = performance.now();
      const res = await api('GET', `/api/jobs/${job}/backups`);
      const answer = (await res.json()) as { backups: Array<{ where: string }>; stale_after_seconds?: number; bucket_error?: { message: string } | null };
      if (answer.bucket_error) throw new Error(`GET /api/jobs/${job}/backups: the bucket could not be listed: ${answer.bucket_error.message}`);
      const ms = performance.now() - t;
      if (answer.backups.length !== backupsPerJob || answer.backups.some((b) => b.where !== 's3')) {
        throw new Error(`GET /api/jobs/${job}/backups listed ${answer.backups.length} backups (want ${backupsPerJob}, all in S3)`);
      }
      staleAfterSeconds = answer.stale_after_seconds ?? null;
      (i < jobs ? coldMs : warmMs).push(ms);
    }
    log(`console: backups listing cold median ${median(coldMs).toFixed(1)} ms, warm p99 ${percentile(warmMs, 99).toFixed(1)} ms`);

    // The first load: the page and every asset it names, as a browser would fetch them.
    const html = await (await fetch(`${server.url}/`, { headers: { 'accept-encoding': 'gzip' } })).text();
    // Every script, stylesheet and icon the page names (Vite writes them relative: ./assets/...).
    const assets = [...html.matchAll(/(?:src|href)="([^"#][^"]*)"/g)]
      .map((m) => new URL(m[1]!, `${server.url}/`))
      .filter((u) => u.origin === new URL(server.url).origin && u.pathname !== '/')
      .map((u) => u.pathname);
    let bytes = Buffer.byteLength(html);
    let gzipBytes = gzipSync(html).length;
    let servedEncoded = false;
    for (const asset of new Set(assets)) {
      const res = await fetch(`${server.url}${asset}`);
      if (!res.ok) throw new Error(`GET ${asset}: ${res.status}`);
      if (res.headers.get('content-encoding')) servedEncoded = true;
      const buf = Buffer.from(await res.arrayBuffer());
      bytes += buf.length;
      gzipBytes += gzipSync(buf).length;
    }

    // Idle: nobody asks anything; the console must not poll the bucket.
    // V8 gives memory back over the first idle seconds: RSS sampled every 10 s shows how.
    const before = proxy.seen.length;
    const samples: Array<{ atSeconds: number; rssMb: number }> = [{ atSeconds: 0, rssMb: rssOf(server.child.pid!).rssMb }];
    for (let at = 0; at < opts.idleSeconds; ) {
      const step = Math.min(10, opts.idleSeconds - at);
      await new Promise((r) => setTimeout(r, step * 1000));
      at += step;
      samples.push({ atSeconds: at, rssMb: rssOf(server.child.pid!).rssMb });
    }
    const storageRequests = proxy.seen.length - before;
    const rss = rssOf(server.child.pid!);
    return {
      jobs,
      backupsPerJob,
      seedSeconds,
      coldMs,
      warm: { requests: warmMs.length, p50: median(warmMs), p99: percentile(warmMs, 99), max: Math.max(...warmMs) },
      staleAfterSeconds,
      firstLoad: { files: new Set(assets).size + 1, bytes, gzipBytes, servedEncoded },
      idle: { seconds: opts.idleSeconds, storageRequests, ...rss, samples },
    };
  } finally {
    server.child.kill('SIGTERM');
    await new Promise((r) => server.child.once('exit', r));
    await proxy.close();
    await opts.bucket.deletePrefix(`${PREFIX}/`);
  }
}

export function formatConsoleTable(r: ConsoleBenchResult): string {
  const ms = (x: number) => x.toFixed(1);
  return formatColumns(
    ['measure', 'value'],
    [
      ['catalog and bucket', `${r.jobs} jobs x ${r.backupsPerJob} backups = ${r.jobs * r.backupsPerJob}`],
      ['GET /api/jobs/{name}/backups, cold (first per job: LIST)', `median ${ms(median(r.coldMs))} ms, max ${ms(Math.max(...r.coldMs))} ms`],
      [`GET /api/jobs/{name}/backups, cached (${r.warm.requests} requests)`, `p50 ${ms(r.warm.p50)} ms, p99 ${ms(r.warm.p99)} ms, max ${ms(r.warm.max)} ms`],
      ['listing may be stale for', r.staleAfterSeconds === null ? 'not reported' : `${r.staleAfterSeconds} s (changes made by others)`],
      ['first load', `${r.firstLoad.files} files, ${(r.firstLoad.bytes / 1000).toFixed(1)} KB raw, ${(r.firstLoad.gzipBytes / 1000).toFixed(1)} KB gzip${r.firstLoad.servedEncoded ? ' (served compressed)' : ''}`],
      [`idle ${r.idle.seconds} s`, `${r.idle.storageRequests} storage requests, RSS ${r.idle.rssMb.toFixed(0)} MB at the end (peak ${r.idle.peakRssMb.toFixed(0)} MB during the requests)`],
      ['RSS while idle, every 10 s', r.idle.samples.map((x) => `${x.atSeconds} s ${x.rssMb.toFixed(0)} MB`).join(', ')],
    ],
  );
}

export function checkConsoleTargets(r: ConsoleBenchResult): TargetCheck[] {
  return [
    { name: 'backups listing p99 < 50 ms', pass: r.warm.p99 < 50, value: `${r.warm.p99.toFixed(1)} ms` },
    { name: 'first load < 250 KB gzip', pass: r.firstLoad.gzipBytes < 250_000, value: `${(r.firstLoad.gzipBytes / 1000).toFixed(1)} KB` },
    { name: 'idle RSS < 120 MB', pass: r.idle.rssMb < 120, value: `${r.idle.rssMb.toFixed(0)} MB` },
    { name: 'idle requests to storage = 0', pass: r.idle.storageRequests === 0, value: `${r.idle.storageRequests} in ${r.idle.seconds} s` },
  ];
}
