// Backing up a live SQLite database (WAL mode, BENCH_SQLITE_MIB, 1 GiB) while it is written to,
// looked at three ways:
//   1. time, each tool in its own process under /usr/bin/time while a writer process commits
//      every 20 ms:
//        offsite                `bin/offsite backup bench --config CFG` (source = "sqlite:DB")
//        sqlite3-backup         `sqlite3 DB ".backup X" && aws s3 cp X s3://…` (the issue's peer)
//        sqlite3-backup-paused  the same with the writer stopped (SIGSTOP): the peer's best case
//        sqlite3-vacuum-into    `sqlite3 DB "VACUUM INTO 'X'" && aws s3 cp X s3://…`
//      The CLI's .backup copies 100 pages per step and starts again whenever another process
//      commits between steps, so it gets a time limit (BENCH_SQLITE_PEER_TIMEOUT) and a run that
//      hits it is recorded as unfinished, not as a failure. Every Offsite backup is downloaded
//      (untimed), hashed against what Offsite reported and integrity-checked: a wrong copy fails
//      the bench. The peers' copies are checked and recorded.
//   2. an application that embeds startBackupLoop() (dist/index.js), configured by environment
//      variables only, and writes to the same database every 20 ms itself: its event-loop delay
//      while the loop backs the database up; then the same program with the peer's backup
//      (VACUUM INTO, sha256sum, aws s3 cp in a child at nice 10) instead: this machine's floor.
//   3. `bin/offsite daemon` with one job whose run was just recorded (next run an hour away),
//      idle for BENCH_IDLE_SECONDS: the requests reaching storage (through a counting proxy), its
//      CPU time and RSS (from /proc), and a clean exit on SIGTERM.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import type { BackupRunResult } from '../../src/backup/jobs/index.js';
import { runMeasured, runQuiet, sha256File, type Command } from '../measure.js';
import { AWS_BIN, awsEnv, cleanEnv, versionOf, warmUpServer, withNodeOnPath } from '../peers.js';
import { startCountingProxy } from '../counting-proxy.js';
import { formatColumns, median, type TargetCheck } from '../report.js';
import type { BenchBucket } from '../target.js';
import { BenchFailure, type Measurement, type S3Target } from '../types.js';

export const SCENARIO = 'sqlite-backup';
export const SQLITE_BIN = process.env.BENCH_SQLITE_BIN ?? '/usr/bin/sqlite3';
export const SQLITE_TOOLS = ['offsite', 'sqlite3-backup', 'sqlite3-backup-paused', 'sqlite3-vacuum-into'];

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const offsiteBin = path.join(root, 'bin', 'offsite');
const JOB = 'bench';
/** Characters of each row's payload (hex of random bytes, so nothing compresses). */
const PAYLOAD_CHARS = 500;
const WRITER_TICK_MS = 20;
const HOST_INSERT_MS = 20;
/** How long the host runs with its inserts but no backup, for a baseline of its own delay. */
const HOST_BASELINE_MS = 3000;

/** Processes this scenario started and has not stopped yet (writer, daemon), for Ctrl-C. */
const children = new Set<ChildProcess>();

/** Stops the writer and the daemon if they are running (a paused writer is woken first). */
export function killSqliteChildren(): void {
  for (const child of children) {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) continue;
    try {
      process.kill(child.pid, 'SIGCONT');
      process.kill(child.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  children.clear();
}

interface RgwHarness {
  ensureDebianPackages(packagesByCommand: Record<string, string[]>): void;
}

/** Debian's sqlite3 CLI is the peer; installed when missing, as the other peers are. */
export async function ensureSqliteCli(): Promise<void> {
  // scripts/ is plain JavaScript without type declarations: imported by URL, typed here.
  const { ensureDebianPackages } = (await import(new URL('../../scripts/rgw.mjs', import.meta.url).href)) as RgwHarness;
  ensureDebianPackages({ [SQLITE_BIN]: ['sqlite3'] });
}

/** Everything a tool's environment may not inherit: another S3 target or another Offsite job. */
function isolatedEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env = cleanEnv();
  for (const k of Object.keys(env)) if (/^(OFFSITE_|S3_)/.test(k)) delete env[k];
  return { ...env, ...extra };
}

const offsiteEnv = (target: S3Target) =>
  withNodeOnPath(isolatedEnv({ AWS_ACCESS_KEY_ID: target.accessKeyId, AWS_SECRET_ACCESS_KEY: target.secretAccessKey, AWS_EC2_METADATA_DISABLED: 'true' }));

const s3Url = (target: S3Target, prefix: string, endpoint = target.endpoint) => `s3://${target.bucket}/${prefix}?endpoint=${endpoint}&region=${target.region}&path_style=true`;

function removeDatabaseFile(file: string): void {
  for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(`${file}${suffix}`, { force: true });
}

// ---- the database and its writer

export interface SqliteSource {
  file: string;
  bytes: number;
  rows: number;
  buildSeconds: number;
}

/** A table of rows with 500-character payloads, grown in large transactions until `bytes`. */
export function buildDatabase(file: string, bytes: number): SqliteSource {
  const t0 = Date.now();
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    // Only while building: nothing is lost if the bench dies now.
    db.pragma('synchronous = OFF');
    db.exec('CREATE TABLE rows (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)');
    const insert = db.prepare('INSERT INTO rows (payload) VALUES (?)');
    const insertMany = db.transaction((n: number) => {
      const hex = randomBytes((PAYLOAD_CHARS / 2) * n).toString('hex');
      for (let i = 0; i < n; i++) insert.run(hex.slice(i * PAYLOAD_CHARS, (i + 1) * PAYLOAD_CHARS));
    });
    const size = () => (db.pragma('page_count', { simple: true }) as number) * (db.pragma('page_size', { simple: true }) as number);
    while (size() < bytes) insertMany(20_000);
    db.pragma('wal_checkpoint(TRUNCATE)');
    const rows = (db.prepare('SELECT MAX(id) AS n FROM rows').get() as { n: number }).n;
    return { file, bytes: statSync(file).size, rows, buildSeconds: (Date.now() - t0) / 1000 };
  } finally {
    db.close();
  }
}

