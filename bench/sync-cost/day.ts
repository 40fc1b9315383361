// The simulated day of the sync-cost scenario: a deterministic schedule (seeded PRNG) of shell
// commands on 5 devices and of their pulls, the shell-history records themselves, the prices
// the cost is computed with, and small statistics helpers.
import type { HistoryEntry } from '../../src/sync/index.js';
import type { Tally } from './counting-storage.js';

/**
 * AWS S3 Standard, us-east-1, list prices as of 2026-11-23 (the figures of issue #5, the ones on
 * aws.amazon.com/s3/pricing for years; not fetched at run time).
 */
export const PRICES = {
  date: '2026-11-23',
  region: 'us-east-1',
  /** PUT, COPY, POST, LIST requests, per 1,000. */
  putListPer1000: 0.005,
  /** GET, SELECT and all other requests, per 1,000. */
  getPer1000: 0.0004,
  /** DELETE (and CANCEL) requests are free. */
  deletePer1000: 0,
  /** Storage, first 50 TB, per GB-month (GB = 2^30 bytes, as AWS bills storage). */
  storagePerGbMonth: 0.023,
} as const;

export const DAYS_PER_MONTH = 30;

/** Request cost of one day at the list prices, in dollars. */
export function requestCost(t: Tally): number {
  return ((t.PUT + t.LIST) * PRICES.putListPer1000 + t.GET * PRICES.getPer1000 + t.DELETE * PRICES.deletePer1000) / 1000;
}

/**
 * A month's storage, as an upper bound: what 30 such days leave behind (30 × the day's growth),
 * held for the whole month.
 */
export function monthlyStorageCost(bytesAfterOneDay: number): number {
  return ((DAYS_PER_MONTH * bytesAfterOneDay) / 2 ** 30) * PRICES.storagePerGbMonth;
}

// ---- the schedule

/** mulberry32: a small seeded PRNG, so every run replays the same day. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A recorded shell command: the entry `offsite sync history record` pushes. */
export type ShellEntry = HistoryEntry;

export interface DayEvent {
  /** Simulated ms since the epoch. */
  t: number;
  device: number;
  kind: 'command' | 'pull';
  entry?: ShellEntry;
}

export interface DaySchedule {
  /** When the devices are set up (init and joins), before the day. */
  setupAt: number;
  dayStart: number;
  dayEnd: number;
  devices: { name: string; host: string; commands: number; pulls: number; pullPhaseMs: number }[];
  events: DayEvent[];
  entries: ShellEntry[];
}

export const DEVICE_COUNT = 5;
export const COMMANDS_PER_DAY = 1000;
export const ACTIVE_HOURS = 10;
export const PULL_INTERVAL_MS = 5 * 60_000;
/** Commands stop this long before the day's end, so a queued entry (push --queue) still goes out and is read the same day. */
export const LAST_COMMAND_BEFORE_END_MS = 10 * 60_000;

const HOSTS = ['laptop', 'desktop', 'build-01', 'devbox', 'raspberrypi'];
/** Shares of the day's commands: people use some machines far more than others. */
const WEIGHTS = [0.3, 0.25, 0.2, 0.15, 0.1];
const COMMANDS = [
  'git status',
  'git diff --stat',
  'git log --oneline -20',
  'git commit -am "sync: batch pending entries at pull time"',
  'git push origin HEAD',
  'git pull --rebase',
  'ls -la',
  'cd ~/src/offsite',
  'npm test',
  'npm run build',
  'npm run lint -- --fix',
  'vim src/sync/client.ts',
  'code .',
  'docker ps --format "{{.Names}}\t{{.Status}}"',
  'docker compose up -d postgres',
  'kubectl get pods -n staging -o wide',
  'kubectl logs -f deploy/api -n staging --since=10m',
  'ssh build-01',
  'grep -rn "TODO" src | wc -l',
  'rg -n "countingRequests" src',
  'make -j8',
  'cargo build --release',
  'python3 -m pytest -q tests/test_sync.py::test_pull_empty',
  'curl -sS https://api.example.com/health | jq .',
  'tail -n 200 /var/log/syslog',
  'htop',
  'aws s3 ls s3://team-backups/2026/11/ --human-readable',
  'terraform plan -out plan.tfplan',
  'du -sh ~/Downloads/*',
  'journalctl -u offsite-daemon --since today',
  'psql -h localhost -U app -c "select count(*) from events"',
  'history | tail -50',
];
const CWDS = ['/home/ana', '/home/ana/src/offsite', '/home/ana/src/offsite/src/sync', '/home/ana/infra/terraform', '/home/ana/notes', '/tmp', '/srv/app'];

