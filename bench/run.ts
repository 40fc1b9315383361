// The bench itself, given a running S3 target (scripts/run-bench.mjs starts RGW and calls this):
// make the source file, time every tool, print the table and targets, save the JSON.
// Knobs (environment): BENCH_SCENARIOS (large-file,archive-tree,sqlite-backup,sync-cost), BENCH_SIZE_MIB (1024), BENCH_RUNS (3),
// BENCH_TOOLS (offsite,aws-cli-1,aws-cli-2,rclone), BENCH_TREE_MIB (2048), BENCH_TREE_FILES (20000),
// BENCH_TREE_TOOLS (offsite,tar-aws-1,tar-aws-2,rclone,restic), BENCH_SCRATCH_DIR (the OS temp dir),
// BENCH_PART_SIZE_MIB / BENCH_CONCURRENCY (Offsite options, large-file); sqlite-backup:
// BENCH_SQLITE_MIB (1024), BENCH_SQLITE_TOOLS (offsite,sqlite3-backup,sqlite3-backup-paused,
// sqlite3-vacuum-into), BENCH_SQLITE_WRITER_ROWS (500 rows/s), BENCH_SQLITE_PEER_TIMEOUT (180 s),
// BENCH_IDLE_SECONDS (600); sync-cost: BENCH_SYNC_LIVE_ROUNDS (5 entries pushed and pulled on RGW);
// console: BENCH_CONSOLE_JOBS (20), BENCH_CONSOLE_BACKUPS (500 per job), BENCH_CONSOLE_REQUESTS (400),
// BENCH_CONSOLE_IDLE_SECONDS (60).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { killRunningTools, runMeasured, writeRandomFile } from './measure.js';
import { offsite } from './offsite.js';
import { awsCli, awsCli1Bin, cleanEnv, rclone, warmUpServer, withNodeOnPath, type Tool } from './peers.js';
import { checkTargets, formatColumns, formatTable, formatTargets, median, summarise, type TargetCheck } from './report.js';
import { largeFile, SCENARIO } from './scenarios/large-file.js';
import * as tree from './scenarios/archive-tree.js';
import * as sqlite from './scenarios/sqlite-backup.js';
import * as syncCost from './scenarios/sync-cost.js';
import * as consoleScenario from './scenarios/console.js';
import { BenchBucket } from './target.js';
import { BenchFailure, type Measurement, type S3Target } from './types.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MIB = 1024 * 1024;

function positiveInt(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new BenchFailure(`${name} must be a positive integer, not "${v}"`);
  return n;
}

let scratchDir: string | undefined;

/** For Ctrl-C: stop the tool that is running and remove the scratch files (GBs). */
export function abortBench(): void {
  killRunningTools();
  sqlite.killSqliteChildren();
  if (scratchDir) rmSync(scratchDir, { recursive: true, force: true });
}

export interface BenchEnvironment {
  target: S3Target;
  /** What the target is, for the report ("Ceph RGW 16.2.15, bluestore, 127.0.0.1"). */
  server: string;
}

const SCENARIOS = ['large-file', tree.SCENARIO, sqlite.SCENARIO, syncCost.SCENARIO, consoleScenario.SCENARIO];

