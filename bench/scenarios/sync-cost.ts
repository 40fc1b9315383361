// What sync costs on S3 (issue #5): a simulated day of the seed's scenario, 1,000 shell commands
// over 5 devices in a 10-hour day, each device pushing after every command and pulling every 5
// minutes, replayed through the real SyncClient and through the seed's design (one object per
// entry plus a copy in every other device's inbox, read then deleted), both over the same
// counting Storage (bench/sync-cost/counting-storage.ts: the local adapter, requests counted by
// S3 billing class, the simulated time as every object's LastModified). Prints requests per day
// by type, bytes, stored bytes, the month's cost at AWS list prices, how long an entry takes to
// reach the other devices, and what an empty pull costs. Then, against the bench's real S3
// target (RGW), the wall-clock time from a push to another device's pull for a few entries and
// the requests of an empty pull there.
//
// The Offsite client runs twice on the same schedule: `push` (what `offsite sync push` does:
// store and send at once, one batch per command) and `push --queue` (store, send when a batch
// is due by age, 60 s, at the next push or pull), as docs/sync.md asks for both.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { openStorage, S3Storage, type Storage } from '../../src/storage/index.js';
import { BucketBackend, DEFAULT_BATCHING, DEFAULT_COMPACTION, SyncClient, type PullResult } from '../../src/sync/index.js';
import { formatColumns, type TargetCheck } from '../report.js';
import { addTallies, REQUEST_CLASSES, SimulatedBucket, subtractTally, type CountingStorage, type Tally } from '../sync-cost/counting-storage.js';
import { DAYS_PER_MONTH, makeSchedule, monthlyStorageCost, PRICES, requestCost, spread, type DaySchedule, type ShellEntry, type Spread } from '../sync-cost/day.js';
import { SeedDevice } from '../sync-cost/seed-design.js';
import type { BenchBucket } from '../target.js';
import type { S3Target } from '../types.js';

export const SCENARIO = 'sync-cost';

export type DesignName = 'offsite push' | 'offsite push --queue' | "seed, issue's model" | 'seed, as coded';

export interface DesignResult {
  design: DesignName;
  /** Requests and bytes of the day (08:00 to the last pull), setup not included. */
  day: Tally;
  /** Requests of init/register and joins before the day. */
  setup: Tally;
  /** Objects and bytes in the bucket at the end of the day. */
  stored: { objects: number; bytes: number };
  /** Seconds from an entry's push to the first pull of each other device that returned it. */
  latency: Spread;
  pulls: number;
  /** Pulls that found nothing new (and sent nothing): their requests. */
  emptyPulls: { count: number; min: number; max: number; histogram: Record<string, number> };
  /** Pulls that found nothing new but sent a due batch (push --queue only). */
  emptyPullsThatSent?: number;
  compactions?: number;
  batches?: number;
  simulationSeconds: number;
}

function emptyPullSummary(requests: number[]): DesignResult['emptyPulls'] {
  const histogram: Record<string, number> = {};
  for (const r of requests) histogram[String(r)] = (histogram[String(r)] ?? 0) + 1;
  return { count: requests.length, min: requests.length ? Math.min(...requests) : NaN, max: requests.length ? Math.max(...requests) : NaN, histogram };
}

/** Every device must hold every entry of the day, exactly. */
function assertComplete(design: string, deviceEntries: { name: string; ids: Set<string> }[], schedule: DaySchedule): void {
  const all = new Set(schedule.entries.map((e) => e.id));
  for (const d of deviceEntries) {
    assert.equal(d.ids.size, all.size, `${design}: ${d.name} ends the day with ${d.ids.size} entries, not ${all.size}`);
    for (const id of all) assert.ok(d.ids.has(id), `${design}: ${d.name} lacks entry ${id}`);
  }
}

// ---- the real client

