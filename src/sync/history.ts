// The shell-history worked example of sync: a hook in ~/.bashrc or ~/.zshrc records each command
// (the command line as the shell saved it, cwd, exit code, start and end time, host) as one sync
// entry, and `search` finds commands from every device in the local state. The hook itself is
// history-hook.ts (it spools each command in the shell, with builtins only), the pusher that
// sends the spool is history-spool.ts; entries, search and the rc file are here. The CLI
// (src/cli/commands/sync-history.ts) only parses and prints.
import { randomBytes } from 'node:crypto';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { homedir, hostname } from 'node:os';
import path from 'node:path';
import type { SyncClient } from './client.js';
import { SyncError } from './errors.js';
import { hookScript, type HistoryShell, type HookOptions } from './history-hook.js';
import { SyncState } from './state.js';
import type { SyncEntry } from './types.js';

export const HISTORY_SHELLS = ['bash', 'zsh'] as const satisfies readonly HistoryShell[];
export { shellQuote, type HistoryShell, type HookOptions } from './history-hook.js';

/** One recorded command: the fields of a shell-history sync entry. */
export interface HistoryEntry extends SyncEntry {
  /** 16 random bytes, hex. */
  id: string;
  /** The command line as the shell saved it in its history (bash) or as typed (zsh). */
  command: string;
  /** The directory the command started in. */
  cwd: string;
  exitCode: number;
  /** ISO 8601 UTC with milliseconds. */
  startTime: string;
  endTime: string;
  host: string;
  shell: string;
}

export interface HistoryInput {
  command: string;
  cwd: string;
  exitCode: number | string;
  /** ISO 8601 with a time zone, or `@SECONDS[.FRACTION]` (what $EPOCHREALTIME gives). */
  start: string;
  end: string;
  /** Default: this machine's host name. */
  host?: string;
  shell?: string;
  /** Default: 16 random bytes, hex. */
  id?: string;
}

export const HISTORY_BEGIN = '# >>> offsite sync history >>>';
export const HISTORY_END = '# <<< offsite sync history <<<';
/** Written after the begin marker when install had to end the file's last line first. */
const NEWLINE_ADDED = ' (a newline was added before this line)';

const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})$/i;
const EPOCH_RE = /^@(\d{1,15})(?:[.,](\d*))?$/;

/** A time as the hook or a user gives it, as ISO 8601 UTC with milliseconds. */
export function parseHistoryTime(text: string, what = 'time'): string {
  const epoch = EPOCH_RE.exec(text);
  let ms: number;
  if (epoch) {
    // Integer arithmetic: "1767225600.123456" as a float would not round-trip its milliseconds.
    ms = Number(epoch[1]) * 1000 + Number((epoch[2] ?? '').slice(0, 3).padEnd(3, '0'));
  } else if (ISO_RE.test(text)) {
    ms = Date.parse(text.replace(',', '.'));
  } else {
    ms = Number.NaN;
  }
  if (!Number.isFinite(ms) || Math.abs(ms) > 8.64e15) {
    throw new SyncError('InvalidEntry', `the ${what} "${text}" is not a time: give ISO 8601 with a time zone (2026-01-01T12:00:00.000Z) or @SECONDS since 1970 (as $EPOCHREALTIME)`);
  }
  return new Date(ms).toISOString();
}

/** Builds the sync entry of one command; InvalidEntry for a field that makes no sense. */
export function historyEntry(input: HistoryInput): HistoryEntry {
  if (typeof input.command !== 'string' || input.command.length === 0) throw new SyncError('InvalidEntry', 'a history entry needs the command line');
  if (typeof input.cwd !== 'string' || input.cwd.length === 0) throw new SyncError('InvalidEntry', 'a history entry needs the directory the command ran in');
  const exitCode = typeof input.exitCode === 'number' ? input.exitCode : /^\d{1,3}$/.test(input.exitCode) ? Number(input.exitCode) : Number.NaN;
  if (!Number.isInteger(exitCode) || exitCode < 0 || exitCode > 255) throw new SyncError('InvalidEntry', `the exit code "${input.exitCode}" is not a number from 0 to 255`);
  return {
    id: input.id ?? randomBytes(16).toString('hex'),
    command: input.command,
    cwd: input.cwd,
    exitCode,
    startTime: parseHistoryTime(input.start, 'start time'),
    endTime: parseHistoryTime(input.end, 'end time'),
    host: input.host ?? hostname(),
    shell: input.shell ?? 'unknown',
  };
}

/** Stores the command on this device and sends it at once (push with flush). */
export async function recordHistory(client: SyncClient, input: HistoryInput): Promise<HistoryEntry> {
  const entry = historyEntry(input);
  await client.push([entry], { flush: true });
  return entry;
}

export interface HistoryQuery {
  /** Found anywhere in the command line, case-insensitively; `%`, `_` and `*` are plain characters. */
  text: string;
  /** At most this many, newest first. Default 50. */
  limit?: number;
  /** Only commands started in exactly this directory. */
  cwd?: string;
  /** Only commands of this host. */
  host?: string;
}

export const DEFAULT_SEARCH_LIMIT = 50;

/**
 * Commands recorded on any device that this one has pulled (no request is made here: pull
 * first), newest start time first.
 */
export function searchHistory(stateDir: string, query: HistoryQuery): HistoryEntry[] {
  const limit = query.limit ?? DEFAULT_SEARCH_LIMIT;
  if (!Number.isInteger(limit) || limit < 1) throw new SyncError('InvalidEntry', `the limit ${limit} is not a positive whole number`);
  const state = SyncState.open(stateDir);
  try {
    const equals: Record<string, string> = {};
    if (query.cwd !== undefined) equals.cwd = query.cwd;
    if (query.host !== undefined) equals.host = query.host;
    return state.searchEntries({ field: 'command', text: query.text, equals, orderBy: 'startTime', limit }) as HistoryEntry[];
  } finally {
    state.close();
  }
}