export async function runBench({ target, server }: BenchEnvironment): Promise<void> {
  const scenarios = (process.env.BENCH_SCENARIOS || SCENARIOS.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  const unknownScenario = scenarios.filter((s) => !SCENARIOS.includes(s));
  if (unknownScenario.length) throw new BenchFailure(`BENCH_SCENARIOS: unknown scenario ${unknownScenario.join(', ')} (known: ${SCENARIOS.join(', ')})`);
  scratchDir = mkdtempSync(path.join(process.env.BENCH_SCRATCH_DIR ?? os.tmpdir(), 'offsite-bench-'));
  const bucket = new BenchBucket(target);
  try {
    await bucket.create();
    if (scenarios.includes('large-file')) await runLargeFile(target, server, bucket, scratchDir);
    if (scenarios.includes(tree.SCENARIO)) await runArchiveTree(target, server, bucket, scratchDir);
    if (scenarios.includes(sqlite.SCENARIO)) await runSqliteBackup(target, server, bucket, scratchDir);
    if (scenarios.includes(syncCost.SCENARIO)) await runSyncCost(target, server, bucket, scratchDir);
    if (scenarios.includes(consoleScenario.SCENARIO)) await runConsole(target, server, bucket, scratchDir);
    console.log(`\nall targets of this run (${allTargets.filter((t) => t.pass).length} PASS, ${allTargets.filter((t) => !t.pass).length} MISS)\n`);
    console.log(formatColumns(['scenario', 'target', 'result', 'figure'], allTargets.map((t) => [t.scenario, t.name, t.pass ? 'PASS' : 'MISS', t.value])));
  } finally {
    bucket.close();
    rmSync(scratchDir, { recursive: true, force: true });
    scratchDir = undefined;
  }
}

const log = (line: string) => console.error(`# ${line}`);

/** Every scenario's targets, printed again together once all scenarios have run. */
const allTargets: Array<TargetCheck & { scenario: string }> = [];
function printTargets(scenario: string, targets: TargetCheck[]): void {
  console.log(formatTargets(targets));
  allTargets.push(...targets.map((t) => ({ scenario, ...t })));
}
const machineInfo = () => ({ cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', memoryGb: Math.round(os.totalmem() / 1e9), node: process.version, os: `${os.type()} ${os.release()}` });

function saveResult(scenario: string, date: Date, result: object): void {
  const outDir = path.join(root, 'bench-results');
  mkdirSync(outDir, { recursive: true });
  const out = path.join(outDir, `${scenario}-${date.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\nresults: ${path.relative(process.cwd(), out)}`);
}

async function runArchiveTree(target: S3Target, server: string, bucket: BenchBucket, scratchDir: string): Promise<void> {
  const mib = positiveInt('BENCH_TREE_MIB', 2048);
  const files = positiveInt('BENCH_TREE_FILES', 20000);
  const runs = positiveInt('BENCH_RUNS', 3);
  const wanted = (process.env.BENCH_TREE_TOOLS ?? 'offsite,tar-aws-1,tar-aws-2,rclone,restic').split(',').map((s) => s.trim());
  const treeDir = path.join(scratchDir, 'tree');
  const t0 = Date.now();
  const t = tree.generateTree(treeDir, mib * MIB, files);
  log(`tree ${mib} MiB in ${files} files (${t.sessions.length} sessions under 2024/, ${t.largeFiles} large file(s) of ${(t.largeFileBytes / MIB).toFixed(0)} MiB) in ${Date.now() - t0} ms`);
  const aws1 = wanted.includes('tar-aws-1') ? awsCli1Bin(log) : undefined;
  const factories = tree.treeTools(target, scratchDir, t, aws1);
  // The pip aws-cli may not be had (no registry): then the Debian build is the peer alone.
  const unknown = wanted.filter((n) => !factories[n] && n !== 'tar-aws-1');
  if (unknown.length) throw new BenchFailure(`BENCH_TREE_TOOLS: unknown tool ${unknown.join(', ')} (known: ${Object.keys(factories).join(', ')})`);
  const tools = wanted.filter((n) => factories[n]).map((n) => factories[n]!());
  for (const x of tools) log(`${x.name}: ${x.version}`);

  const rows = await tree.archiveTree({ tools, bucket, scratchDir, tree: t, runs, log });
  rmSync(treeDir, { recursive: true, force: true });
  const summary = tree.summariseTree(rows);
  const targets = tree.checkTreeTargets(summary);
  const date = new Date();
  const machine = machineInfo();
  console.log(`\nOffsite bench, ${tree.SCENARIO}: ${mib} MiB in ${files} files, ${t.sessions.length} sessions, ${runs} round(s), ${date.toISOString()}`);
  console.log(`server: ${server}; client: ${machine.cpus} cores, Node ${machine.node}`);
  console.log(`tools: ${tools.map((x) => x.version).join('; ')}`);
  console.log('seconds = median wall time of the whole process over the rounds; MB/s = tree bytes / that (1 MB = 10^6 bytes); peak RSS = highest round\n');
  console.log(tree.formatTreeTable(summary));
  console.log('\ntargets');
  printTargets(tree.SCENARIO, targets);
  saveResult(tree.SCENARIO, date, { date: date.toISOString(), scenario: tree.SCENARIO, server, machine, treeBytes: t.bytes, treeFiles: t.files, sessions: t.sessions, largeFiles: t.largeFiles, largeFileBytes: t.largeFileBytes, runs, tools: tools.map(({ name, version }) => ({ name, version })), summary, targets, measurements: rows });
}

async function runLargeFile(target: S3Target, server: string, bucket: BenchBucket, scratchDir: string): Promise<void> {
  const sizeBytes = positiveInt('BENCH_SIZE_MIB', 1024) * MIB;
  const runs = positiveInt('BENCH_RUNS', 3);
  const wanted = (process.env.BENCH_TOOLS ?? 'offsite,aws-cli-1,aws-cli-2,rclone').split(',').map((s) => s.trim());
  const factories: Record<string, () => Tool | undefined> = {
    offsite: () => offsite(target),
    // The pip build only when it can be had (installed with pip when missing); the others always.
    'aws-cli-1': () => {
      const bin = awsCli1Bin(log);
      return bin ? awsCli(target, scratchDir, { name: 'aws-cli-1', bin }) : undefined;
    },
    'aws-cli-2': () => awsCli(target, scratchDir),
    rclone: () => rclone(target, scratchDir),
  };
  const unknown = wanted.filter((t) => !factories[t]);
  if (unknown.length) throw new BenchFailure(`BENCH_TOOLS: unknown tool ${unknown.join(', ')} (known: ${Object.keys(factories).join(', ')})`);
  const tools = wanted.map((t) => factories[t]!()).filter((t): t is Tool => t !== undefined);

  const file = path.join(scratchDir, 'source.bin');
  const t0 = Date.now();
  const sha256 = await writeRandomFile(file, sizeBytes);
  log(`source ${sizeBytes / MIB} MiB of random data in ${Date.now() - t0} ms, sha256 ${sha256.slice(0, 16)}…`);
  for (const t of tools) log(`${t.name}: ${t.version}`);
  await warmUpServer(target, bucket, scratchDir, file, log);

  const rows = await largeFile({ tools, bucket, scratchDir, source: { file, size: sizeBytes, sha256 }, runs, log });
  const summary = summarise(rows);
  const targets = [...checkTargets(summary), ...(await startUpTargets(scratchDir))];
  const date = new Date();
  const machine = machineInfo();

  console.log(`\nOffsite bench, ${SCENARIO}: ${sizeBytes / MIB} MiB file, ${runs} round(s), ${date.toISOString()}`);
  console.log(`server: ${server}; client: ${machine.cpus} cores, Node ${machine.node}`);
  console.log(`tools: ${tools.map((t) => t.version).join('; ')}`);
  console.log('MB/s = median of the rounds (1 MB = 10^6 bytes, wall time of the whole process); vs fastest peer = Offsite\'s MB/s over the fastest other tool of that operation in this run; peak RSS = highest round\n');
  console.log(formatTable(summary));
  console.log('\ntargets');
  printTargets('large-file', targets);

  saveResult(SCENARIO, date, { date: date.toISOString(), scenario: SCENARIO, server, machine, sizeBytes, runs, tools: tools.map(({ name, version }) => ({ name, version })), summary, targets, measurements: rows });
  await rm(file, { force: true });
}

/**
 * Start-up as a user sees it: `bin/offsite --version` and `offsite put` of a 1 KiB file into a
 * local directory bucket, 5 times each, whole processes (median time, highest peak RSS).
 */
async function startUpTargets(scratchDir: string): Promise<TargetCheck[]> {
  const bin = path.join(root, 'bin', 'offsite');
  const small = path.join(scratchDir, 'small.txt');
  writeFileSync(small, 'x'.repeat(1024));
  const bucketDir = path.join(scratchDir, 'local-bucket');
  mkdirSync(bucketDir, { recursive: true });
  const env = withNodeOnPath(cleanEnv());
  const time = async (args: string[]) => {
    const got = [];
    for (let i = 0; i < 5; i++) got.push(await runMeasured({ cmd: bin, args, env, cwd: root }, `offsite ${args[0]}`, scratchDir));
    return { ms: median(got.map((g) => g.seconds * 1000)), mb: Math.max(...got.map((g) => g.peakRssBytes / 1e6)) };
  };
  const version = await time(['--version']);
  const put = await time(['put', small, path.join(bucketDir, 'small.txt')]);
  log(`start-up: --version ${version.ms.toFixed(0)} ms ${version.mb.toFixed(0)} MB; put of 1 KiB to a local directory ${put.ms.toFixed(0)} ms ${put.mb.toFixed(0)} MB`);
  return [
    { name: 'offsite --version < 150 ms', pass: version.ms < 150, value: `${version.ms.toFixed(0)} ms` },
    { name: 'offsite --version < 60 MB', pass: version.mb < 60, value: `${version.mb.toFixed(0)} MB` },
    { name: 'offsite put of 1 KiB (local) < 150 ms', pass: put.ms < 150, value: `${put.ms.toFixed(0)} ms, ${put.mb.toFixed(0)} MB` },
  ];
}

async function runSqliteBackup(target: S3Target, server: string, bucket: BenchBucket, scratchDir: string): Promise<void> {
  const mib = positiveInt('BENCH_SQLITE_MIB', 1024);
  const runs = positiveInt('BENCH_RUNS', 3);
  const writerRows = positiveInt('BENCH_SQLITE_WRITER_ROWS', 500);
  const peerTimeoutSeconds = positiveInt('BENCH_SQLITE_PEER_TIMEOUT', 180);
  const idleSeconds = positiveInt('BENCH_IDLE_SECONDS', 600);
  const wanted = (process.env.BENCH_SQLITE_TOOLS ?? sqlite.SQLITE_TOOLS.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  await sqlite.ensureSqliteCli();
  const tools = wanted.map(sqlite.toolInfo);
  for (const t of tools) log(`${t.name}: ${t.version}`);

  const dbFile = path.join(scratchDir, 'app.db');
  const source = sqlite.buildDatabase(dbFile, mib * MIB);
  log(`database ${(source.bytes / MIB).toFixed(0)} MiB, ${source.rows} rows of 500 characters, WAL mode, built in ${source.buildSeconds.toFixed(1)} s`);
  try {
    const writer = await sqlite.startWriter(dbFile, writerRows);
    let rows: Measurement[];
    try {
      log(`writer: one transaction every 20 ms, ${writer.rowsPerSecond} rows/s`);
      rows = await sqlite.backupRounds({ tools, target, bucket, scratchDir, source, writer, runs, peerTimeoutSeconds, log });
    } finally {
      await writer.stop();
    }
    const host = await sqlite.hostRuns({ target, bucket, scratchDir, source, runs, log });
    const idle = await sqlite.idleDaemon({ target, bucket, scratchDir, source, idleSeconds, log });

    const summary = sqlite.summariseSqlite(rows);
    const targets = sqlite.checkSqliteTargets(summary, host, idle, peerTimeoutSeconds);
    const date = new Date();
    const machine = machineInfo();
    console.log(`\nOffsite bench, ${sqlite.SCENARIO}: ${(source.bytes / MIB).toFixed(0)} MiB SQLite database (WAL), writer ${writerRows} rows/s, ${runs} round(s), ${date.toISOString()}`);
    console.log(`server: ${server}; client: ${machine.cpus} cores, Node ${machine.node}`);
    console.log(`tools: ${[...new Set(tools.map((t) => t.version))].join('; ')}`);
    console.log(`seconds = median wall time of the whole process (copy + upload); ">" = cut off at ${peerTimeoutSeconds} s without a complete copy; peak RSS = highest round\n`);
    console.log(sqlite.formatSqliteTable(summary));
    console.log('');
    console.log(sqlite.formatHostIdleTable(host, idle));
    console.log('\ntargets');
    printTargets(sqlite.SCENARIO, targets);
    saveResult(sqlite.SCENARIO, date, {
      date: date.toISOString(),
      scenario: sqlite.SCENARIO,
      server,
      machine,
      database: { bytes: source.bytes, rows: source.rows, buildSeconds: source.buildSeconds },
      writerRowsPerSecond: writerRows,
      runs,
      peerTimeoutSeconds,
      tools,
      summary,
      targets,
      measurements: rows,
      host,
      idle,
    });
  } finally {
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${dbFile}${suffix}`, { force: true });
  }
}

async function runSyncCost(target: S3Target, server: string, bucket: BenchBucket, scratchDir: string): Promise<void> {
  const liveRounds = positiveInt('BENCH_SYNC_LIVE_ROUNDS', 5);
  const result = await syncCost.syncCost({ target, bucket, scratchDir, liveRounds, log });
  const targets = syncCost.checkSyncCostTargets(result);
  const date = new Date();
  const machine = machineInfo();
  const s = result.schedule;
  console.log(`\nOffsite bench, ${syncCost.SCENARIO}: a simulated day of ${s.commands} commands on ${s.devices.length} devices (${s.devices.map((d) => `${d.host} ${d.commands}`).join(', ')}), ${s.dayStart.slice(11, 16)}-${s.dayEnd.slice(11, 16)} UTC, a pull every 5 min per device (${s.pullsPerDay} pulls), ${date.toISOString()}`);
  console.log(`simulated in ${result.simulationSeconds.toFixed(1)} s over the local adapter with a simulated clock (bench/sync-cost/counting-storage.ts); client: ${machine.cpus} cores, Node ${machine.node}`);
  console.log(syncCost.describePrices());
  console.log(syncCost.describeClient());
  console.log("requests per day (setup before the day not included); \"seed, issue's model\" = PUT entry + PUT a copy per other device, LIST inbox + GET + DELETE each; \"seed, as coded\" adds the seed code's GET devices.json and LISTs of dump_requests/ and deletions/ per push and per pull\n");
  console.log(syncCost.formatCostTable(result));
  console.log('\nlatency = simulated time from a push to the first pull of each other device that returned the entry (minutes:seconds)\n');
  console.log(syncCost.formatDetailTable(result));
  console.log(`\nreal S3 target: ${server}; two devices, the other device pulls right after each push\n`);
  console.log(syncCost.formatLiveTable(result.live));
  console.log(`empty pulls on RGW: ${result.live.emptyPullRequests.join(', ')} request(s), ${result.live.emptyPullMs.map((x) => x.toFixed(0)).join(', ')} ms`);
  console.log('\ntargets');
  printTargets(syncCost.SCENARIO, targets);
  saveResult(syncCost.SCENARIO, date, { date: date.toISOString(), scenario: syncCost.SCENARIO, server, machine, prices: syncCost.describePrices(), ...result, targets });
}

async function runConsole(target: S3Target, server: string, bucket: BenchBucket, scratchDir: string): Promise<void> {
  const result = await consoleScenario.consoleBench({
    target,
    bucket,
    scratchDir,
    jobs: positiveInt('BENCH_CONSOLE_JOBS', 20),
    backupsPerJob: positiveInt('BENCH_CONSOLE_BACKUPS', 500),
    requests: positiveInt('BENCH_CONSOLE_REQUESTS', 400),
    idleSeconds: positiveInt('BENCH_CONSOLE_IDLE_SECONDS', 60),
    log,
  });
  const targets = consoleScenario.checkConsoleTargets(result);
  const date = new Date();
  const machine = machineInfo();
  console.log(`\nOffsite bench, ${consoleScenario.SCENARIO}: offsite console with ${result.jobs} jobs x ${result.backupsPerJob} backups in its catalog and the bucket, ${date.toISOString()}`);
  console.log(`server: ${server}; client: ${machine.cpus} cores, Node ${machine.node}; requests over loopback HTTP with a bearer token, one at a time\n`);
  console.log(consoleScenario.formatConsoleTable(result));
  console.log('\ntargets');
  printTargets(consoleScenario.SCENARIO, targets);
  saveResult(consoleScenario.SCENARIO, date, { date: date.toISOString(), scenario: consoleScenario.SCENARIO, server, machine, ...result, targets });
}