/** The newest row id: the writers insert ids 1, 2, 3, … so this is also the row count. */
function lastRowId(file: string): number {
  const db = new Database(file, { readonly: true, fileMustExist: true, timeout: 10_000 });
  try {
    return (db.prepare('SELECT COALESCE(MAX(id), 0) AS n FROM rows').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

export interface CopyCheck {
  integrity: string;
  rows: number;
  /** Ids 1..rows with none missing: a consistent prefix of the inserts. */
  gapless: boolean;
  ok: boolean;
}

function checkCopy(file: string): CopyCheck {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const integrity = (db.pragma('integrity_check') as Array<{ integrity_check: string }>).map((r) => r.integrity_check).join('; ');
    const { n, max } = db.prepare('SELECT COUNT(*) AS n, COALESCE(MAX(id), 0) AS max FROM rows').get() as { n: number; max: number };
    return { integrity, rows: n, gapless: n === max, ok: integrity === 'ok' && n === max };
  } finally {
    db.close();
  }
}

export interface Writer {
  rowsPerSecond: number;
  pause(): void;
  resume(): void;
  /** Throws BenchFailure if the writer died (a SQLITE_BUSY it could not wait out, say). */
  assertAlive(): void;
  stop(): Promise<void>;
}

/**
 * Another process committing a small transaction every 20 ms (`rowsPerSecond` rows a second),
 * as an application does. Paced rather than flat out: a writer that never pauses fills a core
 * of the two and grows the WAL by several MB a second while a backup holds its snapshot.
 */
export async function startWriter(file: string, rowsPerSecond: number): Promise<Writer> {
  const perCommit = Math.max(1, Math.round((rowsPerSecond * WRITER_TICK_MS) / 1000));
  const code = `
    const Database = require('better-sqlite3');
    const { randomBytes } = require('node:crypto');
    const db = new Database(${JSON.stringify(file)}, { timeout: 10000 });
    db.pragma('journal_mode = WAL');
    const insert = db.prepare('INSERT INTO rows (payload) VALUES (?)');
    const commit = db.transaction((n) => {
      const hex = randomBytes(${PAYLOAD_CHARS / 2} * n).toString('hex');
      for (let i = 0; i < n; i++) insert.run(hex.slice(i * ${PAYLOAD_CHARS}, (i + 1) * ${PAYLOAD_CHARS}));
    });
    process.on('SIGTERM', () => { db.close(); process.exit(0); });
    setInterval(() => commit(${perCommit}), ${WRITER_TICK_MS});
    process.stdout.write('ready\\n');
  `;
  // From the repository, so that require('better-sqlite3') finds its node_modules.
  const child = spawn(process.execPath, ['-e', code], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
  const died = () => new BenchFailure(`the SQLite writer exited (${child.signalCode ?? `exit ${child.exitCode}`}): ${stderr.trim()}`);
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', () => reject(died()));
  });
  const signal = (s: NodeJS.Signals) => {
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, s);
  };
  return {
    rowsPerSecond: (perCommit * 1000) / WRITER_TICK_MS,
    pause: () => signal('SIGSTOP'),
    resume: () => signal('SIGCONT'),
    assertAlive: () => {
      if (child.exitCode !== null || child.signalCode !== null) throw died();
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        signal('SIGCONT');
        signal('SIGTERM');
        await once(child, 'exit');
      }
      children.delete(child);
    },
  };
}

// ---- 1. backup time while the writer runs

export interface SqliteToolInfo {
  name: string;
  version: string;
  /** Whether the writer runs during this tool's backup. */
  writer: 'running' | 'paused';
}

export function toolInfo(name: string): SqliteToolInfo {
  const sqliteVersion = () => `sqlite3 ${versionOf(SQLITE_BIN, ['--version'], cleanEnv()).split(' ')[0]} | ${versionOf(AWS_BIN, ['--version'], cleanEnv()).split(' ')[0]}`;
  if (name === 'offsite') {
    const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
    return { name, version: `offsite ${version} (Node ${process.version})`, writer: 'running' };
  }
  if (!SQLITE_TOOLS.includes(name)) throw new BenchFailure(`BENCH_SQLITE_TOOLS: unknown tool ${name} (known: ${SQLITE_TOOLS.join(', ')})`);
  return { name, version: sqliteVersion(), writer: name === 'sqlite3-backup-paused' ? 'paused' : 'running' };
}

export interface BackupRoundsOptions {
  tools: SqliteToolInfo[];
  target: S3Target;
  bucket: BenchBucket;
  scratchDir: string;
  source: SqliteSource;
  writer: Writer;
  runs: number;
  peerTimeoutSeconds: number;
  log: (line: string) => void;
}

/** What `offsite --json backup` prints. */
type OffsiteBackupResult = BackupRunResult;

export async function backupRounds(o: BackupRoundsOptions): Promise<Measurement[]> {
  const rows: Measurement[] = [];
  await warmUpServer(o.target, o.bucket, o.scratchDir, o.source.file, o.log, { live: true });
  for (let run = 1; run <= o.runs; run++) {
    const order = o.tools.map((_, i) => o.tools[(i + run - 1) % o.tools.length]!);
    for (const tool of order) {
      const prefix = `sqlite/${tool.name}-run-${run}/`;
      const bytes = statSync(o.source.file).size;
      let m: Measurement;
      try {
        m = tool.name === 'offsite' ? await offsiteRound(o, run, prefix, bytes) : await peerRound(o, tool, run, prefix, bytes);
      } finally {
        o.writer.resume();
        await o.bucket.deletePrefix(prefix);
      }
      o.writer.assertAlive();
      rows.push(m);
      const d = m.detail as { finished: boolean; check?: CopyCheck; rowsWritten?: number };
      const outcome = d.finished ? `copy ${d.check?.ok ? 'ok' : 'NOT ok'} (${d.check?.rows} rows, integrity ${d.check?.integrity})` : `did not finish: ${String(m.detail?.reason)}`;
      o.log(`run ${run} ${tool.name.padEnd(21)} ${m.seconds.toFixed(1)} s  peak RSS ${(m.peakRssBytes / 1e6).toFixed(0)} MB  writer ${tool.writer} (+${d.rowsWritten ?? 0} rows)  ${outcome}`);
    }
  }
  return rows;
}