export async function offsiteDay(schedule: DaySchedule, dir: string, queue: boolean): Promise<DesignResult> {
  const design: DesignName = queue ? 'offsite push --queue' : 'offsite push';
  const started = performance.now();
  const clock = { now: schedule.setupAt };
  const bucketDir = path.join(dir, 'bucket');
  const bucket = new SimulatedBucket(openStorage(bucketDir), () => clock.now);
  const views = schedule.devices.map(() => bucket.view());
  const options = (i: number) => ({
    stateDir: path.join(dir, `device-${i + 1}`),
    storageUrl: bucketDir,
    backend: new BucketBackend(views[i]!),
    deviceName: schedule.devices[i]!.host,
    clock: () => clock.now,
  });
  const clients: SyncClient[] = [];
  try {
    const first = await SyncClient.init(options(0));
    clients.push(first.client);
    for (let i = 1; i < schedule.devices.length; i++) {
      clock.now += 60_000; // a join a minute
      clients.push((await SyncClient.join(first.secret, options(i))).client);
    }
    const setup = addTallies(...views.map((v) => v.tally()));
    const writtenBeforeDay = bucket.written.length;

    const pushedAt = new Map<string, number>();
    const latencies: number[] = [];
    const empty: number[] = [];
    let emptyThatSent = 0;
    let pulls = 0;
    let compactions = 0;
    for (const ev of schedule.events) {
      clock.now = ev.t;
      const client = clients[ev.device]!;
      const view = views[ev.device]!;
      if (ev.kind === 'command') {
        pushedAt.set(ev.entry!.id, ev.t);
        await client.push([ev.entry!], { flush: !queue });
        continue;
      }
      const before = view.tally();
      const r: PullResult = await client.pull();
      const used = subtractTally(view.tally(), before);
      assert.equal(used.total, r.requests.total, `${design}: the client counted ${r.requests.total} requests for a pull, the storage ${used.total}`);
      pulls++;
      if (r.compaction?.compacted) compactions++;
      for (const e of r.entries) latencies.push((ev.t - pushedAt.get(e.id)!) / 1000);
      if (r.entries.length === 0 && r.deleted.length === 0 && r.batches === 0 && !r.compaction) {
        if (used.PUT > 0) emptyThatSent++;
        else empty.push(used.total);
      }
    }
    // Batches written in the day, by a push or by a pull's flush (push --queue).
    const batches = bucket.written.slice(writtenBeforeDay).filter((k) => k.includes('/log/')).length;
    const day = subtractTally(addTallies(...views.map((v) => v.tally())), setup);
    assertComplete(
      design,
      clients.map((c, i) => ({ name: schedule.devices[i]!.name, ids: new Set(c.entries().map((e) => e.id)) })),
      schedule,
    );
    return {
      design,
      day,
      setup,
      stored: await bucket.stored(),
      latency: spread(latencies),
      pulls,
      emptyPulls: emptyPullSummary(empty),
      ...(queue ? { emptyPullsThatSent: emptyThatSent } : {}),
      compactions,
      batches,
      simulationSeconds: (performance.now() - started) / 1000,
    };
  } finally {
    for (const c of clients) await c.close();
    await bucket.close();
  }
}

// ---- the seed's design

