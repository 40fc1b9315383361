// The shell-history spool: what the hook (history-hook.ts) appends in the shell, and the pusher
// (`offsite sync history flush`) that turns it into sync entries.
//
// <state dir>/history-spool/ (0700) holds one file per shell, `PID-TIME-RANDOM.spool` (0600),
// appended to by that shell only; `offsets.json`, how far the pusher has read each file;
// `flusher.pid`, the running pusher's pid (the shell's "is one running?" check: read + kill -0,
// no fork; see history-hook.ts), beside proper-lockfile's `flusher.lock` (the real mutual
// exclusion between pushers) while one runs.
//
// The pusher never changes a spool file, so it never races the shell that writes it: it reads
// complete lines past its offset, stores them, then moves the offset. Entry ids are a hash of
// (host, file, offset), so a line stored twice (a crash between the push and the offset) is
// one entry. A file is removed once it is read to the end and its shell has exited (or it has
// been idle for an hour: the shell then opens a new one).
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import * as fs from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { writePrivateFile } from '../files/index.js';
import { MAX_ENTRY_BYTES, type SyncClient } from './client.js';
import { isSyncError, SyncError } from './errors.js';
import { historyEntry, type HistoryEntry } from './history.js';
import { HISTORY_SPOOL_DIR, SPOOL_LINE_END, SPOOL_PID_FILE, SPOOL_SCRATCH_SUFFIX, SPOOL_SUFFIX } from './history-hook.js';
import { isStorageError } from '../storage/index.js';

const OFFSETS_FILE = 'offsets.json';
const LOCK_NAME = 'flusher';
/** A spool file idle this long is removed once read (its shell, if alive, opens a new one). */
const IDLE_REMOVE_MS = 60 * 60 * 1000;

export function historySpoolDir(stateDir: string): string {
  return path.join(stateDir, HISTORY_SPOOL_DIR);
}

export interface FlushSpoolOptions {
  /** Opens the device (once, when there is something to push). */
  open: () => Promise<SyncClient>;
  /** Wait until no command was spooled for this long before pushing. Default 0. */
  quietMs?: number;
  /** But push at most this long after starting to wait, even while commands keep coming. Default 5 s. */
  maxWaitMs?: number;
  /** How often the spool is looked at while waiting. Default 100 ms. */
  pollMs?: number;
}

export interface FlushSpoolResult {
  /** False when another pusher holds the lock (it sends what is there). */
  ran: boolean;
  /** Pushes made (each one push with flush: one batch, or more for very many commands). */
  pushes: number;
  /** Commands stored as entries. */
  entries: number;
  /** Spool lines that were not a valid command (skipped, not retried). */
  skipped: number;
  /** Why the last push could not send (the entries are stored here and go out with the next push). */
  sendError?: string;
}

/**
 * Pushes what the hook spooled: waits for a quiet moment, stores every complete new line as a
 * history entry and sends them, again while more arrive, then exits. Returns at once (ran:
 * false) when another pusher is running. Refuses a spool directory that is a link or not this
 * user's (SyncError InvalidEntry): nothing in it is trusted then.
 */
export async function flushHistorySpool(stateDir: string, opts: FlushSpoolOptions): Promise<FlushSpoolResult> {
  const dir = historySpoolDir(stateDir);
  const result: FlushSpoolResult = { ran: false, pushes: 0, entries: 0, skipped: 0 };
  if (!(await assertOwnDir(dir))) return result;
  const quietMs = opts.quietMs ?? 0;
  const maxWaitMs = opts.maxWaitMs ?? 5000;
  const pollMs = opts.pollMs ?? 100;
  let release = await tryLock(dir);
  if (!release) return result;
  result.ran = true;
  let client: SyncClient | undefined;
  try {
    let offsets = await readOffsets(dir);
    for (;;) {
      if (!(await hasUnreadLine(dir, offsets))) {
        await removeFinished(dir, offsets);
        await saveOffsets(dir, offsets);
        // Unlock, then look once more: a shell that spooled after the look above saw this
        // pusher running and started none, but one that spools after the unlock starts its own.
        await writePrivateFile(path.join(dir, SPOOL_PID_FILE), '');
        await release();
        release = undefined;
        if (!(await hasUnreadLine(dir, offsets))) return result;
        release = await tryLock(dir);
        if (!release) return result;
        offsets = await readOffsets(dir);
        continue;
      }
      await waitForQuiet(dir, quietMs, maxWaitMs, pollMs);
      const read = await readUnread(dir, offsets);
      result.skipped += read.skipped;
      if (read.entries.length > 0) {
        client ??= await opts.open();
        try {
          await client.push(read.entries, { flush: true });
        } catch (e) {
          // A failed send leaves the entries stored here (pending, sent by the next push); any
          // other failure (the local state) keeps the lines for the next pusher to try again.
          if (!isSyncError(e) && !isStorageError(e)) throw e;
          result.sendError = e.message;
        }
        result.pushes++;
        result.entries += read.entries.length;
      }
      offsets = { ...offsets, ...read.offsets };
      await saveOffsets(dir, offsets);
      if (result.sendError !== undefined) break;
    }
    return result;
  } finally {
    await client?.close();
    if (release) {
      await writePrivateFile(path.join(dir, SPOOL_PID_FILE), '');
      await release();
    }
  }
}

