// Running tools and measuring them the same way: every tool (Offsite included) runs as its own
// process under GNU time, so wall time includes start-up and peak RSS is the process's
// ru_maxrss, unpolluted by the harness. Also: random test files and SHA-256 of files.
import { spawn } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import { BenchFailure } from './types.js';

export const TIME_BIN = '/usr/bin/time';

/** A command line with the exact environment it runs in (nothing is inherited implicitly). */
export interface Command {
  cmd: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface Measured {
  seconds: number;
  peakRssBytes: number;
  stdout: string;
  stderr: string;
}

/** Process groups started by runMeasured that are still running (for Ctrl-C clean-up). */
const live = new Set<number>();

/** Terminates every tool process still running (each in its own process group, by its id). */
export function killRunningTools(): void {
  for (const pgid of live) {
    try {
      process.kill(-pgid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  live.clear();
}

const tail = (s: string, n = 4000) => (s.length > n ? `…${s.slice(-n)}` : s);

/**
 * Runs `c` under /usr/bin/time in its own process group. Resolves with wall time and peak RSS;
 * rejects with BenchFailure when the tool exits non-zero or is killed.
 */
export async function runMeasured(c: Command, label: string, scratchDir: string): Promise<Measured> {
  const rssFile = path.join(scratchDir, `time-${process.pid}-${Date.now()}-${randomBytes(3).toString('hex')}.txt`);
  const t0 = process.hrtime.bigint();
  const child = spawn(TIME_BIN, ['-f', '%M', '-o', rssFile, c.cmd, ...c.args], {
    env: c.env,
    cwd: c.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  if (child.pid !== undefined) live.add(child.pid);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout = tail(stdout + d, 64_000)));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = tail(stderr + d, 64_000)));
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (child.pid !== undefined) live.delete(child.pid);
  const timeOut = await readFile(rssFile, 'utf8').catch(() => '');
  await rm(rssFile, { force: true });
  if (code !== 0) {
    throw new BenchFailure(`${label} failed (${signal ?? `exit ${code}`}): ${c.cmd} ${c.args.join(' ')}\n${tail(stderr.trim() || stdout.trim())}`);
  }
  const kib = Number(timeOut.trim().split('\n').pop());
  if (!Number.isFinite(kib) || kib <= 0) throw new BenchFailure(`${label}: no peak RSS from ${TIME_BIN} (got "${timeOut.trim()}")`);
  return { seconds, peakRssBytes: kib * 1024, stdout, stderr };
}

/** Runs a short helper command (not measured) and returns its stdout; throws on failure. */
export async function runQuiet(c: Command, label: string): Promise<string> {
  const child = spawn(c.cmd, c.args, { env: c.env, cwd: c.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err = tail(err + d)));
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new BenchFailure(`${label} failed (exit ${code}): ${c.cmd} ${c.args.join(' ')}\n${err.trim()}`);
  return out;
}

/**
 * Writes `bytes` of incompressible data (AES-256-CTR keystream under a random key) to `file`
 * and returns its SHA-256. About 1 GB/s here, so a 1 GiB file takes a second or two.
 */
export async function writeRandomFile(file: string, bytes: number): Promise<string> {
  const cipher = createCipheriv('aes-256-ctr', randomBytes(32), randomBytes(16));
  const hash = createHash('sha256');
  const zero = Buffer.alloc(4 * 1024 * 1024);
  const out = createWriteStream(file, { highWaterMark: zero.length });
  let left = bytes;
  while (left > 0) {
    const n = Math.min(left, zero.length);
    left -= n;
    const chunk = cipher.update(zero.subarray(0, n));
    hash.update(chunk);
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return hash.digest('hex');
}

export async function sha256File(file: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

/** Fails the bench unless `file` holds exactly the expected bytes. */
export async function verifyFile(file: string, expected: { sha256: string; size: number }, label: string): Promise<void> {
  const got = await sha256File(file);
  if (got.size !== expected.size || got.sha256 !== expected.sha256) {
    throw new BenchFailure(
      `${label}: downloaded bytes differ from the source (size ${got.size} vs ${expected.size}, sha256 ${got.sha256.slice(0, 16)}… vs ${expected.sha256.slice(0, 16)}…)`,
    );
  }
}