export async function seedDay(schedule: DaySchedule, dir: string): Promise<[DesignResult, DesignResult]> {
  const started = performance.now();
  const clock = { now: schedule.setupAt };
  const bucket = new SimulatedBucket(openStorage(path.join(dir, 'bucket')), () => clock.now);
  const core = schedule.devices.map(() => bucket.view());
  const extras = schedule.devices.map(() => bucket.view());
  const userId = randomBytes(16).toString('hex');
  const secret = randomBytes(32).toString('hex');
  const devices = schedule.devices.map((_, i) => new SeedDevice(core[i]!, extras[i]!, userId, randomBytes(16).toString('hex'), secret, () => clock.now));
  const sum = (views: CountingStorage[]) => addTallies(...views.map((v) => v.tally()));
  try {
    for (const d of devices) {
      await d.register();
      clock.now += 60_000;
    }
    // The first device answers the joins' dump requests (its history is still empty).
    await devices[0]!.answerDumpRequests();
    const setupCore = sum(core);
    const setupExtras = sum(extras);

    const pushedAt = new Map<string, number>();
    const latencies: number[] = [];
    const emptyCore: number[] = [];
    const emptyAll: number[] = [];
    let pulls = 0;
    for (const ev of schedule.events) {
      clock.now = ev.t;
      const device = devices[ev.device]!;
      if (ev.kind === 'command') {
        pushedAt.set(ev.entry!.id, ev.t);
        await device.push(ev.entry!);
        continue;
      }
      const before = { core: core[ev.device]!.tally(), extras: extras[ev.device]!.tally() };
      const fresh = await device.pull();
      pulls++;
      for (const e of fresh) latencies.push((ev.t - pushedAt.get(e.id)!) / 1000);
      if (fresh.length === 0) {
        const c = subtractTally(core[ev.device]!.tally(), before.core).total;
        emptyCore.push(c);
        emptyAll.push(c + subtractTally(extras[ev.device]!.tally(), before.extras).total);
      }
    }
    assertComplete(
      'seed',
      devices.map((d, i) => ({ name: schedule.devices[i]!.name, ids: new Set(d.entries.keys()) })),
      schedule,
    );
    const stored = await bucket.stored();
    const latency = spread(latencies);
    const simulationSeconds = (performance.now() - started) / 1000;
    const dayCore = subtractTally(sum(core), setupCore);
    const dayExtras = subtractTally(sum(extras), setupExtras);
    return [
      { design: "seed, issue's model", day: dayCore, setup: setupCore, stored, latency, pulls, emptyPulls: emptyPullSummary(emptyCore), simulationSeconds },
      { design: 'seed, as coded', day: addTallies(dayCore, dayExtras), setup: addTallies(setupCore, setupExtras), stored, latency, pulls, emptyPulls: emptyPullSummary(emptyAll), simulationSeconds },
    ];
  } finally {
    await bucket.close();
  }
}

// ---- the real S3 target

export interface LiveRound {
  entry: number;
  pushMs: number;
  /** From the end of the push to the end of the pull that returned the entry. */
  pullMs: number;
  /** From the start of the push to the end of that pull. */
  visibleMs: number;
  pulls: number;
  pushRequests: number;
  pullRequests: number;
}

export interface LiveResult {
  rounds: LiveRound[];
  visibleMs: Spread;
  emptyPullRequests: number[];
  emptyPullMs: number[];
}

async function liveRgw(target: S3Target, bucket: BenchBucket, dir: string, entries: ShellEntry[], rounds: number): Promise<LiveResult> {
  const prefix = `sync-cost-${randomBytes(4).toString('hex')}/`;
  const url = `s3://${target.bucket}/${prefix}?endpoint=${target.endpoint}&region=${target.region}&path_style=true`;
  const storages: Storage[] = [];
  const storage = () => {
    const s = new S3Storage({ bucket: target.bucket, prefix, endpoint: target.endpoint, region: target.region, forcePathStyle: true, credentials: { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey } });
    storages.push(s);
    return s;
  };
  const clients: SyncClient[] = [];
  try {
    const a = await SyncClient.init({ stateDir: path.join(dir, 'live-laptop'), storageUrl: url, backend: new BucketBackend(storage()), deviceName: 'laptop' });
    clients.push(a.client);
    const bStorage = storage();
    const b = await SyncClient.join(a.secret, { stateDir: path.join(dir, 'live-desktop'), storageUrl: url, backend: new BucketBackend(bStorage), deviceName: 'desktop' });
    clients.push(b.client);
    const emptyPullRequests: number[] = [];
    const emptyPullMs: number[] = [];
    const emptyPull = async () => {
      const before = bStorage.stats().totalRequests;
      const t0 = performance.now();
      const r = await b.client.pull();
      emptyPullMs.push(performance.now() - t0);
      assert.equal(r.entries.length, 0, 'RGW: a pull with nothing pushed since returned entries');
      emptyPullRequests.push(bStorage.stats().totalRequests - before);
    };
    await emptyPull();
    const out: LiveRound[] = [];
    for (let i = 0; i < rounds; i++) {
      const entry = { ...entries[i]!, id: `live-${i}-${entries[i]!.id}` };
      const t0 = performance.now();
      const pushed = await a.client.push([entry]);
      const t1 = performance.now();
      let pulls = 0;
      let pullRequests = 0;
      for (;;) {
        const r = await b.client.pull();
        pulls++;
        pullRequests += r.requests.total;
        if (r.entries.some((e) => e.id === entry.id)) break;
        assert.ok(pulls < 50, `RGW: entry ${entry.id} not visible to the other device after 50 pulls`);
      }
      const t2 = performance.now();
      out.push({ entry: i + 1, pushMs: t1 - t0, pullMs: t2 - t1, visibleMs: t2 - t0, pulls, pushRequests: pushed.requests.total, pullRequests });
      await emptyPull();
    }
    return { rounds: out, visibleMs: spread(out.map((r) => r.visibleMs)), emptyPullRequests, emptyPullMs };
  } finally {
    for (const c of clients) await c.close();
    for (const s of storages) await s.close();
    await bucket.deletePrefix(prefix);
  }
}