async function offsiteRound(o: BackupRoundsOptions, run: number, prefix: string, bytes: number): Promise<Measurement> {
  const dir = path.join(o.scratchDir, 'offsite');
  mkdirSync(dir, { recursive: true });
  const config = path.join(dir, 'offsite.toml');
  writeFileSync(config, jobConfig({ source: o.source.file, destination: s3Url(o.target, prefix), localDir: path.join(dir, 'local'), catalog: path.join(dir, 'catalog.db') }));
  const rowsBefore = lastRowId(o.source.file);
  const r = await runMeasured({ cmd: offsiteBin, args: ['--json', '--no-progress', 'backup', JOB, '--config', config], env: offsiteEnv(o.target), cwd: dir }, 'offsite backup', o.scratchDir);
  const rowsWritten = lastRowId(o.source.file) - rowsBefore;
  const result = JSON.parse(r.stdout) as OffsiteBackupResult;
  if (!result.uploaded) throw new BenchFailure(`offsite backup (run ${run}) did not upload: ${result.uploadError ?? 'no reason given'}`);

  // The copy in the bucket is the backup: download it (not timed) and check that one.
  const copy = path.join(o.scratchDir, 'offsite-download.sqlite');
  try {
    await runQuiet(
      { cmd: AWS_BIN, args: ['--endpoint-url', o.target.endpoint, 's3', 'cp', '--no-progress', '--only-show-errors', `s3://${o.target.bucket}/${prefix}${result.name}`, copy], env: awsEnv(o.target, o.scratchDir) },
      'aws s3 cp (download of the Offsite backup)',
    );
    const got = await sha256File(copy);
    if (got.size !== result.size || got.sha256 !== result.sha256) {
      throw new BenchFailure(`offsite backup (run ${run}): the object in the bucket differs from what offsite reported (size ${got.size} vs ${result.size}, sha256 ${got.sha256.slice(0, 16)}… vs ${result.sha256.slice(0, 16)}…)`);
    }
    const check = checkCopy(copy);
    if (!check.ok) throw new BenchFailure(`offsite backup (run ${run}): the backup is not a sound database (integrity_check: ${check.integrity}; ${check.rows} rows, ids ${check.gapless ? 'gapless' : 'with gaps'})`);
    return {
      scenario: SCENARIO,
      tool: 'offsite',
      op: 'backup',
      run,
      bytes,
      seconds: r.seconds,
      peakRssBytes: r.peakRssBytes,
      config: { writer: 'running', writerRowsPerSecond: o.writer.rowsPerSecond },
      detail: { finished: true, check, rowsWritten, inProcessSeconds: result.seconds, backupBytes: result.size, requests: result.requests },
    };
  } finally {
    removeDatabaseFile(copy);
    rmSync(result.localPath, { force: true });
    rmSync(`${result.localPath}.sha256`, { force: true });
  }
}

function jobConfig(j: { source: string; destination: string; localDir: string; catalog: string }): string {
  return [
    '[catalog]',
    `path = ${JSON.stringify(j.catalog)}`,
    '',
    `[jobs.${JOB}]`,
    `source = ${JSON.stringify(`sqlite:${j.source}`)}`,
    `destination = ${JSON.stringify(j.destination)}`,
    `local_dir = ${JSON.stringify(j.localDir)}`,
    'schedule = "3600"',
    '',
  ].join('\n');
}

/**
 * One bash process, so /usr/bin/time covers both steps (its peak RSS is the larger of the two
 * processes). The copy step runs under `timeout`; a status file tells the harness how each step
 * ended and how long it took, and the script exits 0 when the copy did not finish so that the
 * time and RSS are still measured.
 */
const PEER_SCRIPT = `
set -u
sqlite=$1 db=$2 copy_sql=$3 copy=$4 limit=$5 status=$6 aws=$7 endpoint=$8 url=$9
t0=$(date +%s%N)
timeout "$limit" "$sqlite" "$db" "$copy_sql"
rc=$?
t1=$(date +%s%N)
echo "copy $rc $(( (t1 - t0) / 1000000 ))" > "$status"
[ "$rc" -eq 0 ] || exit 0
"$aws" --endpoint-url "$endpoint" s3 cp --no-progress --only-show-errors "$copy" "$url"
rc=$?
t2=$(date +%s%N)
echo "upload $rc $(( (t2 - t1) / 1000000 ))" >> "$status"
exit "$rc"
`;

async function peerRound(o: BackupRoundsOptions, tool: SqliteToolInfo, run: number, prefix: string, bytes: number): Promise<Measurement> {
  const copy = path.join(o.scratchDir, `${tool.name}.db`);
  const status = path.join(o.scratchDir, `${tool.name}.status`);
  removeDatabaseFile(copy);
  const copySql = tool.name === 'sqlite3-vacuum-into' ? `VACUUM INTO '${copy.replace(/'/g, "''")}'` : `.backup "${copy}"`;
  const command: Command = {
    cmd: 'bash',
    args: ['-c', PEER_SCRIPT, 'peer', SQLITE_BIN, o.source.file, copySql, copy, String(o.peerTimeoutSeconds), status, AWS_BIN, o.target.endpoint, `s3://${o.target.bucket}/${prefix}${path.basename(copy)}`],
    env: awsEnv(o.target, o.scratchDir),
  };
  if (tool.writer === 'paused') o.writer.pause();
  const rowsBefore = lastRowId(o.source.file);
  try {
    const r = await runMeasured(command, `${tool.name} (${copySql.split(' ')[0]} | aws s3 cp)`, o.scratchDir);
    const rowsWritten = lastRowId(o.source.file) - rowsBefore;
    o.writer.resume();
    const steps = Object.fromEntries(
      readFileSync(status, 'utf8')
        .trim()
        .split('\n')
        .map((l) => l.split(' '))
        .map(([step, rc, ms]) => [step!, { rc: Number(rc), seconds: Number(ms) / 1000 }]),
    ) as Record<string, { rc: number; seconds: number }>;
    const copyStep = steps.copy!;
    const base = { scenario: SCENARIO, tool: tool.name, op: 'backup', run, bytes, seconds: r.seconds, peakRssBytes: r.peakRssBytes, config: { writer: tool.writer, writerRowsPerSecond: o.writer.rowsPerSecond } };
    if (copyStep.rc !== 0) {
      const reason = copyStep.rc === 124 ? `no complete copy within ${o.peerTimeoutSeconds} s (BENCH_SQLITE_PEER_TIMEOUT)` : `sqlite3 exit ${copyStep.rc}: ${r.stderr.trim().slice(-300)}`;
      return { ...base, detail: { finished: false, reason, rowsWritten, copySeconds: copyStep.seconds } };
    }
    // The peer's copy is checked and recorded; only Offsite's decides the exit code.
    const check = checkCopy(copy);
    return { ...base, detail: { finished: true, check, rowsWritten, copySeconds: copyStep.seconds, uploadSeconds: steps.upload?.seconds } };
  } finally {
    removeDatabaseFile(copy);
    rmSync(status, { force: true });
  }
}