/** Whether `stateDir` holds a sync device (init or join ran there): without one nothing is recorded. */
export function syncDeviceExists(stateDir: string): boolean {
  try {
    SyncState.open(stateDir).close();
    return true;
  } catch {
    return false;
  }
}

/** The rc file a shell reads at interactive start: ~/.bashrc, or ~/.zshrc (in $ZDOTDIR if set). */
export function defaultRcFile(shell: HistoryShell, env: NodeJS.ProcessEnv = process.env): string {
  const home = env.HOME || homedir();
  return shell === 'bash' ? path.join(home, '.bashrc') : path.join(env.ZDOTDIR || home, '.zshrc');
}

/** The whole block for the rc file, markers included. */
export function hookBlock(shell: HistoryShell, opts: HookOptions): string {
  return `${HISTORY_BEGIN}\n${hookScript(shell, opts)}${HISTORY_END}\n`;
}

interface BlockSpan {
  /** Where the block starts, including a newline install added before it. */
  start: number;
  end: number;
  newlineAdded: boolean;
}

/** Every hook block in the text; InvalidEntry for a begin marker without its end. */
function findBlocks(text: string, file: string): BlockSpan[] {
  const spans: BlockSpan[] = [];
  let from = 0;
  for (;;) {
    const begin = lineStartingAt(text, HISTORY_BEGIN, from);
    if (begin < 0) return spans;
    const endMarker = lineStartingAt(text, HISTORY_END, begin);
    if (endMarker < 0) throw new SyncError('InvalidEntry', `${file} has "${HISTORY_BEGIN}" without "${HISTORY_END}" after it: fix the file by hand first`);
    const eol = text.indexOf('\n', endMarker);
    const end = eol < 0 ? text.length : eol + 1;
    const beginLine = text.slice(begin, text.indexOf('\n', begin));
    const newlineAdded = beginLine.endsWith(NEWLINE_ADDED) && begin > 0;
    spans.push({ start: newlineAdded ? begin - 1 : begin, end, newlineAdded });
    from = end;
  }
}

/** The offset of the first line at or after `from` that starts with `prefix`, or -1. */
function lineStartingAt(text: string, prefix: string, from: number): number {
  let i = from;
  while (i <= text.length) {
    if ((i === 0 || text[i - 1] === '\n') && text.startsWith(prefix, i)) return i;
    const nl = text.indexOf('\n', i);
    if (nl < 0) return -1;
    i = nl + 1;
  }
  return -1;
}

export interface InstallResult {
  rcFile: string;
  /** installed: added at the end; updated: an existing block replaced; unchanged: it was already there. */
  action: 'installed' | 'updated' | 'unchanged';
}

/**
 * Puts the hook block into the rc file (created if missing): appended at the end, or in place of
 * the block already there (so running it again leaves one block, with the current paths).
 */
export async function installHook(opts: HookOptions & { shell: HistoryShell; rcFile: string }): Promise<InstallResult> {
  const rcFile = path.resolve(opts.rcFile);
  const before = await readRc(rcFile);
  const blocks = findBlocks(before ?? '', rcFile);
  const block = hookBlock(opts.shell, opts);
  let after: string;
  if (blocks.length === 0) {
    const text = before ?? '';
    const needsNewline = text.length > 0 && !text.endsWith('\n');
    after = needsNewline ? `${text}\n${block.replace('\n', `${NEWLINE_ADDED}\n`)}` : `${text}${block}`;
  } else {
    // Keep the first block's place (and its note about an added newline); drop any others.
    const text = before ?? '';
    const first = blocks[0]!;
    const replacement = first.newlineAdded ? `\n${block.replace('\n', `${NEWLINE_ADDED}\n`)}` : block;
    after = text.slice(0, first.start) + replacement;
    let last = first.end;
    for (const b of blocks.slice(1)) {
      after += text.slice(last, b.start);
      last = b.end;
    }
    after += text.slice(last);
  }
  if (after === before) return { rcFile, action: 'unchanged' };
  await writeRc(rcFile, after, before === undefined);
  return { rcFile, action: blocks.length === 0 ? 'installed' : 'updated' };
}

/** Removes every hook block; the rest of the file is left byte for byte as it was. */
export async function uninstallHook(opts: { rcFile: string }): Promise<{ rcFile: string; removed: boolean }> {
  const rcFile = path.resolve(opts.rcFile);
  const before = await readRc(rcFile);
  if (before === undefined) return { rcFile, removed: false };
  const blocks = findBlocks(before, rcFile);
  if (blocks.length === 0) return { rcFile, removed: false };
  let after = '';
  let last = 0;
  for (const b of blocks) {
    after += before.slice(last, b.start);
    last = b.end;
  }
  after += before.slice(last);
  await writeRc(rcFile, after, false);
  return { rcFile, removed: true };
}

/** Whether the rc file holds a hook block. */
export async function hookInstalled(rcFile: string): Promise<boolean> {
  const text = await readRc(path.resolve(rcFile));
  return text !== undefined && findBlocks(text, rcFile).length > 0;
}

async function readRc(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** In place (not a rename: an rc file is often a symlink into a dotfiles repository), mode kept. */
async function writeRc(file: string, text: string, created: boolean): Promise<void> {
  const mode = created ? undefined : (await stat(file)).mode & 0o7777;
  await writeFile(file, text, created ? { mode: 0o644 } : {});
  if (mode !== undefined) await chmod(file, mode);
}