/**
 * The day: 1,000 commands over 5 devices (30/25/20/15/10%) in bursts of 1 to 8 commands a few
 * seconds apart, between 08:00 and 17:50; each device pulls every 5 minutes from 08:00 plus a
 * random phase until its first pull at or after 18:00 (121 pulls). Everything pushed is read by
 * every other device within the day.
 */
export function makeSchedule(seed = 5): DaySchedule {
  const rand = prng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  const hex = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * 16).toString(16)).join('');

  const dayStart = Date.UTC(2026, 10, 23, 8, 0, 0);
  const dayEnd = dayStart + ACTIVE_HOURS * 3600_000;
  const setupAt = dayStart - 3600_000;
  const lastCommandAt = dayEnd - LAST_COMMAND_BEFORE_END_MS;
  const counts = WEIGHTS.map((w) => Math.round(w * COMMANDS_PER_DAY));
  counts[0]! += COMMANDS_PER_DAY - counts.reduce((a, b) => a + b, 0);

  const events: DayEvent[] = [];
  const entries: ShellEntry[] = [];
  const devices: DaySchedule['devices'] = [];
  for (let d = 0; d < DEVICE_COUNT; d++) {
    const host = HOSTS[d]!;
    // Commands, in bursts; times distinct per device so pushes have a clear order.
    const times = new Set<number>();
    while (times.size < counts[d]!) {
      let t = dayStart + Math.floor(rand() * (lastCommandAt - dayStart));
      for (let burst = int(1, 8); burst > 0 && times.size < counts[d]! && t < lastCommandAt; burst--) {
        times.add(t);
        t += int(3_000, 60_000);
      }
    }
    for (const t of [...times].sort((a, b) => a - b)) {
      const seconds = rand() < 0.8 ? rand() * 2 : rand() * 120;
      const r = rand();
      const entry: ShellEntry = {
        id: hex(16),
        command: pick(COMMANDS),
        cwd: pick(CWDS),
        exitCode: r < 0.85 ? 0 : r < 0.95 ? 1 : r < 0.98 ? 2 : 130,
        startTime: new Date(t - Math.round(seconds * 1000)).toISOString(),
        endTime: new Date(t).toISOString(),
        host,
        shell: d === 2 ? 'bash' : 'zsh',
      };
      entries.push(entry);
      events.push({ t, device: d, kind: 'command', entry });
    }
    // Pulls: every 5 minutes from a random phase, until the first one at or after the day's end.
    const pullPhaseMs = int(0, PULL_INTERVAL_MS - 1);
    let pulls = 0;
    for (let t = dayStart + pullPhaseMs; ; t += PULL_INTERVAL_MS) {
      events.push({ t, device: d, kind: 'pull' });
      pulls++;
      if (t >= dayEnd) break;
    }
    devices.push({ name: `${host} (device ${d + 1})`, host, commands: counts[d]!, pulls, pullPhaseMs });
  }
  // In time order; at the same millisecond a command goes before a pull.
  events.sort((a, b) => a.t - b.t || (a.kind === b.kind ? a.device - b.device : a.kind === 'command' ? -1 : 1));
  return { setupAt, dayStart, dayEnd, devices, events, entries };
}

// ---- statistics

export interface Spread {
  count: number;
  median: number;
  p95: number;
  max: number;
}

export function spread(xs: number[]): Spread {
  if (xs.length === 0) return { count: 0, median: NaN, p95: NaN, max: NaN };
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
  return { count: s.length, median: at(0.5), p95: at(0.95), max: s[s.length - 1]! };
}
