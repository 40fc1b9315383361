// A tree of session directories (ROOT/2024/SESSION/...) uploaded whole by each tool, each in its
// own process under /usr/bin/time, to its own prefix of the bench bucket:
//   offsite   `bin/offsite archive --config CFG upload` (one tar per session, streamed)
//   tar-aws   `tar -cf - SESSION | aws s3 cp - ...` for every session, in one bash process
//   rclone    `rclone copy ROOT bench:BUCKET/rclone-run-N` (one object per file)
//   restic    `restic backup ROOT` into a fresh repository (`restic init` is not timed)
// Offsite's upload is checked with `offsite archive verify` (not timed). Everything uploaded in a
// round is deleted before the next one. The tree is generated once per bench run and reused.
import { createCipheriv, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runMeasured, runQuiet, type Command } from '../measure.js';
import { AWS_BIN, awsEnv, cleanEnv, RCLONE_BIN, rcloneSetup, RESTIC_BIN, versionOf, withNodeOnPath } from '../peers.js';
import { median } from '../report.js';
import type { BenchBucket } from '../target.js';
import type { Measurement, S3Target } from '../types.js';

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
}

export function treeTools(target: S3Target, scratchDir: string, tree: Tree): Record<string, () => TreeTool> {
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
        const url = `s3://${target.bucket}/${prefix}?endpoint=${target.endpoint}&region=${target.region}`;
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
    }),
    'tar-aws': () => {
      const env = awsEnv(target, scratchDir);
      const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
      return {
        name: 'tar-aws',
        version: `${versionOf('tar', ['--version'], env)} | ${versionOf(AWS_BIN, ['--version'], env)}`,
        upload: (prefix) => ({
          cmd: 'bash',
          args: [
            '-c',
            [
              'set -euo pipefail',
              ...tree.sessions.map(
                (s) => `tar -cf - -C ${q(path.join(tree.root, YEAR))} ${q(s)} | ${q(AWS_BIN)} --endpoint-url ${q(target.endpoint)} --no-progress --only-show-errors s3 cp - ${q(`s3://${target.bucket}/${prefix}/${s}.tar`)}`,
              ),
            ].join('\n'),
          ],
          env,
        }),
      };
    },
    rclone: () => {
      const { env, command, remote } = rcloneSetup(target, scratchDir);
      return { name: 'rclone', version: versionOf(RCLONE_BIN, ['version'], env), upload: (prefix) => command(['copy', tree.root, remote(prefix)]) };
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
  for (let run = 1; run <= o.runs; run++) {
    const order = o.tools.map((_, i) => o.tools[(i + run - 1) % o.tools.length]!);
    for (const tool of order) {
      const prefix = `${tool.name}-run-${run}`;
      try {
        await tool.prepare?.(prefix);
        const r = await runMeasured(tool.upload(prefix), `${tool.name} upload of the tree`, o.scratchDir);
        await tool.check?.(prefix);
        rows.push({ scenario: SCENARIO, tool: tool.name, op: 'upload', run, bytes: o.tree.bytes, seconds: r.seconds, peakRssBytes: r.peakRssBytes, config: { files: o.tree.files, sessions: o.tree.sessions.length } });
        o.log(`run ${run} ${tool.name.padEnd(8)} ${r.seconds.toFixed(1)} s  ${(o.tree.bytes / 1e6 / r.seconds).toFixed(0)} MB/s  peak RSS ${(r.peakRssBytes / 1e6).toFixed(0)} MB${tool.check ? '  (verified)' : ''}`);
      } finally {
        const n = await o.bucket.deletePrefix(`${prefix}/`);
        o.log(`run ${run} ${tool.name.padEnd(8)} deleted ${n} object(s)`);
      }
    }
  }
  return rows;
}

export interface TreeSummaryRow {
  tool: string;
  runs: number;
  /** Median wall seconds over the rounds. */
  seconds: number;
  mbPerSec: number;
  /** seconds / tar-aws's seconds. */
  vsTarAws?: number;
  peakRssMb: number;
  allSeconds: number[];
}

export function summariseTree(rows: Measurement[]): TreeSummaryRow[] {
  const names = [...new Set(rows.map((r) => r.tool))];
  const out = names.map((tool): TreeSummaryRow => {
    const g = rows.filter((r) => r.tool === tool);
    const seconds = median(g.map((r) => r.seconds));
    return { tool, runs: g.length, seconds, mbPerSec: g[0]!.bytes / 1e6 / seconds, peakRssMb: Math.max(...g.map((r) => r.peakRssBytes / 1e6)), allSeconds: g.map((r) => r.seconds) };
  });
  const base = out.find((s) => s.tool === 'tar-aws');
  if (base) for (const s of out) s.vsTarAws = s.seconds / base.seconds;
  const order = ['offsite', 'tar-aws', 'rclone', 'restic'];
  return out.sort((a, b) => order.indexOf(a.tool) - order.indexOf(b.tool));
}

export function checkTreeTargets(summary: TreeSummaryRow[]): { name: string; pass: boolean; value: string }[] {
  const off = summary.find((s) => s.tool === 'offsite');
  const peer = (t: string) => summary.find((s) => s.tool === t);
  const faster = (t: string) => {
    const p = peer(t);
    return { name: `Offsite faster than ${t}`, pass: !!off && !!p && off.seconds < p.seconds, value: off && p ? `${off.seconds.toFixed(1)} s vs ${p.seconds.toFixed(1)} s` : 'not measured' };
  };
  return [
    { name: 'Offsite time <= 1.20x tar | aws', pass: off?.vsTarAws !== undefined && off.vsTarAws <= 1.2, value: off?.vsTarAws === undefined ? 'not measured' : `${off.vsTarAws.toFixed(2)}x` },
    faster('rclone'),
    faster('restic'),
    { name: 'Offsite peak RSS < 200 MB', pass: !!off && off.peakRssMb < 200, value: off ? `${off.peakRssMb.toFixed(1)} MB` : 'not measured' },
  ];
}

export function formatTreeTable(summary: TreeSummaryRow[]): string {
  const header = ['tool', 'seconds', 'MB/s', 'time vs tar|aws', 'peak RSS MB', 'seconds per run'];
  const body = summary.map((s) => [s.tool, s.seconds.toFixed(1), s.mbPerSec.toFixed(0), s.vsTarAws === undefined ? '-' : `${s.vsTarAws.toFixed(2)}x`, s.peakRssMb.toFixed(0), s.allSeconds.map((v) => v.toFixed(1)).join(' ')]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i >= 1 && i <= 4 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}
