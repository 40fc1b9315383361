// Helpers for the codec tests: a sample tree, snapshots of trees to compare, GNU tar, and
// hand-made tar archives for the hostile cases.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, readdir, readlink, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Header } from 'tar';
import { pseudoRandomStream } from '../support/data.js';

export const BIG_FILE_SIZE = 5 * 1024 * 1024;

/** Paths of the sample tree, relative to its parent. */
export const SAMPLE = {
  root: 'S1',
  big: 'S1/raw/a.fits',
  text: 'S1/notes/readme.txt',
  textContent: 'MARKER-0123456789 the content that the corruption test flips\n',
  unicode: 'S1/ünïcødé ✓/файл 日本.txt',
  longPath: `S1/${'deep-directory-name/'.repeat(8)}with-a-file-name-that-makes-the-path-longer-than-ustar-allows.dat`,
  empty: 'S1/empty.txt',
  emptyDir: 'S1/empty-dir',
  symlink: 'S1/latest',
  symlinkTarget: 'raw/a.fits',
  dangling: 'S1/dangling',
};

/** A nested tree under `parent`: dirs, an empty file and dir, 5 MB of random data, unicode and long names, symlinks. */
export async function makeSampleTree(parent: string): Promise<void> {
  const p = (rel: string): string => path.join(parent, rel);
  for (const dir of ['S1/raw', 'S1/notes', 'S1/ünïcødé ✓', SAMPLE.emptyDir, path.dirname(SAMPLE.longPath)]) await mkdir(p(dir), { recursive: true });
  await pipeline(pseudoRandomStream(BIG_FILE_SIZE, 'codec-sample'), createWriteStream(p(SAMPLE.big)));
  await writeFile(p(SAMPLE.text), SAMPLE.textContent, { mode: 0o640 });
  await writeFile(p(SAMPLE.unicode), 'привет, 世界\n');
  await writeFile(p(SAMPLE.longPath), 'long\n');
  await writeFile(p(SAMPLE.empty), '');
  await writeFile(p('S1/raw/run.sh'), '#!/bin/sh\necho ok\n', { mode: 0o755 });
  await symlink(SAMPLE.symlinkTarget, p(SAMPLE.symlink));
  await symlink('../nowhere/at/all', p(SAMPLE.dangling));
  // Whole seconds in the past, so restored times can be compared exactly.
  const when = new Date('2024-03-01T12:34:56Z');
  await utimes(p(SAMPLE.big), when, when);
}

export interface NodeInfo {
  path: string;
  type: 'file' | 'directory' | 'symlink' | 'other';
  size?: number;
  sha256?: string;
  mode?: number;
  mtime?: number;
  linkTarget?: string;
}

/** Everything under `parent/name`, sorted, with content hashes; what a restore must reproduce. */
export async function snapshotTree(parent: string, name: string, opts: { times?: boolean } = {}): Promise<NodeInfo[]> {
  const out: NodeInfo[] = [];
  async function visit(rel: string): Promise<void> {
    const abs = path.join(parent, rel);
    const st = await lstat(abs);
    if (st.isSymbolicLink()) out.push({ path: rel, type: 'symlink', linkTarget: await readlink(abs) });
    else if (st.isFile()) {
      const h = createHash('sha256');
      for await (const c of createReadStream(abs)) h.update(c as Buffer);
      out.push({ path: rel, type: 'file', size: st.size, sha256: h.digest('hex'), mode: st.mode & 0o777, ...(opts.times ? { mtime: Math.floor(st.mtimeMs / 1000) } : {}) });
    } else if (st.isDirectory()) {
      out.push({ path: rel, type: 'directory', mode: st.mode & 0o777 });
      for (const child of (await readdir(abs)).sort()) await visit(`${rel}/${child}`);
    } else out.push({ path: rel, type: 'other' });
  }
  await visit(name);
  return out;
}

/** Runs a command, feeding `input` (a stream or bytes) to stdin; resolves with stdout. */
export async function run(cmd: string, args: string[], input?: Readable | Buffer): Promise<Buffer> {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));
  // A tool that does not read stdin (or stops early) closes it: EPIPE then is not the test's failure.
  child.stdin.on('error', () => undefined);
  const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
  const fed = input instanceof Readable ? pipeline(input, child.stdin) : new Promise<void>((resolve) => child.stdin.end(input ?? Buffer.alloc(0), resolve));
  const [code] = await Promise.all([exited, fed.catch(() => undefined)]);
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${code}: ${Buffer.concat(err).toString()}`);
  return Buffer.concat(out);
}

export interface RawEntry {
  path: string;
  type?: 'File' | 'Directory' | 'SymbolicLink' | 'Link' | 'CharacterDevice' | 'FIFO';
  linkpath?: string;
  body?: string | Buffer;
}

/** A tar archive built header by header, so it can hold what no honest packer writes. */
export function craftTar(entries: RawEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const body = e.body === undefined ? Buffer.alloc(0) : Buffer.from(e.body);
    const h = new Header({ path: e.path, type: e.type ?? 'File', mode: e.type === 'Directory' ? 0o755 : 0o644, size: body.length, mtime: new Date('2024-01-01T00:00:00Z'), linkpath: e.linkpath });
    h.encode();
    parts.push(h.block as Buffer, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** Everything under `dir`, as relative paths; to prove nothing landed where it should not. */
export async function listAll(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { recursive: true })) out.push(e);
  return out.sort();
}
