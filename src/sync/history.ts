// The shell-history worked example of sync: a hook in ~/.bashrc or ~/.zshrc records each command
// (the command line as the shell saved it, cwd, exit code, start and end time, host) as one sync
// entry, pushed at once from a detached background process, and `search` finds commands from
// every device in the local state. The CLI (src/cli/commands/sync-history.ts) only parses and
// prints; everything else is here.
//
// The hook never runs the recorder in the foreground: the prompt waits only for one fork (bash:
// two), never for Node, SQLite or the network. The command line goes to the recorder as one argv
// element after `--`, so no quoting, newline or byte of it is ever interpreted by a shell again.
import { randomBytes } from 'node:crypto';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { homedir, hostname } from 'node:os';
import path from 'node:path';
import type { SyncClient } from './client.js';
import { SyncError } from './errors.js';
import { SyncState } from './state.js';
import type { SyncEntry } from './types.js';

export const HISTORY_SHELLS = ['bash', 'zsh'] as const;
export type HistoryShell = (typeof HISTORY_SHELLS)[number];

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

/** A word for a POSIX shell: single-quoted, with ' as '\''. */
export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", "'\\''")}'`;
}

export interface HookOptions {
  /** How to run offsite: absolute paths, e.g. [process.execPath, the bin script]. */
  offsite: readonly string[];
  /** The sync state directory to pass as --dir, if not the default. */
  stateDir?: string;
}

/** The recorder's argv prefix: the hook appends --start … -- COMMAND. */
function recorderWords(opts: HookOptions): string {
  for (const w of opts.offsite) if (!path.isAbsolute(w)) throw new SyncError('InvalidEntry', `the hook must run offsite by an absolute path, not "${w}"`);
  const words = [...opts.offsite, 'sync', ...(opts.stateDir === undefined ? [] : ['--dir', path.resolve(opts.stateDir)]), 'history', 'record'];
  return words.map(shellQuote).join(' ');
}

/**
 * bash (4.4 or later): the DEBUG trap notes the start time and directory of the first command
 * after a prompt; PROMPT_COMMAND, which runs before the next prompt, takes $? first, and if bash
 * saved a new history line (HISTCMD moved: no empty lines, no `HISTCONTROL=ignorespace` lines),
 * hands that line to the recorder in a detached background process. The user's PROMPT_COMMAND
 * and DEBUG trap keep running, and see the same $? as without the hook.
 */
function bashHook(opts: HookOptions): string {
  return `# Added by "offsite sync history install --shell bash"; remove it with
