// A tree of session directories (ROOT/2024/SESSION/...) uploaded whole by each tool, then restored
// whole into an empty directory, each in its own process under /usr/bin/time, to and from its own
// prefix of the bench bucket:
//   offsite     `bin/offsite archive --config CFG upload` (one tar per session, streamed);
//               restore: `offsite archive restore --session-id S` for every session
//   tar-aws-1/2 `tar -cf - SESSION | aws s3 cp - ...` for every session, in one bash process, with
//               the pip aws-cli 1.x (when it can be had) and Debian's 2.x; restore:
//               `aws s3 cp s3://.../S.tar - | tar -xf -`
//   rclone      `rclone copy ROOT bench:BUCKET/rclone-run-N` (one object per file), and back
//   restic      `restic backup ROOT` into a fresh repository (`restic init` is not timed);
//               `restic restore latest`
// Offsite's upload is checked with `offsite archive verify` (not timed); every tool's restored
// tree is compared file by file (path, size, SHA-256) with the source (not timed). Everything
// uploaded in a round is deleted before the next one. The tree is generated once per bench run.
import { createCipheriv, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runMeasured, runQuiet, sha256File, type Command } from '../measure.js';
import { offsiteUrlQuery } from '../offsite.js';
import { AWS_BIN, awsEnv, cleanEnv, RCLONE_BIN, rcloneSetup, RESTIC_BIN, versionOf, withNodeOnPath } from '../peers.js';
import { median } from '../report.js';
import type { BenchBucket } from '../target.js';
import { BenchFailure, type Measurement, type S3Target } from '../types.js';

export const SCENARIO = 'archive-tree';
const MIB = 1024 * 1024;
const YEAR = '2024';
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const offsiteBin = path.join(root, 'bin', 'offsite');

export interface Tree {
  root: string;
  sessions: string[];
  files: number;
  bytes: number;
  largeFiles: number;
  largeFileBytes: number;
}

/**
 * Writes `files` files totalling exactly `bytes` of AES-CTR keystream (incompressible) under
 * ROOT/2024/S2024-0N/: half of the bytes in a few large files (~1 per 2500 files, at most 16),
 * 3 to 6 sessions (1 per 5000 files), the other half spread over the rest with sizes varying from 0.1x to 1.9x of their mean, in
 * sub-directories of 500 files.
 */
export function generateTree(dir: string, bytes: number, files: number): Tree {
  const sessions = Array.from({ length: Math.min(files, Math.max(3, Math.min(6, Math.ceil(files / 5000)))) }, (_, i) => `S${YEAR}-${String(i + 1).padStart(2, '0')}`);
  const largeFiles = files >= 8 ? Math.min(16, Math.max(1, Math.round(files / 2500))) : 0;
  const largeFileBytes = largeFiles ? Math.floor(bytes / 2 / largeFiles) : 0;
  const small = files - largeFiles;
  const smallBytes = bytes - largeFileBytes * largeFiles;
  // Deterministic sizes from a small LCG; the content is random.
  let seed = 0x2545f491;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const weights = Array.from({ length: small }, () => 0.1 + 1.8 * rnd());
  const wsum = weights.reduce((a, b) => a + b, 0);
  const sizes = weights.map((w) => Math.floor((smallBytes * w) / wsum));
  if (small) sizes[small - 1]! += smallBytes - sizes.reduce((a, b) => a + b, 0);
  for (let i = 0; i < largeFiles; i++) sizes.push(largeFileBytes);

  const cipher = createCipheriv('aes-256-ctr', randomBytes(32), randomBytes(16));
  const zero = Buffer.alloc(4 * MIB);
  const perSession = new Array<number>(sessions.length).fill(0);
  sizes.forEach((size, i) => {
    const s = i % sessions.length;
    const n = perSession[s]!++;
    const isLarge = i >= small;
    const sub = isLarge ? 'raw' : `frames-${String(Math.floor(n / 500)).padStart(3, '0')}`;
    const d = path.join(dir, YEAR, sessions[s]!, sub);
    if (n % 500 === 0 || isLarge) mkdirSync(d, { recursive: true });
    const fd = openSync(path.join(d, isLarge ? `cube-${String(i - small).padStart(2, '0')}.fits` : `f${String(n).padStart(6, '0')}.dat`), 'w');
    try {
      for (let left = size; left > 0; ) {
        const k = Math.min(left, zero.length);
        writeSync(fd, cipher.update(zero.subarray(0, k)));
        left -= k;
      }
    } finally {
      closeSync(fd);
    }
  });
  return { root: dir, sessions, files, bytes, largeFiles, largeFileBytes };
}