// ---- 2. the host application's event loop

export interface HostRun {
  run: number;
  /** monitorEventLoopDelay({ resolution: 10 }) while the loop backed up, less the 10 ms itself. */
  eldMaxMs: number;
  eldP99Ms: number;
  eldMeanMs: number;
  /** How much later than due a 10 ms setInterval ran, at worst. */
  worstLateMs: number;
  /** The same, less the time the host's own INSERTs took in that interval: delay from elsewhere. */
  worstLateOtherMs: number;
  /** The host's own slowest INSERT (synchronous, on its event loop: a commit waits for fsync). */
  worstInsertMs: number;
  /** INSERTs that took 50 ms or more. */
  slowInserts: number;
  inserts: number;
  /** The same figures for the 3 s before the loop started (inserts only). */
  baseline: { eldMaxMs: number; eldP99Ms: number; worstLateMs: number; worstLateOtherMs: number; worstInsertMs: number };
  /** From startBackupLoop() to the run-ok event. */
  backupSeconds: number;
  /** The host process under /usr/bin/time: wall time and peak RSS. */
  processSeconds: number;
  peakRssBytes: number;
  result: OffsiteBackupResult;
  check: CopyCheck;
  /** The same host with the peer's backup (VACUUM INTO, sha256sum, aws s3 cp at nice 10) instead, right after. */
  floor: { eldMaxMs: number; eldP99Ms: number; worstInsertMs: number; backupSeconds: number; check: CopyCheck };
}

/**
 * The host: a plain Node program, as an application embedding Offsite would be. `backup`
 * 'offsite': it calls startBackupLoop(). 'peer': the same program, but the backup is the tools a
 * user would run instead (BENCH_HOST_PEER_ARGV: VACUUM INTO, sha256sum, aws s3 cp) in a child at
 * the same nice 10 as Offsite's: what the host sees then is this machine's floor, not Offsite's.
 */
export function hostScript(dbFile: string, limitMs: number, backup: 'offsite' | 'peer' = 'offsite'): string {
  const distIndex = pathToFileURL(path.join(root, 'dist', 'index.js')).href;
  const importBackup = backup === 'offsite' ? `import { startBackupLoop } from ${JSON.stringify(distIndex)};` : `import { spawn } from 'node:child_process';`;
  const startBackup =
    backup === 'offsite'
      ? `const loop = startBackupLoop({
  onEvent: (e) => {
    if (e.type === 'run-ok' || e.type === 'run-failed' || e.type === 'config-failed') finish(e);
  },
});`
      : `const loop = { stop: async () => {} };
const peer = spawn('nice', ['-n', '10', ...JSON.parse(process.env.BENCH_HOST_PEER_ARGV)], { stdio: ['ignore', 'ignore', 'inherit'] });
peer.on('exit', (code) => finish(code === 0 ? { type: 'run-ok', result: { uploaded: true, localPath: process.env.BENCH_HOST_PEER_COPY } } : { type: 'run-failed', error: 'the peer exited with ' + code }));`;
  return `// The application of the ${SCENARIO} bench (written by bench/scenarios/${SCENARIO}.ts): it inserts a
// row every ${HOST_INSERT_MS} ms and backs its database up (${backup === 'offsite' ? 'startBackupLoop(), configured by the environment alone' : 'the peer tools in a child at nice 10'}),
// and reports how late its event loop ran meanwhile as one JSON line.
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
${importBackup}

const Database = createRequire(${JSON.stringify(path.join(root, 'package.json'))})('better-sqlite3');
const ms = (ns) => ns / 1e6;
// monitorEventLoopDelay records the whole gap between its 10 ms timer's runs (an idle loop gives
// 10.2 ms at p99): the delay is what is past the 10 ms.
const delayMs = (ns) => Math.max(0, ms(ns) - 10);
const db = new Database(${JSON.stringify(dbFile)}, { timeout: 10000 });
db.pragma('journal_mode = WAL');
const insert = db.prepare('INSERT INTO rows (payload) VALUES (?)');

let inserts = 0;
let slowInserts = 0;
let worstInsertMs = 0;
// Time spent in the host's own INSERTs since the last tick: taken out of that tick's lateness,
// what is left is the delay that came from elsewhere (the loop, garbage collection, ...).
let insertMsSinceTick = 0;
const writes = setInterval(() => {
  const t = performance.now();
  insert.run(randomBytes(${PAYLOAD_CHARS / 2}).toString('hex'));
  const took = performance.now() - t;
  worstInsertMs = Math.max(worstInsertMs, took);
  insertMsSinceTick += took;
  if (took >= 50) slowInserts++;
  inserts++;
}, ${HOST_INSERT_MS});

let lastTick = performance.now();
let worstLateMs = 0;
let worstLateOtherMs = 0;
const ticks = setInterval(() => {
  const now = performance.now();
  const late = now - lastTick - 10;
  worstLateMs = Math.max(worstLateMs, late);
  worstLateOtherMs = Math.max(worstLateOtherMs, late - insertMsSinceTick);
  insertMsSinceTick = 0;
  lastTick = now;
}, 10);

const eld = monitorEventLoopDelay({ resolution: 10 });
eld.enable();
await new Promise((resolve) => setTimeout(resolve, ${HOST_BASELINE_MS}));
const baseline = { eldMaxMs: delayMs(eld.max), eldP99Ms: delayMs(eld.percentile(99)), worstLateMs, worstLateOtherMs, worstInsertMs };
eld.reset();
worstLateMs = 0;
worstLateOtherMs = 0;
worstInsertMs = 0;
inserts = 0;
slowInserts = 0;

let finish;
const finished = new Promise((resolve) => (finish = resolve));
const t0 = performance.now();
${startBackup}
const guard = setTimeout(() => finish({ type: 'timeout', error: 'no run-ok or run-failed event within ${limitMs / 1000} s' }), ${limitMs});
const outcome = await finished;
const backupSeconds = (performance.now() - t0) / 1000;
clearTimeout(guard);
await loop.stop();
eld.disable();
clearInterval(ticks);
clearInterval(writes);
db.close();
const ok = outcome.type === 'run-ok' && outcome.result.uploaded;
if (!ok) console.error('backup loop: ' + outcome.type + ': ' + (outcome.error ?? 'not uploaded'));
process.stdout.write(JSON.stringify({
  outcome: outcome.type,
  result: outcome.result,
  backupSeconds,
  inserts,
  eldMaxMs: delayMs(eld.max),
  eldP99Ms: delayMs(eld.percentile(99)),
  eldMeanMs: delayMs(eld.mean),
  worstLateMs,
  worstLateOtherMs,
  worstInsertMs,
  slowInserts,
  baseline,
}) + '\\n');
process.exit(ok ? 0 : 1);
`;
}

