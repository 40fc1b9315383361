/**
 * A backup run in a child process, for startBackupLoop() in a host application: the snapshot's
 * copy, hashing, compression, encryption and upload run on another event loop, in another heap,
 * at a lower CPU priority (nice 10), so the host's own requests are never queued behind them
 * and its memory never holds the run's buffers. The child (run-child.ts) opens its own catalog
 * connection (SQLite in WAL mode lets both write) and its own storage client, runs
 * runBackupJob, and sends the result back. An abort is passed on (the upload is aborted, as in
 * process); a host that dies takes the run with it (the child sees its channel close).
 */
import { fork } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { rm } from 'node:fs/promises';
import { setPriority } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { BackupJob } from './config.js';
import { BackupRunError, type BackupRunResult } from './run.js';

/** The child's CPU priority: below the host's, which keeps 0 (the default). */
export const ISOLATED_RUN_NICENESS = 10;

/**
 * Parts the child uploads at once, unless the job's URL says `concurrency=N`: the backup takes
 * longer and never saturates the machine under the host. With the S3 server on the same 2 cores,
 * a 1 GiB backup with 4 parts in flight left the host's event loop 16 ms late at p99, one at a
 * time 4 ms, and took 10 s instead of 7 (docs/bench.md).
 */
export const HOST_UPLOAD_CONCURRENCY = 1;

export interface IsolatedRunOptions {
  /** The catalog the child records the run in; null: not recorded. */
  catalogPath: string | null;
  signal?: AbortSignal;
  /**
   * After a run that uploaded, apply the job's retention in the child too (pruneBackups), so the
   * host never lists or deletes (nor holds a storage client) itself; its outcome goes to onPruned.
   */
  prune?: boolean;
  /**
   * Makes the run's snapshot in this process (stageHostSnapshot: the DuckDB copy through the
   * app's connection), after the child is started and before it is asked to run; the child takes
   * the file instead of making a snapshot, and it is removed here if the run did not take it.
   * After, not before, the fork: a fork copies the page tables of the whole process, and the
   * copy fills DuckDB's buffer pool (spawning took 77-93 ms at 1.6-2.2 GB of RSS, 2-4 ms at 95 MB).
   */
  stageSnapshot?: () => Promise<string>;
  onPruned?: (outcome: IsolatedPruneOutcome) => void;
}

/** What a prune in the child did, or why it failed (the run itself still succeeded). */
export type IsolatedPruneOutcome = { ok: true; deletedLocal: string[]; deletedRemote: string[] } | { ok: false; error: string };

/** What the parent sends: the job, and where to record. */
export interface IsolatedRunRequest {
  job: BackupJob;
  catalogPath: string | null;
  prune: boolean;
  snapshotFile?: string;
}

/** What the child sends back, once. */
export type IsolatedRunReply =
  | { ok: true; result: BackupRunResult; prune?: IsolatedPruneOutcome }
  | { ok: false; error: { name: string; code: string | undefined; message: string } };

/** run-child.js beside this file (run-child.ts when the tests run the sources through tsx). */
function childEntry(): { file: string; execArgv: string[] } {
  const here = fileURLToPath(import.meta.url);
  const source = here.endsWith('.ts');
  const file = here.replace(/run-isolated\.(ts|js)$/, `run-child.$1`);
  // Only what the child needs: none of the host's own flags (--input-type, --inspect, ...).
  // A small young generation frees the run's dead buffers sooner, and one GC thread keeps V8's
  // helper threads off the host's cores (as bin/offsite does: see there).
  const execArgv = ['--max-semi-space-size=4', '--single-threaded-gc', ...(source ? ['--import', import.meta.resolve('tsx')] : [])];
  return { file, execArgv };
}

/** util-linux's ionice, where it is (Debian's util-linux has it); undefined elsewhere. */
const IONICE = ['/usr/bin/ionice', '/bin/ionice'].find((p) => {
  try {
    accessSync(p, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
});

/**
 * The child in the idle I/O class (`ionice -c 3`), every thread of it from its first
 * instruction: the snapshot's write-out (SQLite's fsync of the copy, ours after it) then queues
 * behind the host's own commits in the kernel's I/O scheduler (mq-deadline and BFQ order by
 * class; both age a waiting request, so the backup is delayed, never starved). Without ionice,
 * or on a scheduler that ignores classes ("none"), the child runs as before. fork() runs
 * `execPath execArgv... file`, so ionice execs node in place, with the IPC channel inherited.
 */
function idleIoLauncher(execArgv: string[]): { execPath?: string; execArgv: string[] } {
  if (!IONICE) return { execArgv };
  return { execPath: IONICE, execArgv: ['-c', '3', '-t', process.execPath, ...execArgv] };
}

export async function runBackupJobIsolated(job: BackupJob, opts: IsolatedRunOptions): Promise<BackupRunResult> {
  opts.signal?.throwIfAborted();
  const { file, execArgv } = childEntry();
  const child = fork(file, [], { ...idleIoLauncher(execArgv), serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    if (child.pid !== undefined) setPriority(child.pid, ISOLATED_RUN_NICENESS);
  } catch {
    // Not allowed to lower it (a sandbox): the run still happens off the host's event loop.
  }
  const onAbort = () => child.connected && child.send({ type: 'abort' });
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  let snapshotFile: string | undefined;
  let staging: Promise<string> | undefined;
  try {
    const exited = new Promise<IsolatedRunReply | undefined>((resolve, reject) => {
      let answer: IsolatedRunReply | undefined;
      child.on('message', (m: IsolatedRunReply) => (answer = m));
      child.once('error', reject);
      child.once('exit', () => resolve(answer));
    });
    if (opts.stageSnapshot) {
      // The child waits for its request meanwhile; if it ends first, so does the wait.
      const endedEarly = exited.then(() => {
        throw new BackupRunError('SnapshotFailed', `job ${job.name}: the backup process ended before its snapshot was made`);
      });
      endedEarly.catch(() => undefined); // whichever comes second is nobody's business
      staging = opts.stageSnapshot();
      snapshotFile = await Promise.race([staging, endedEarly]);
    }
    child.send({ type: 'run', request: { job, catalogPath: opts.catalogPath, prune: opts.prune ?? false, ...(snapshotFile ? { snapshotFile } : {}) } satisfies IsolatedRunRequest });
    const reply = await exited;
    if (!reply) throw new BackupRunError('SnapshotFailed', `job ${job.name}: the backup process ended without a result (killed?)`);
    if (reply.ok) {
      if (reply.prune) opts.onPruned?.(reply.prune);
      return { ...reply.result };
    }
    const { name, code, message } = reply.error;
    if (name === 'AbortError' || opts.signal?.aborted) throw Object.assign(new Error(message), { name: 'AbortError' });
    throw new BackupRunError(code ?? 'SnapshotFailed', message);
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (snapshotFile) await rm(snapshotFile, { force: true });
    // The child ended while the copy was still being made: its file goes once it is complete.
    else void staging?.then((file) => rm(file, { force: true })).catch(() => undefined);
  }
}