// ---- the scenario

export interface SyncCostResult {
  schedule: { commands: number; devices: DaySchedule['devices']; dayStart: string; dayEnd: string; pullsPerDay: number };
  designs: DesignResult[];
  live: LiveResult;
  simulationSeconds: number;
}

/** The simulated day, three ways side by side (each simulation has its own bucket and clock). */
export async function simulateDay(schedule: DaySchedule, dir: string): Promise<DesignResult[]> {
  const dirs = ['offsite-push', 'offsite-queue', 'seed'].map((d) => path.join(dir, d));
  for (const d of dirs) mkdirSync(d, { recursive: true });
  const [push, queue, seed] = await Promise.all([offsiteDay(schedule, dirs[0]!, false), offsiteDay(schedule, dirs[1]!, true), seedDay(schedule, dirs[2]!)]);
  return [push, queue, ...seed];
}

export async function syncCost(opts: { target: S3Target; bucket: BenchBucket; scratchDir: string; liveRounds: number; log: (line: string) => void }): Promise<SyncCostResult> {
  const schedule = makeSchedule();
  const root = path.join(opts.scratchDir, 'sync-cost');
  opts.log(`sync-cost: ${schedule.entries.length} commands on ${schedule.devices.length} devices, ${schedule.devices.reduce((a, d) => a + d.pulls, 0)} pulls; simulating the client (push, push --queue) and the seed's design side by side`);
  const t0 = performance.now();
  try {
    const designs = await simulateDay(schedule, root);
    const simulationSeconds = (performance.now() - t0) / 1000;
    for (const d of designs) opts.log(`${d.design}: ${d.day.total} requests in the day, simulated in ${d.simulationSeconds.toFixed(1)} s`);
    opts.log(`RGW: ${opts.liveRounds} entries pushed on one device and pulled on another`);
    const live = await liveRgw(opts.target, opts.bucket, root, schedule.entries, opts.liveRounds);
    return {
      schedule: { commands: schedule.entries.length, devices: schedule.devices, dayStart: new Date(schedule.dayStart).toISOString(), dayEnd: new Date(schedule.dayEnd).toISOString(), pullsPerDay: schedule.devices.reduce((a, d) => a + d.pulls, 0) },
      designs,
      live,
      simulationSeconds,
    };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const find = (r: SyncCostResult, design: DesignName) => r.designs.find((d) => d.design === design)!;
const int = (n: number) => Math.round(n).toLocaleString('en-US');
const mb = (bytes: number) => (bytes / 1e6).toFixed(2);
const dollars = (x: number) => (x < 0.01 ? `$${x.toFixed(4)}` : `$${x.toFixed(3)}`);
const minSec = (s: number) => {
  if (!Number.isFinite(s)) return '-';
  const whole = Math.round(s);
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, '0')}`;
};

export function monthlyCost(d: DesignResult): { requests: number; storage: number; total: number } {
  const requests = DAYS_PER_MONTH * requestCost(d.day);
  const storage = monthlyStorageCost(d.stored.bytes);
  return { requests, storage, total: requests + storage };
}

export function formatCostTable(r: SyncCostResult): string {
  const issue = find(r, "seed, issue's model").day.total;
  const coded = find(r, 'seed, as coded').day.total;
  const rows = r.designs.map((d) => {
    const m = monthlyCost(d);
    return [
      d.design,
      ...REQUEST_CLASSES.map((c) => int(d.day[c])),
      int(d.day.total),
      `${(d.day.total / issue).toFixed(2)}x`,
      `${(d.day.total / coded).toFixed(2)}x`,
      mb(d.day.bytesUp),
      mb(d.day.bytesDown),
      `${mb(d.stored.bytes)} (${int(d.stored.objects)})`,
      dollars(requestCost(d.day)),
      dollars(m.requests),
      dollars(m.storage),
      dollars(m.total),
    ];
  });
  return formatColumns(
    ['design', 'PUT', 'GET', 'LIST', 'DELETE', 'requests', 'vs seed (issue)', 'vs seed (coded)', 'MB up', 'MB down', 'stored MB (objects)', '$ / day', '$ req / month', '$ storage / month', '$ / month'],
    rows,
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14],
  );
}

export function formatDetailTable(r: SyncCostResult): string {
  const rows = r.designs.map((d) => {
    const hist = Object.entries(d.emptyPulls.histogram)
      .map(([k, v]) => `${v}x${k}`)
      .join(' ');
    return [
      d.design,
      int(d.latency.count),
      minSec(d.latency.median),
      minSec(d.latency.p95),
      minSec(d.latency.max),
      int(d.pulls),
      int(d.emptyPulls.count),
      d.emptyPulls.count ? `${d.emptyPulls.min} / ${d.emptyPulls.max}` : '-',
      hist + (d.emptyPullsThatSent ? ` (+${d.emptyPullsThatSent} that sent a batch)` : ''),
      d.compactions === undefined ? '-' : String(d.compactions),
      int(d.setup.total),
    ];
  });
  return formatColumns(['design', 'deliveries', 'latency median', 'p95', 'max', 'pulls', 'empty pulls', 'requests min / max', 'requests per empty pull', 'compactions', 'setup requests'], rows, [1, 2, 3, 4, 5, 6, 7, 9, 10]);
}

export function formatLiveTable(live: LiveResult): string {
  const ms = (x: number) => x.toFixed(0);
  const rows = live.rounds.map((x) => [String(x.entry), ms(x.pushMs), String(x.pushRequests), ms(x.pullMs), String(x.pullRequests), String(x.pulls), ms(x.visibleMs)]);
  rows.push(['median', '', '', '', '', '', ms(live.visibleMs.median)]);
  return formatColumns(['entry', 'push ms', 'push requests', 'pull ms', 'pull requests', 'pulls', 'push -> visible ms'], rows, [1, 2, 3, 4, 5, 6]);
}

export function checkSyncCostTargets(r: SyncCostResult): TargetCheck[] {
  const push = find(r, 'offsite push');
  const ratio = (seed: DesignName): TargetCheck => {
    const s = find(r, seed).day.total;
    const x = push.day.total / s;
    return { name: `requests <= 1/4 of ${seed}`, pass: x <= 0.25, value: `${x.toFixed(2)}x (${int(push.day.total)} vs ${int(s)} a day)` };
  };
  const e = push.emptyPulls;
  const liveMax = Math.max(...r.live.emptyPullRequests);
  const liveMin = Math.min(...r.live.emptyPullRequests);
  return [
    ratio("seed, issue's model"),
    ratio('seed, as coded'),
    { name: 'empty pull = 1 request (simulated)', pass: e.count > 0 && e.min === 1 && e.max === 1, value: `min ${e.min}, max ${e.max} over ${e.count} empty pulls` },
    { name: 'empty pull = 1 request (RGW)', pass: liveMin === 1 && liveMax === 1, value: `min ${liveMin}, max ${liveMax} over ${r.live.emptyPullRequests.length} empty pulls` },
  ];
}

export function describePrices(): string {
  return `prices: AWS ${PRICES.region} S3 Standard list prices as of ${PRICES.date}: PUT/COPY/POST/LIST $${PRICES.putListPer1000} per 1,000, GET and other requests $${PRICES.getPer1000} per 1,000, DELETE free, storage $${PRICES.storagePerGbMonth} per GB-month; a month = ${DAYS_PER_MONTH} days`;
}

export function describeClient(): string {
  return `client defaults: batching ${JSON.stringify(DEFAULT_BATCHING)}, compaction every ${DEFAULT_COMPACTION.everyBatches} batches (auto ${DEFAULT_COMPACTION.auto})`;
}