export interface HostRunsOptions {
  target: S3Target;
  bucket: BenchBucket;
  scratchDir: string;
  source: SqliteSource;
  runs: number;
  log: (line: string) => void;
}

/**
 * The co-located Ceph processes set to `nice`. The server stands in for a remote one: with
 * BENCH_HOST_SERVER_NICE=19 its CPU use on these 2 cores no longer competes with the host at
 * equal priority, as it would not in a deployment; the default (unset) leaves it as it is.
 * With the kernel's autogroups (sched_autogroup_enabled=1, as here) a thread's nice orders it
 * only within its session's group, and groups share the CPUs equally: the groups' own nice
 * (/proc/PID/autogroup) is what counts. Every thread is reniced as well, for kernels without
 * them (renice on a pid moves only its main thread).
 */
function reniceServer(nice: number): void {
  const pids = spawnSync('pgrep', ['-x', '-d', ' ', 'radosgw|ceph-osd|ceph-mon'], { encoding: 'utf8' }).stdout.trim().split(/\s+/).filter(Boolean);
  for (const pid of pids) {
    try {
      writeFileSync(`/proc/${pid}/autogroup`, String(nice));
    } catch {
      // no autogroups in this kernel: the threads' nice below is what counts
    }
  }
  const tids = pids.flatMap((pid) => readdirSync(`/proc/${pid}/task`));
  if (tids.length) spawnSync('renice', ['-n', String(nice), '-p', ...tids], { stdio: 'ignore' });
}

export async function hostRuns(o: HostRunsOptions): Promise<HostRun[]> {
  const serverNice = process.env.BENCH_HOST_SERVER_NICE;
  if (serverNice !== undefined) {
    reniceServer(Number(serverNice));
    o.log(`host runs: the Ceph processes (their autogroups and threads) at nice ${serverNice} (BENCH_HOST_SERVER_NICE)`);
  }
  try {
    return await hostRunsAt(o);
  } finally {
    if (serverNice !== undefined) reniceServer(0);
  }
}

async function hostRunsAt(o: HostRunsOptions): Promise<HostRun[]> {
  const script = path.join(o.scratchDir, 'host-app.mjs');
  writeFileSync(script, hostScript(o.source.file, 30 * 60_000));
  const floorScript = path.join(o.scratchDir, 'host-app-peer.mjs');
  writeFileSync(floorScript, hostScript(o.source.file, 30 * 60_000, 'peer'));
  const out: HostRun[] = [];
  for (let run = 1; run <= o.runs; run++) {
    // A fresh directory: no catalog, so no recorded run, so the loop backs up at once.
    const cwd = path.join(o.scratchDir, `host-run-${run}`);
    mkdirSync(cwd, { recursive: true });
    const prefix = `host/run-${run}/`;
    const env = isolatedEnv({
      AWS_ACCESS_KEY_ID: o.target.accessKeyId,
      AWS_SECRET_ACCESS_KEY: o.target.secretAccessKey,
      AWS_EC2_METADATA_DISABLED: 'true',
      OFFSITE_BACKUP_SOURCE: `sqlite:${o.source.file}`,
      S3_BUCKET: o.target.bucket,
      S3_ENDPOINT: o.target.endpoint,
      S3_REGION: o.target.region,
      S3_KEY_PREFIX: prefix,
      S3_SYNC_INTERVAL: '3600',
      OFFSITE_BACKUP_LOCAL_DIR: path.join(cwd, 'backups'),
    });
    try {
      const r = await runMeasured({ cmd: process.execPath, args: [script], env, cwd }, 'host application with startBackupLoop()', o.scratchDir);
      const h = JSON.parse(r.stdout.trim().split('\n').pop()!) as Omit<HostRun, 'run' | 'processSeconds' | 'peakRssBytes' | 'check' | 'floor'>;
      const check = checkCopy(h.result.localPath);
      if (!check.ok) throw new BenchFailure(`host backup (run ${run}): the backup is not a sound database (integrity_check: ${check.integrity}; ids ${check.gapless ? 'gapless' : 'with gaps'})`);
      o.log(
        `host run ${run}: backup ${h.backupSeconds.toFixed(1)} s, event-loop delay max ${h.eldMaxMs.toFixed(1)} ms p99 ${h.eldP99Ms.toFixed(1)} ms, interval late ≤ ${h.worstLateMs.toFixed(1)} ms ` +
          `(${h.worstLateOtherMs.toFixed(1)} ms without its own inserts), own insert ≤ ${h.worstInsertMs.toFixed(1)} ms (${h.slowInserts} of ${h.inserts} ≥ 50 ms; before the backup: delay max ${h.baseline.eldMaxMs.toFixed(1)} ms p99 ${h.baseline.eldP99Ms.toFixed(1)} ms), copy ok (${check.rows} rows)`,
      );
      const floor = await floorRun(o, floorScript, cwd, `${prefix}peer/`, run);
      out.push({ run, ...h, processSeconds: r.seconds, peakRssBytes: r.peakRssBytes, check, floor });
    } finally {
      rmSync(cwd, { recursive: true, force: true });
      await o.bucket.deletePrefix(prefix);
    }
  }
  return out;
}