# "offsite sync history uninstall --shell bash". It records each command (as saved in
# the history), its directory, exit code and times, in the background. Keep it last in
# this file. See docs/sync-history.md.
if [[ $- == *i* ]] && (( BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] >= 404 )); then
  __offsite_history_recorder=(${recorderWords(opts)})
  __offsite_history_now() {
    __offsite_history_t=\${EPOCHREALTIME:-}
    [[ -n $__offsite_history_t ]] || printf -v __offsite_history_t '%(%s)T' -1
  }
  __offsite_history_debug() {
    local s=$?
    if [[ -n \${__offsite_history_armed:-} && -z \${COMP_LINE:-} && -z \${READLINE_LINE:-} && \${BASH_COMMAND:-} != __offsite_history_* ]]; then
      __offsite_history_armed=
      __offsite_history_now
      __offsite_history_start=$__offsite_history_t
      __offsite_history_cwd=$PWD
    fi
    return $s
  }
  __offsite_history_precmd() {
    local s=$?
    __offsite_history_now
    if [[ -n \${__offsite_history_start:-} && \${HISTCMD:-} != "\${__offsite_history_histcmd:-}" ]]; then
      (
        trap '' HUP
        {
          unset HISTTIMEFORMAT
          c=$(builtin history 1)
          exec "\${__offsite_history_recorder[@]}" --start "@$__offsite_history_start" --end "@$__offsite_history_t" --exit "$s" --cwd "$__offsite_history_cwd" --shell bash -- "\${c#*[0-9][* ] }"
        } </dev/null >/dev/null 2>&1 &
      )
    fi
    __offsite_history_start=
    return $s
  }
  __offsite_history_arm() {
    local s=$?
    __offsite_history_histcmd=\${HISTCMD:-}
    __offsite_history_armed=1
    return $s
  }
  if [[ "\${PROMPT_COMMAND[*]:-}" != *__offsite_history_precmd* ]]; then
    if [[ "$(declare -p PROMPT_COMMAND 2>/dev/null)" == "declare -a"* ]]; then
      PROMPT_COMMAND=(__offsite_history_precmd "\${PROMPT_COMMAND[@]}" __offsite_history_arm)
    else
      __offsite_history_nl=$'\\n'
      PROMPT_COMMAND="__offsite_history_precmd\${__offsite_history_nl}\${PROMPT_COMMAND:+\${PROMPT_COMMAND}\${__offsite_history_nl}}__offsite_history_arm"
      unset __offsite_history_nl
    fi
  fi
  __offsite_history_trap=$(trap -p DEBUG)
  if [[ $__offsite_history_trap != *__offsite_history_debug* ]]; then
    __offsite_history_trap=\${__offsite_history_trap#"trap -- '"}
    __offsite_history_trap=\${__offsite_history_trap%"' DEBUG"}
    __offsite_history_trap=\${__offsite_history_trap//"'\\''"/"'"}
    trap -- "__offsite_history_debug"$'\\n'"\${__offsite_history_trap:-:}" DEBUG
  fi
  unset __offsite_history_trap
fi
`;
}

/**
 * zsh: preexec gets the command line as typed ($1) and notes it with the start time and
 * directory; precmd takes $? first and hands everything to the recorder, disowned (&!). With
 * HIST_IGNORE_SPACE, a line starting with a space is not recorded either.
 */
function zshHook(opts: HookOptions): string {
  return `# Added by "offsite sync history install --shell zsh"; remove it with
# "offsite sync history uninstall --shell zsh". It records each command as typed, its
# directory, exit code and times, in the background. See docs/sync-history.md.
if [[ -o interactive ]]; then
  typeset -ga __offsite_history_recorder
  __offsite_history_recorder=(${recorderWords(opts)})
  zmodload zsh/datetime 2>/dev/null
  __offsite_history_preexec() {
    local ignore_space=0
    [[ -o hist_ignore_space ]] && ignore_space=1
    emulate -L zsh
    typeset -g __offsite_history_line=\${1:-$3} __offsite_history_start=$EPOCHREALTIME __offsite_history_cwd=$PWD
    if (( ignore_space )) && [[ $__offsite_history_line == ' '* ]]; then __offsite_history_start=; fi
  }
  __offsite_history_precmd() {
    local -i s=$?
    emulate -L zsh
    local e=$EPOCHREALTIME
    if [[ -n $__offsite_history_start && -n $__offsite_history_line ]]; then
      ( trap '' HUP; exec "\${__offsite_history_recorder[@]}" --start "@$__offsite_history_start" --end "@$e" --exit "$s" --cwd "$__offsite_history_cwd" --shell zsh -- "$__offsite_history_line" ) </dev/null >/dev/null 2>&1 &!
    fi
    typeset -g __offsite_history_start=
    return $s
  }
  autoload -Uz add-zsh-hook
  add-zsh-hook preexec __offsite_history_preexec
  add-zsh-hook precmd __offsite_history_precmd
fi
`;
}

/** The whole block for the rc file, markers included. */
export function hookBlock(shell: HistoryShell, opts: HookOptions): string {
  const body = shell === 'bash' ? bashHook(opts) : zshHook(opts);
  return `${HISTORY_BEGIN}\n${body}${HISTORY_END}\n`;
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