/** One way of uploading the whole tree to `prefix` (no trailing slash) of the bucket. */
export interface TreeTool {
  name: string;
  version: string;
  /** Untimed set-up (config files, `restic init`). */
  prepare?(prefix: string): Promise<void>;
  upload(prefix: string): Command;
  /** Untimed check that the upload is complete; throws BenchFailure if not. */
  check?(prefix: string): Promise<void>;
  /**
   * The whole tree back from `prefix` into the empty directory `dest`; `sessionsDir` is where the
   * session directories land under it (each tool lays the tree out its own way).
   */
  restore?(prefix: string, dest: string): { command: Command; sessionsDir: string };
}

/** Every regular file under `dir` by relative path: its size and SHA-256. */
export async function treeDigest(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (rel: string) => {
    for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(r);
      else if (e.isFile()) {
        const { size, sha256 } = await sha256File(path.join(dir, r));
        out.set(r, `${size} ${sha256}`);
      }
    }
  };
  await walk('');
  return out;
}

/** Throws BenchFailure unless `restored` holds exactly the files of `source`, byte for byte. */
export function compareTrees(source: Map<string, string>, restored: Map<string, string>, what: string): void {
  const missing = [...source.keys()].filter((k) => !restored.has(k));
  const extra = [...restored.keys()].filter((k) => !source.has(k));
  const differ = [...source.keys()].filter((k) => restored.has(k) && restored.get(k) !== source.get(k));
  if (missing.length || extra.length || differ.length) {
    throw new BenchFailure(
      `${what}: ${missing.length} file(s) missing, ${extra.length} extra, ${differ.length} with other content (first: ${[...missing, ...extra, ...differ].slice(0, 3).join(', ')})`,
    );
  }
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The tools that can time the tree; `tar-aws-1` only with a pip aws-cli 1.x (`aws1Bin`). */
export function treeTools(target: S3Target, scratchDir: string, tree: Tree, aws1Bin?: string): Record<string, () => TreeTool> {
  const tarAws = (name: string, bin: string): TreeTool => {
    const env = awsEnv(target, scratchDir);
    const aws = `${q(bin)} --endpoint-url ${q(target.endpoint)} --no-progress --only-show-errors s3 cp`;
    const script = (lines: string[]) => ({ cmd: 'bash', args: ['-c', ['set -euo pipefail', ...lines].join('\n')], env });
    return {
      name,
      version: `${versionOf('tar', ['--version'], env)} | ${versionOf(bin, ['--version'], env)}`,
      upload: (prefix) => script(tree.sessions.map((s) => `tar -cf - -C ${q(path.join(tree.root, YEAR))} ${q(s)} | ${aws} - ${q(`s3://${target.bucket}/${prefix}/${s}.tar`)}`)),
      restore: (prefix, dest) => ({ command: script(tree.sessions.map((s) => `${aws} ${q(`s3://${target.bucket}/${prefix}/${s}.tar`)} - | tar -xf - -C ${q(dest)}`)), sessionsDir: dest }),
    };
  };
  const cfgFile = (prefix: string) => path.join(scratchDir, `archive-${prefix}.toml`);
  const offsiteEnv = cleanEnv({ AWS_ACCESS_KEY_ID: target.accessKeyId, AWS_SECRET_ACCESS_KEY: target.secretAccessKey, AWS_EC2_METADATA_DISABLED: 'true' });
  const offsiteCmd = (prefix: string, sub: string): Command => ({ cmd: offsiteBin, args: ['--no-progress', 'archive', '--config', cfgFile(prefix), sub], env: withNodeOnPath(offsiteEnv), cwd: root });
  return {
    offsite: () => ({
      name: 'offsite',
      version: `offsite ${(JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version} (Node ${process.version})`,
      prepare: async (prefix) => {
        const catalog = path.join(scratchDir, `catalog-${prefix}.db`);
        rmSync(catalog, { force: true });
        const url = `s3://${target.bucket}/${prefix}?${offsiteUrlQuery(target)}`;
        writeFileSync(
          cfgFile(prefix),
          [
            '[destination]',
            `url = ${JSON.stringify(url)}`,
            '[sessions]',
            `root = ${JSON.stringify(tree.root)}`,
            'layout = "year/session"',
            '[upload]',
            'storage_class = "STANDARD"',
            '[catalog]',
            `path = ${JSON.stringify(catalog)}`,
            '',
          ].join('\n'),
        );
      },
      upload: (prefix) => offsiteCmd(prefix, 'upload'),
      check: async (prefix) => {
        await runQuiet(offsiteCmd(prefix, 'verify'), 'offsite archive verify');
      },
      // One process per session, as the CLI restores one session at a time.
      restore: (prefix, dest) => ({
        command: {
          cmd: 'bash',
          args: ['-c', ['set -euo pipefail', ...tree.sessions.map((s) => [offsiteBin, '--no-progress', 'archive', '--config', cfgFile(prefix), 'restore', '--session-id', s, '--to', dest].map(q).join(' '))].join('\n')],
          env: withNodeOnPath(offsiteEnv),
          cwd: root,
        },
        sessionsDir: dest,
      }),
    }),
    ...(aws1Bin ? { 'tar-aws-1': () => tarAws('tar-aws-1', aws1Bin) } : {}),
    'tar-aws-2': () => tarAws('tar-aws-2', AWS_BIN),
    rclone: () => {
      const { env, command, remote } = rcloneSetup(target, scratchDir);
      return {
        name: 'rclone',
        version: versionOf(RCLONE_BIN, ['version'], env),
        upload: (prefix) => command(['copy', tree.root, remote(prefix)]),
        restore: (prefix, dest) => ({ command: command(['copy', remote(prefix), dest]), sessionsDir: path.join(dest, YEAR) }),
      };
    },
    restic: () => {
      const cache = path.join(scratchDir, 'restic-cache');
      const env = cleanEnv({
        AWS_ACCESS_KEY_ID: target.accessKeyId,
        AWS_SECRET_ACCESS_KEY: target.secretAccessKey,
        RESTIC_PASSWORD: 'offsite-bench',
        RESTIC_CACHE_DIR: cache,
      });
      const repo = (prefix: string) => `s3:${target.endpoint}/${target.bucket}/${prefix}`;
      return {
        name: 'restic',
        version: versionOf(RESTIC_BIN, ['version'], env),
        prepare: async (prefix) => {
          rmSync(cache, { recursive: true, force: true });
          await runQuiet({ cmd: RESTIC_BIN, args: ['-r', repo(prefix), 'init'], env }, 'restic init');
        },
        upload: (prefix) => ({ cmd: RESTIC_BIN, args: ['-r', repo(prefix), 'backup', '--quiet', tree.root], env }),
        // restic restores the absolute path it backed up under the target.
        restore: (prefix, dest) => ({ command: { cmd: RESTIC_BIN, args: ['-r', repo(prefix), 'restore', 'latest', '--quiet', '--target', dest], env }, sessionsDir: path.join(dest, tree.root, YEAR) }),
      };
    },
  };
}

export interface ArchiveTreeOptions {
  tools: TreeTool[];
  bucket: BenchBucket;
  scratchDir: string;
  tree: Tree;
  runs: number;
  log: (line: string) => void;
}

export async function archiveTree(o: ArchiveTreeOptions): Promise<Measurement[]> {
  const rows: Measurement[] = [];
  const source = await treeDigest(path.join(o.tree.root, YEAR));
  const config = { files: o.tree.files, sessions: o.tree.sessions.length };
  for (let run = 1; run <= o.runs; run++) {
    const order = o.tools.map((_, i) => o.tools[(i + run - 1) % o.tools.length]!);
    for (const tool of order) {
      const prefix = `${tool.name}-run-${run}`;
      const dest = path.join(o.scratchDir, `restored-${prefix}`);
      try {
        await tool.prepare?.(prefix);
        const r = await runMeasured(tool.upload(prefix), `${tool.name} upload of the tree`, o.scratchDir);
        await tool.check?.(prefix);
        rows.push({ scenario: SCENARIO, tool: tool.name, op: 'upload', run, bytes: o.tree.bytes, seconds: r.seconds, peakRssBytes: r.peakRssBytes, config });
        o.log(`run ${run} ${tool.name.padEnd(9)} upload  ${r.seconds.toFixed(1)} s  ${(o.tree.bytes / 1e6 / r.seconds).toFixed(0)} MB/s  peak RSS ${(r.peakRssBytes / 1e6).toFixed(0)} MB${tool.check ? '  (verified)' : ''}`);
        if (tool.restore) {
          rmSync(dest, { recursive: true, force: true });
          mkdirSync(dest, { recursive: true });
          const { command, sessionsDir } = tool.restore(prefix, dest);
          const back = await runMeasured(command, `${tool.name} restore of the tree`, o.scratchDir);
          compareTrees(source, await treeDigest(sessionsDir), `${tool.name} restore, run ${run}`);
          rows.push({ scenario: SCENARIO, tool: tool.name, op: 'restore', run, bytes: o.tree.bytes, seconds: back.seconds, peakRssBytes: back.peakRssBytes, config });
          o.log(`run ${run} ${tool.name.padEnd(9)} restore ${back.seconds.toFixed(1)} s  ${(o.tree.bytes / 1e6 / back.seconds).toFixed(0)} MB/s  peak RSS ${(back.peakRssBytes / 1e6).toFixed(0)} MB  (every file's SHA-256 as the source's)`);
        }
      } finally {
        rmSync(dest, { recursive: true, force: true });
        const n = await o.bucket.deletePrefix(`${prefix}/`);
        o.log(`run ${run} ${tool.name.padEnd(9)} deleted ${n} object(s)`);
      }
    }
  }
  return rows;
}

export interface TreeSummaryRow {
  tool: string;
  op: 'upload' | 'restore';
  runs: number;
  /** Median wall seconds over the rounds. */
  seconds: number;
  mbPerSec: number;
  /** seconds / the faster tar|aws's seconds for the same operation (lower is better). */
  vsTarAws?: number;
  /** Which tar|aws that was. */
  tarAws?: string;
  peakRssMb: number;
  allSeconds: number[];
}

const isTarAws = (tool: string) => tool.startsWith('tar-aws');

export function summariseTree(rows: Measurement[]): TreeSummaryRow[] {
  const keys = [...new Set(rows.map((r) => `${r.tool}\0${r.op}`))];
  const out = keys.map((k): TreeSummaryRow => {
    const [tool, op] = k.split('\0') as [string, 'upload' | 'restore'];
    const g = rows.filter((r) => r.tool === tool && r.op === op);
    const seconds = median(g.map((r) => r.seconds));
    return { tool, op, runs: g.length, seconds, mbPerSec: g[0]!.bytes / 1e6 / seconds, peakRssMb: Math.max(...g.map((r) => r.peakRssBytes / 1e6)), allSeconds: g.map((r) => r.seconds) };
  });
  for (const op of ['upload', 'restore'] as const) {
    const base = out.filter((s) => s.op === op && isTarAws(s.tool)).sort((a, b) => a.seconds - b.seconds)[0];
    if (base) for (const s of out.filter((x) => x.op === op)) Object.assign(s, { vsTarAws: s.seconds / base.seconds, tarAws: base.tool });
  }
  const order = ['offsite', 'tar-aws-1', 'tar-aws-2', 'rclone', 'restic'];
  return out.sort((a, b) => a.op.localeCompare(b.op) * -1 || order.indexOf(a.tool) - order.indexOf(b.tool));
}

export function checkTreeTargets(summary: TreeSummaryRow[]): { name: string; pass: boolean; value: string }[] {
  const row = (tool: string, op: 'upload' | 'restore') => summary.find((s) => s.tool === tool && s.op === op);
  const off = row('offsite', 'upload');
  const back = row('offsite', 'restore');
  const faster = (t: string) => {
    const p = row(t, 'upload');
    return { name: `Offsite upload faster than ${t}`, pass: !!off && !!p && off.seconds < p.seconds, value: off && p ? `${off.seconds.toFixed(1)} s vs ${p.seconds.toFixed(1)} s` : 'not measured' };
  };
  const ratio = (r: TreeSummaryRow | undefined, op: string) => ({
    name: `Offsite ${op} <= 1.10x the faster tar|aws`,
    pass: r?.vsTarAws !== undefined && r.vsTarAws <= 1.1,
    value: r?.vsTarAws === undefined ? 'not measured' : `${r.vsTarAws.toFixed(2)}x (${r.tarAws})`,
  });
  const rss = Math.max(off?.peakRssMb ?? 0, back?.peakRssMb ?? 0);
  return [
    ratio(off, 'upload'),
    ratio(back, 'restore'),
    faster('rclone'),
    faster('restic'),
    { name: 'Offsite peak RSS < 150 MB (upload, restore)', pass: !!off && rss < 150, value: off ? `${off.peakRssMb.toFixed(0)} / ${back ? back.peakRssMb.toFixed(0) : '-'} MB` : 'not measured' },
  ];
}

export function formatTreeTable(summary: TreeSummaryRow[]): string {
  const header = ['tool', 'op', 'seconds', 'MB/s', 'time vs faster tar|aws', 'peak RSS MB', 'seconds per run'];
  const body = summary.map((s) => [
    s.tool,
    s.op,
    s.seconds.toFixed(1),
    s.mbPerSec.toFixed(0),
    s.vsTarAws === undefined ? '-' : `${s.vsTarAws.toFixed(2)}x ${s.tarAws}`,
    s.peakRssMb.toFixed(0),
    s.allSeconds.map((v) => v.toFixed(1)).join(' '),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i >= 2 && i <= 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}