/**
 * The same host program with the peer's backup instead of Offsite's (hostScript 'peer'): the
 * copy, hash and upload a user would script, at the same nice 10. Its delays are what this
 * machine gives a host whatever does the backup (the server, the page cache and the loopback
 * network share its 2 cores).
 */
async function floorRun(o: HostRunsOptions, script: string, cwd: string, prefix: string, run: number): Promise<HostRun['floor']> {
  const copy = path.join(cwd, 'peer-copy.db');
  removeDatabaseFile(copy);
  const argv = [
    'bash',
    '-c',
    'set -e; "$1" "$2" "$3"; sha256sum "$4" > /dev/null; "$5" --endpoint-url "$6" s3 cp --no-progress --only-show-errors "$4" "$7"',
    'floor',
    SQLITE_BIN,
    o.source.file,
    `VACUUM INTO '${copy.replace(/'/g, "''")}'`,
    copy,
    AWS_BIN,
    o.target.endpoint,
    `s3://${o.target.bucket}/${prefix}${path.basename(copy)}`,
  ];
  const env = { ...awsEnv(o.target, o.scratchDir), BENCH_HOST_PEER_ARGV: JSON.stringify(argv), BENCH_HOST_PEER_COPY: copy };
  const r = await runMeasured({ cmd: process.execPath, args: [script], env, cwd }, 'host application with the peer backup', o.scratchDir);
  const h = JSON.parse(r.stdout.trim().split('\n').pop()!) as Pick<HostRun, 'eldMaxMs' | 'eldP99Ms' | 'worstInsertMs' | 'backupSeconds'>;
  const check = checkCopy(copy);
  if (!check.ok) throw new BenchFailure(`host floor run ${run}: the peer's copy is not a sound database (integrity_check: ${check.integrity})`);
  o.log(`host run ${run}, the peer's backup instead: ${h.backupSeconds.toFixed(1)} s, event-loop delay max ${h.eldMaxMs.toFixed(1)} ms p99 ${h.eldP99Ms.toFixed(1)} ms, own insert ≤ ${h.worstInsertMs.toFixed(1)} ms`);
  return { eldMaxMs: h.eldMaxMs, eldP99Ms: h.eldP99Ms, worstInsertMs: h.worstInsertMs, backupSeconds: h.backupSeconds, check };
}

// ---- 3. the idle daemon

/** utime + stime of a process (all its threads), in seconds, and its resident set. */
function processUsage(pid: number, ticksPerSecond: number): { cpuSeconds: number; rssBytes: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces), from field 3 on: utime is 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  const rssKb = Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
  return { cpuSeconds: ticks / ticksPerSecond, rssBytes: rssKb * 1024 };
}

export interface IdleSample {
  atSeconds: number;
  requests: number;
  cpuSeconds: number;
  rssBytes: number;
}

export interface IdleResult {
  idleSeconds: number;
  /** Requests the priming `offsite backup` made through the proxy: shows the proxy counts. */
  primingRequests: number;
  primingSeconds: number;
  /** Requests from the daemon's start to its exit. */
  requests: number;
  requestLog: string[];
  nextRunAt: string;
  /** CPU time from exec to the 'started' event (loading the code, reading the config). */
  startupCpuSeconds: number;
  /** CPU time during the idle window. */
  idleCpuSeconds: number;
  rssStartBytes: number;
  rssEndBytes: number;
  rssMaxBytes: number;
  exit: string;
  samples: IdleSample[];
}

export interface IdleOptions {
  target: S3Target;
  bucket: BenchBucket;
  scratchDir: string;
  source: SqliteSource;
  idleSeconds: number;
  log: (line: string) => void;
}

