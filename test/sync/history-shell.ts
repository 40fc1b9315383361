// Real interactive shells for the shell-history tests: run one on a script, wait for what its
// hook recorded, and watch every process's argv meanwhile.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { HistoryEntry, HistoryShell } from '../../src/sync/index.js';
import { SyncState } from '../../src/sync/state.js';

// zsh's PROMPT_SP marks and carriage returns around a prompt (built from a string: eslint's
// no-control-regex refuses an ESC in a regex literal).
export const ZSH_PROMPT_NOISE = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m|\\r|%|#| +(?=\\r|$)`, 'g');

export interface ShellRun {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall clock before the shell started and after it exited. */
  started: number;
  ended: number;
}

/** An interactive shell reading `script` on stdin, with HOME, history and rc files in `home`. */
export async function runShell(shell: HistoryShell, rcFile: string, home: string, cwd: string, script: string, env: Record<string, string> = {}): Promise<ShellRun> {
  const args = shell === 'bash' ? ['--rcfile', rcFile, '-i'] : ['-i'];
  const started = Date.now();
  const child = spawn(shell, args, {
    cwd,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: home,
      TERM: 'dumb',
      LANG: 'C.UTF-8',
      HISTFILE: path.join(home, `.${shell}_history`),
      HISTCONTROL: 'ignorespace',
      ...(shell === 'zsh' ? { ZDOTDIR: path.dirname(rcFile) } : {}),
      ...env,
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));
  child.stdin.end(script);
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)));
  return { code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), started, ended: Date.now() };
}

/** Waits until the device holds `count` entries and has sent all of them (the hook's pushes are done). */
export async function waitForRecorded(dir: string, count: number, timeoutMs = 60_000): Promise<HistoryEntry[]> {
  const deadline = Date.now() + timeoutMs;
  let seen = -1;
  for (;;) {
    const state = SyncState.open(dir);
    try {
      seen = state.entryCount();
      const p = state.pendingSummary();
      if (seen >= count && p.entries === 0 && p.outbox === 0) return [...state.entries()] as HistoryEntry[];
    } finally {
      state.close();
    }
    assert.ok(Date.now() < deadline, `the hook recorded ${seen} of ${count} commands within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The batches this device has sent (its log's next sequence number counts them). */
export function batchesSent(dir: string): number {
  const state = SyncState.open(dir);
  try {
    return state.get('nextSeq');
  } finally {
    state.close();
  }
}

export interface ArgvWatch {
  /** Stops watching: how many scans of /proc, cmdlines holding the needle, pids matching `watch`. */
  stop(): Promise<{ scans: number; hits: string[]; watched: string[] }>;
}

const pollerScript = fileURLToPath(new URL('./cmdline-poller.ts', import.meta.url));

/** Scans every process's argv, as fast as it can, until stop(). */
export async function watchArgv(needle: string, watch: string): Promise<ArgvWatch> {
  const child = spawn(process.execPath, ['--import', 'tsx', pollerScript], { env: { ...process.env, NEEDLE: needle, WATCH: watch }, stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const ready = new Promise<void>((resolve) => lines.once('line', () => resolve()));
  const result = new Promise<string>((resolve) => lines.on('line', (l) => l !== 'ready' && resolve(l)));
  await ready;
  return {
    async stop() {
      child.stdin.end();
      return JSON.parse(await result) as { scans: number; hits: string[]; watched: string[] };
    },
  };
}