/** Whether `dir` is a real directory of this user; false when it does not exist. */
async function assertOwnDir(dir: string): Promise<boolean> {
  let st;
  try {
    st = await fs.lstat(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
  if (st.isSymbolicLink() || !st.isDirectory() || (process.getuid && st.uid !== process.getuid())) {
    throw new SyncError('InvalidEntry', `${dir} is not a directory of this user (a symbolic link, or someone else's): the history spool is not read from it; remove it, and the hook makes a new one`);
  }
  if ((st.mode & 0o077) !== 0) await fs.chmod(dir, 0o700);
  return true;
}

/** The lock between pushers, and the pid file the hook checks; undefined when another holds it. */
async function tryLock(dir: string): Promise<(() => Promise<void>) | undefined> {
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(path.join(dir, LOCK_NAME), { realpath: false, stale: 30_000, update: 5_000, retries: 0 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOCKED') return undefined;
    throw e;
  }
  await writePrivateFile(path.join(dir, SPOOL_PID_FILE), `${process.pid}\n`);
  return release;
}

type Offsets = Record<string, number>;

async function readOffsets(dir: string): Promise<Offsets> {
  try {
    const parsed: unknown = JSON.parse(await fs.readFile(path.join(dir, OFFSETS_FILE), { encoding: 'utf8', flag: constants.O_RDONLY | constants.O_NOFOLLOW }));
    if (typeof parsed !== 'object' || parsed === null) return {};
    return Object.fromEntries(Object.entries(parsed).filter((kv): kv is [string, number] => Number.isSafeInteger(kv[1]) && kv[1] >= 0));
  } catch {
    return {};
  }
}

async function saveOffsets(dir: string, offsets: Offsets): Promise<void> {
  await writePrivateFile(path.join(dir, OFFSETS_FILE), JSON.stringify(offsets));
}

interface SpoolFile {
  name: string;
  size: number;
  mtimeMs: number;
}

/** This user's regular spool files (links and anything else are ignored). */
async function spoolFiles(dir: string): Promise<SpoolFile[]> {
  const out: SpoolFile[] = [];
  for (const name of await fs.readdir(dir)) {
    if (!name.endsWith(SPOOL_SUFFIX)) continue;
    const st = await fs.lstat(path.join(dir, name)).catch(() => undefined);
    if (!st?.isFile() || (process.getuid && st.uid !== process.getuid())) continue;
    out.push({ name, size: st.size, mtimeMs: st.mtimeMs });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** Whether a file holds a complete line past its offset (a shell that died mid-line leaves a tail that never is). */
async function hasUnreadLine(dir: string, offsets: Offsets): Promise<boolean> {
  for (const f of await spoolFiles(dir)) if (await completeLinePast(dir, f, offsets)) return true;
  return false;
}

async function completeLinePast(dir: string, file: SpoolFile, offsets: Offsets): Promise<boolean> {
  const from = offsets[file.name] ?? 0;
  return file.size > from && (await readFrom(path.join(dir, file.name), from)).includes(0x0a);
}

/** Returns once nothing was appended for `quietMs`, or `maxWaitMs` after it was called. */
async function waitForQuiet(dir: string, quietMs: number, maxWaitMs: number, pollMs: number): Promise<void> {
  if (quietMs <= 0) return;
  const start = Date.now();
  let signature = JSON.stringify(await spoolFiles(dir));
  let changedAt = start;
  while (Date.now() - changedAt < quietMs && Date.now() - start < maxWaitMs) {
    await new Promise((r) => setTimeout(r, pollMs));
    const now = JSON.stringify(await spoolFiles(dir));
    if (now !== signature) {
      signature = now;
      changedAt = Date.now();
    }
  }
}

/** Every complete line after the offsets, as entries; the offsets to move to once they are stored. */
async function readUnread(dir: string, offsets: Offsets): Promise<{ entries: HistoryEntry[]; offsets: Offsets; skipped: number }> {
  const entries: HistoryEntry[] = [];
  const moved: Offsets = {};
  let skipped = 0;
  const host = hostname();
  for (const file of await spoolFiles(dir)) {
    const from = offsets[file.name] ?? 0;
    if (file.size <= from) continue;
    const bytes = await readFrom(path.join(dir, file.name), from);
    let at = 0;
    for (;;) {
      const nl = bytes.indexOf(0x0a, at);
      if (nl < 0) break; // the rest is a line the shell is still writing
      const line = bytes.subarray(at, nl + 1).toString('utf8');
      const id = createHash('sha256').update(`${host}\0${file.name}\0${from + at}`).digest('hex').slice(0, 32);
      const entry = parseSpoolLine(line, id);
      if (entry) entries.push(entry);
      else skipped++;
      at = nl + 1;
    }
    if (at > 0) moved[file.name] = from + at;
  }
  return { entries, offsets: moved, skipped };
}

async function readFrom(file: string, from: number): Promise<Buffer> {
  const handle = await fs.open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    // A file the shell created under a racing removal gets the user's umask: make it private.
    await handle.chmod(0o600);
    const { size } = await handle.stat();
    const buffer = Buffer.alloc(Math.max(0, size - from));
    let got = 0;
    while (got < buffer.length) {
      const { bytesRead } = await handle.read(buffer, got, buffer.length - got, from + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buffer.subarray(0, got);
  } finally {
    await handle.close();
  }
}

/** One spool line as an entry; undefined for a line that is not a valid command. */
export function parseSpoolLine(line: string, id: string): HistoryEntry | undefined {
  if (!line.endsWith(SPOOL_LINE_END)) return undefined;
  const fields = line.slice(0, -SPOOL_LINE_END.length).split('\t');
  if (fields.length !== 7 || fields[0] !== '1') return undefined;
  const [, start, end, exitCode, shell, cwd, command] = fields as [string, string, string, string, string, string, string];
  try {
    const entry = historyEntry({ id, start, end, exitCode, shell, cwd: unescapeField(cwd), command: unescapeField(command) });
    // Too large to sync (a pasted script): skipped as a recorder would have refused it.
    return Buffer.byteLength(JSON.stringify(entry)) > MAX_ENTRY_BYTES ? undefined : entry;
  } catch (e) {
    if (isSyncError(e, 'InvalidEntry')) return undefined;
    throw e;
  }
}

const ESCAPES: Record<string, string> = { '\\': '\\', n: '\n', t: '\t', r: '\r' };

function unescapeField(text: string): string {
  return text.replace(/\\(.)/gs, (_m, c: string) => ESCAPES[c] ?? c);
}

/**
 * Removes spool files read to the last complete line whose shell exited, or idle for an hour,
 * with their scratch files and offsets.
 */
async function removeFinished(dir: string, offsets: Offsets): Promise<void> {
  const present = new Set<string>();
  for (const file of await spoolFiles(dir)) {
    present.add(file.name);
    if (await completeLinePast(dir, file, offsets)) continue;
    const pid = Number(file.name.split('-')[0]);
    if (processAlive(pid) && Date.now() - file.mtimeMs < IDLE_REMOVE_MS) continue;
    await fs.rm(path.join(dir, file.name), { force: true });
    await fs.rm(path.join(dir, `${file.name.slice(0, -SPOOL_SUFFIX.length)}${SPOOL_SCRATCH_SUFFIX}`), { force: true });
    present.delete(file.name);
  }
  for (const name of Object.keys(offsets)) if (!present.has(name)) delete offsets[name];
}

function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