export async function idleDaemon(o: IdleOptions): Promise<IdleResult> {
  const dir = path.join(o.scratchDir, 'daemon');
  mkdirSync(dir, { recursive: true });
  const proxy = await startCountingProxy(o.target.endpoint);
  const prefix = 'daemon/';
  const config = path.join(dir, 'offsite.toml');
  const localDir = path.join(dir, 'local');
  writeFileSync(config, jobConfig({ source: o.source.file, destination: s3Url(o.target, prefix, proxy.endpoint), localDir, catalog: path.join(dir, 'catalog.db') }));
  const env = offsiteEnv(o.target);
  let daemon: ChildProcess | undefined;
  try {
    // Records a run in the catalog, so that the daemon's next run is an hour away.
    const primed = await runMeasured({ cmd: offsiteBin, args: ['--json', '--no-progress', 'backup', JOB, '--config', config], env, cwd: dir }, 'offsite backup (before the idle daemon)', o.scratchDir);
    const primingRequests = proxy.seen.length;
    if (primingRequests === 0) throw new BenchFailure('the counting proxy saw no request from the priming backup: it is not in the path, so an idle count of 0 would mean nothing');
    rmSync(localDir, { recursive: true, force: true });
    o.log(`daemon: priming backup ${primed.seconds.toFixed(1)} s, ${primingRequests} request(s) through the proxy`);

    const ticksPerSecond = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
    const requestsBefore = proxy.seen.length;
    daemon = spawn(offsiteBin, ['--json', 'daemon', '--config', config], { env, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(daemon);
    const pid = daemon.pid!;
    let stderr = '';
    daemon.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
    const started = await waitForStarted(daemon, 60_000, () => stderr);
    const job = started.jobs.find((j) => j.job === JOB);
    if (!job?.nextRunAt) throw new BenchFailure(`the daemon runs job ${JOB} now instead of in an hour: the priming run was not recorded (${JSON.stringify(started)})`);
    const atStart = processUsage(pid, ticksPerSecond);
    o.log(`daemon: started (pid ${pid}), next run ${job.nextRunAt}; idle for ${o.idleSeconds} s`);

    const t0 = Date.now();
    const samples: IdleSample[] = [];
    const sample = () => {
      const u = processUsage(pid, ticksPerSecond);
      samples.push({ atSeconds: (Date.now() - t0) / 1000, requests: proxy.seen.length - requestsBefore, cpuSeconds: u.cpuSeconds - atStart.cpuSeconds, rssBytes: u.rssBytes });
    };
    sample();
    const every = Math.min(10, o.idleSeconds) * 1000;
    while (Date.now() - t0 < o.idleSeconds * 1000) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(every, o.idleSeconds * 1000 - (Date.now() - t0))));
      if (daemon.exitCode !== null || daemon.signalCode !== null) throw new BenchFailure(`the daemon exited while idle (${daemon.signalCode ?? `exit ${daemon.exitCode}`}): ${stderr.trim()}`);
      sample();
      const last = samples[samples.length - 1]!;
      if (samples.length % 6 === 1 || Date.now() - t0 >= o.idleSeconds * 1000) {
        o.log(`daemon: ${last.atSeconds.toFixed(0)} s idle, ${last.requests} request(s), CPU ${last.cpuSeconds.toFixed(2)} s, RSS ${(last.rssBytes / 1e6).toFixed(0)} MB`);
      }
    }
    const end = samples[samples.length - 1]!;
    daemon.kill('SIGTERM');
    const exited = await Promise.race([once(daemon, 'exit') as Promise<[number | null, NodeJS.Signals | null]>, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 30_000))]);
    if (!exited) throw new BenchFailure(`the daemon did not exit within 30 s of SIGTERM: ${stderr.trim()}`);
    children.delete(daemon);
    const [code, signal] = exited;
    if (code !== 0) throw new BenchFailure(`the daemon exited ${signal ?? `with ${code}`} on SIGTERM, not 0: ${stderr.trim()}`);
    const requestLog = proxy.seen.slice(requestsBefore);
    return {
      idleSeconds: end.atSeconds,
      primingRequests,
      primingSeconds: primed.seconds,
      requests: requestLog.length,
      requestLog,
      nextRunAt: job.nextRunAt,
      startupCpuSeconds: atStart.cpuSeconds,
      idleCpuSeconds: end.cpuSeconds,
      rssStartBytes: atStart.rssBytes,
      rssEndBytes: end.rssBytes,
      rssMaxBytes: Math.max(...samples.map((s) => s.rssBytes)),
      exit: 'exit 0 on SIGTERM',
      samples,
    };
  } finally {
    if (daemon && daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGKILL');
    if (daemon) children.delete(daemon);
    await proxy.close();
    await o.bucket.deletePrefix(prefix);
    rmSync(dir, { recursive: true, force: true });
  }
}

interface StartedEvent {
  type: 'started';
  jobs: Array<{ job: string; schedule: string; nextRunAt: string | null }>;
}

/** The daemon's `--json` events are one JSON line each on stdout; resolves with 'started'. */
async function waitForStarted(daemon: ChildProcess, limitMs: number, stderr: () => string): Promise<StartedEvent> {
  let buffered = '';
  return new Promise<StartedEvent>((resolve, reject) => {
    const timer = setTimeout(() => reject(new BenchFailure(`the daemon did not report 'started' within ${limitMs / 1000} s: ${stderr().trim()}`)), limitMs);
    daemon.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buffered += d;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        try {
          const event = JSON.parse(line) as { type?: string };
          if (event.type === 'started') {
            clearTimeout(timer);
            resolve(event as StartedEvent);
          }
        } catch {
          // not an event line
        }
      }
    });
    daemon.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new BenchFailure(`the daemon exited (${signal ?? `exit ${code}`}) before it started: ${stderr().trim()}`));
    });
  });
}

// ---- summary, targets, tables

export interface SqliteSummaryRow {
  tool: string;
  writer: 'running' | 'paused';
  runs: number;
  finished: number;
  /** Median wall seconds; a run that did not finish counts with the time it ran (a lower bound). */
  seconds: number;
  /** seconds / sqlite3-backup-paused's seconds. */
  vsPaused?: number;
  peakRssMb: number;
  allSeconds: string[];
  copies: string;
}

export function summariseSqlite(rows: Measurement[]): SqliteSummaryRow[] {
  const out = SQLITE_TOOLS.filter((t) => rows.some((r) => r.tool === t)).map((tool): SqliteSummaryRow => {
    const g = rows.filter((r) => r.tool === tool);
    const finished = g.filter((r) => r.detail?.finished === true);
    const checks = finished.map((r) => r.detail!.check as CopyCheck);
    return {
      tool,
      writer: g[0]!.config!.writer as 'running' | 'paused',
      runs: g.length,
      finished: finished.length,
      seconds: median(g.map((r) => r.seconds)),
      peakRssMb: Math.max(...g.map((r) => r.peakRssBytes / 1e6)),
      allSeconds: g.map((r) => `${r.detail?.finished ? '' : '>'}${r.seconds.toFixed(1)}`),
      copies: `${finished.length}/${g.length} finished${checks.length ? `, ${checks.filter((c) => c.ok).length} sound` : ''}`,
    };
  });
  const base = out.find((s) => s.tool === 'sqlite3-backup-paused' && s.finished === s.runs);
  if (base) for (const s of out) if (s.finished === s.runs) s.vsPaused = s.seconds / base.seconds;
  return out;
}

export function formatSqliteTable(summary: SqliteSummaryRow[]): string {
  return formatColumns(
    ['tool', 'writer', 'seconds', 'vs .backup paused', 'peak RSS MB', 'seconds per run', 'copies'],
    summary.map((s) => [s.tool, s.writer, `${s.finished < s.runs ? '>' : ''}${s.seconds.toFixed(1)}`, s.vsPaused === undefined ? '-' : `${s.vsPaused.toFixed(2)}x`, s.peakRssMb.toFixed(0), s.allSeconds.join(' '), s.copies]),
    [2, 3, 4],
  );
}

export function formatHostIdleTable(host: HostRun[], idle: IdleResult | undefined): string {
  const worst = (f: (h: HostRun) => number) => Math.max(...host.map(f));
  const perRun = (f: (h: HostRun) => number, digits = 1) => host.map((h) => f(h).toFixed(digits)).join(' ');
  const mb = (b: number) => `${(b / 1e6).toFixed(0)} MB`;
  const rows: string[][] = [];
  if (host.length) {
    rows.push(
      ['host: event-loop delay, max (worst run)', `${worst((h) => h.eldMaxMs).toFixed(1)} ms`, perRun((h) => h.eldMaxMs)],
      ['host: event-loop delay, p99 (worst run)', `${worst((h) => h.eldP99Ms).toFixed(1)} ms`, perRun((h) => h.eldP99Ms)],
      ['host: 10 ms interval, most late', `${worst((h) => h.worstLateMs).toFixed(1)} ms`, perRun((h) => h.worstLateMs)],
      ['host: most late, own INSERTs taken out', `${worst((h) => h.worstLateOtherMs).toFixed(1)} ms`, perRun((h) => h.worstLateOtherMs)],
      ['host: its own slowest INSERT', `${worst((h) => h.worstInsertMs).toFixed(1)} ms`, perRun((h) => h.worstInsertMs)],
      ['host: INSERTs of 50 ms or more', String(Math.max(...host.map((h) => h.slowInserts))), host.map((h) => `${h.slowInserts}/${h.inserts}`).join(' ')],
      ['host: delay max before the backup', `${worst((h) => h.baseline.eldMaxMs).toFixed(1)} ms`, perRun((h) => h.baseline.eldMaxMs)],
      ['host: delay p99 before the backup', `${worst((h) => h.baseline.eldP99Ms).toFixed(1)} ms`, perRun((h) => h.baseline.eldP99Ms)],
      ['host: backup run (start to run-ok)', `${median(host.map((h) => h.backupSeconds)).toFixed(1)} s`, perRun((h) => h.backupSeconds)],
      ["floor, the peer's backup instead: delay max", `${worst((h) => h.floor.eldMaxMs).toFixed(1)} ms`, perRun((h) => h.floor.eldMaxMs)],
      ["floor, the peer's backup instead: delay p99", `${worst((h) => h.floor.eldP99Ms).toFixed(1)} ms`, perRun((h) => h.floor.eldP99Ms)],
      ["floor, the peer's backup instead: slowest INSERT", `${worst((h) => h.floor.worstInsertMs).toFixed(1)} ms`, perRun((h) => h.floor.worstInsertMs)],
      ["floor, the peer's backup instead: run", `${median(host.map((h) => h.floor.backupSeconds)).toFixed(1)} s`, perRun((h) => h.floor.backupSeconds)],
      ['host: process peak RSS', mb(Math.max(...host.map((h) => h.peakRssBytes))), perRun((h) => h.peakRssBytes / 1e6, 0)],
    );
  }
  if (idle) {
    const window = `${idle.idleSeconds.toFixed(0)} s`;
    rows.push(
      [`daemon idle ${window}: requests`, String(idle.requests), `(priming backup: ${idle.primingRequests})`],
      [`daemon idle ${window}: CPU`, `${idle.idleCpuSeconds.toFixed(2)} s`, `(start-up: ${idle.startupCpuSeconds.toFixed(2)} s)`],
      [`daemon idle ${window}: RSS start / end`, `${mb(idle.rssStartBytes)} / ${mb(idle.rssEndBytes)}`, `(max ${mb(idle.rssMaxBytes)})`],
      ['daemon: SIGTERM', idle.exit, ''],
    );
  }
  return formatColumns(['figure', 'value', 'per run'], rows, [1]);
}

export const STALL_TARGET_MS = 20;
export const STALL_P99_TARGET_MS = 5;
/** The host's own writes never wait behind the backup for longer than this. */
export const OWN_WRITE_TARGET_MS = 50;
export const TIME_TARGET_RATIO = 1.1;

export function checkSqliteTargets(summary: SqliteSummaryRow[], host: HostRun[], idle: IdleResult | undefined, peerTimeoutSeconds: number): TargetCheck[] {
  const off = summary.find((s) => s.tool === 'offsite');
  // Issue 15: against the peer that finishes under writes (`.backup` restarts for ever while the writer runs).
  const peer = summary.find((s) => s.tool === 'sqlite3-vacuum-into');
  let time: TargetCheck = { name: `Offsite <= ${TIME_TARGET_RATIO.toFixed(2)}x VACUUM INTO + aws`, pass: false, value: 'not measured' };
  if (off && peer) {
    const ratio = off.seconds / peer.seconds;
    // A peer run cut off at the time limit took at least that long: the ratio is then an upper bound.
    time = {
      ...time,
      pass: ratio <= TIME_TARGET_RATIO,
      value: peer.finished === peer.runs ? `${ratio.toFixed(2)}x` : `<= ${ratio.toFixed(2)}x (VACUUM INTO finished ${peer.finished} of ${peer.runs} runs within ${peerTimeoutSeconds} s)`,
    };
  }
  const worst = (f: (h: HostRun) => number) => (host.length ? Math.max(...host.map(f)) : undefined);
  // Each figure beside the machine's floor: the same host with the peer's backup instead.
  const check = (name: string, v: number | undefined, floor: number | undefined, limit: number): TargetCheck => ({
    name,
    pass: v !== undefined && v < limit,
    value: v === undefined ? 'not measured' : `${v.toFixed(1)} ms (worst run; the peer's backup instead: ${floor?.toFixed(1)} ms)`,
  });
  return [
    time,
    check(`Host event-loop delay max < ${STALL_TARGET_MS} ms`, worst((h) => h.eldMaxMs), worst((h) => h.floor.eldMaxMs), STALL_TARGET_MS),
    check(`Host event-loop delay p99 < ${STALL_P99_TARGET_MS} ms`, worst((h) => h.eldP99Ms), worst((h) => h.floor.eldP99Ms), STALL_P99_TARGET_MS),
    check(`Host's own INSERT < ${OWN_WRITE_TARGET_MS} ms`, worst((h) => h.worstInsertMs), worst((h) => h.floor.worstInsertMs), OWN_WRITE_TARGET_MS),
    { name: 'Idle daemon: 0 requests', pass: idle?.requests === 0, value: idle ? `${idle.requests} in ${idle.idleSeconds.toFixed(0)} s` : 'not measured' },
  ];
}
