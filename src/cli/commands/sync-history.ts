// offsite sync history install | uninstall | search (and the hook's internal `record`): the
// shell-history worked example of sync. A shell over src/sync/history.ts: parses, calls the
// library, prints. The library is loaded when one of these runs.
import { Option, type Command } from 'commander';
import path from 'node:path';
import type { HistoryEntry, HistoryShell } from '../../sync/index.js';
import { EXIT } from '../exit-codes.js';
import { note, printJson, printJsonLine, printLine, UsageError } from '../output.js';
import { clientOptions, requestsText, SYNC_DIR_ENV, withClient, type SyncCliOptions } from './sync.js';

const syncLib = () => import('../../sync/index.js');

function shellOf(o: { shell?: string }): HistoryShell {
  const shell = o.shell ?? path.basename(process.env.SHELL ?? '');
  if (shell === 'bash' || shell === 'zsh') return shell;
  throw new UsageError('which shell? give --shell bash or --shell zsh');
}

/** How the hook runs this very offsite: node and the bin script, by absolute path. */
function offsiteCommand(): string[] {
  const script = process.argv[1];
  if (!script) throw new UsageError('cannot tell where the offsite command is installed');
  return [process.execPath, path.resolve(script)];
}

function nonNegativeInt(value: string): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`"${value}" is not a whole number of milliseconds`);
  return Number(value);
}

function positiveInt(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new UsageError(`--limit "${value}" is not a positive whole number`);
  return Number(value);
}

export function registerSyncHistoryCommands(group: Command): void {
  const history = group
    .command('history')
    .description('shell history on every device: a bash or zsh hook records each command, search finds them');
  history.addHelpText(
    'after',
    `
Examples:
  offsite sync history install --shell bash && source ~/.bashrc
  offsite sync history install --shell zsh && source ~/.zshrc
  offsite sync history search 'docker run'              (newest first, from every device)
  offsite sync history search make --host desk --limit 10
  offsite sync history search 100% --json | jq -r .command
  offsite sync history uninstall --shell bash

Each command is recorded with its directory, exit code, start and end time and host, sealed
end-to-end like every sync entry (the bucket sees ciphertext only). See docs/sync-history.md.`,
  );

  history
    .command('install')
    .description('add the recording hook to ~/.bashrc or ~/.zshrc (again: replaces it, one block stays)')
    .addOption(new Option('--shell <shell>', 'the shell (default: from $SHELL)').choices(['bash', 'zsh']))
    .option('--rc <file>', 'the rc file to change (default: ~/.bashrc, or ~/.zshrc in $ZDOTDIR or ~)')
    .addHelpText(
      'after',
      `
After each command the hook appends it, in the shell itself (no process started, so the
command never shows in another process's argv), to a 0600 spool file in the sync state
directory, and starts "offsite sync history flush" in the background only when none is
running: this offsite (${offsiteCommandText()}), by its absolute path, with --dir when one
was given here (or $${SYNC_DIR_ENV} was set). Commands the shell does not save in its history
(a leading space with HISTCONTROL=ignorespace, HIST_IGNORE_SPACE in zsh) are not recorded.`,
    )
    .action(async (o: { shell?: string; rc?: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<SyncCliOptions>();
      const shell = shellOf(o);
      const { installHook, defaultRcFile, syncDeviceExists } = await syncLib();
      const explicitDir = g.dir ?? process.env[SYNC_DIR_ENV];
      const stateDir = (await clientOptions(g)).stateDir;
      const r = await installHook({ shell, rcFile: o.rc ?? defaultRcFile(shell), offsite: offsiteCommand(), deviceDir: stateDir, ...(explicitDir ? { stateDir: explicitDir } : {}) });
      const joined = syncDeviceExists(stateDir);
      if (g.json) {
        printJson({ ...r, shell, stateDir, joined });
        return;
      }
      const did = { installed: 'added the hook to', updated: 'updated the hook in', unchanged: 'the hook is already in' }[r.action];
      printLine(`${did} ${r.rcFile}`);
      printLine(`activate it in open shells with:  source ${r.rcFile}   (new shells have it)`);
      if (!joined) note(`note: no sync device in ${stateDir} yet: run "offsite sync init" or "offsite sync join"; until then nothing is recorded`);
    });

  history
    .command('uninstall')
    .description('remove the hook block from the rc file (the rest of the file is left as it was)')
    .addOption(new Option('--shell <shell>', 'the shell (default: from $SHELL)').choices(['bash', 'zsh']))
    .option('--rc <file>', 'the rc file (default: ~/.bashrc, or ~/.zshrc)')
    .action(async (o: { shell?: string; rc?: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<SyncCliOptions>();
      const shell = shellOf(o);
      const { uninstallHook, defaultRcFile } = await syncLib();
      const r = await uninstallHook({ rcFile: o.rc ?? defaultRcFile(shell) });
      if (g.json) printJson(r);
      else if (r.removed) printLine(`removed the hook from ${r.rcFile}; open shells keep recording until they exit (or run: exec ${shell})`);
      else printLine(`no hook in ${r.rcFile}: nothing to remove`);
    });

  history
    .command('record', { hidden: true })
    .description('(internal: run by hooks installed before the spool) record one command and push it')
    .requiredOption('--start <time>', 'start time: ISO 8601, or @SECONDS[.FRACTION]')
    .requiredOption('--end <time>', 'end time, as --start')
    .requiredOption('--exit <code>', 'exit code')
    .requiredOption('--cwd <dir>', 'the directory the command started in')
    .option('--host <host>', 'host name (default: this machine\'s)')
    .option('--shell <shell>', 'the shell that ran it')
    .argument('<command>', 'the command line (after --, as one argument)')
    .action(async (command: string, o: { start: string; end: string; exit: string; cwd: string; host?: string; shell?: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<SyncCliOptions>();
      // A terminal closing right after the command must not take the recording with it.
      process.on('SIGHUP', () => undefined);
      const { recordHistory } = await syncLib();
      const entry = await withClient(g, (c) =>
        recordHistory(c, { command, cwd: o.cwd, exitCode: o.exit, start: o.start, end: o.end, ...(o.host ? { host: o.host } : {}), ...(o.shell ? { shell: o.shell } : {}) }),
      );
      if (g.json) printJson(entry);
      else note(`recorded ${entry.id}`);
    });

  history
    .command('flush')
    .description('send the commands the hook spooled (the hook starts this in the background)')
    .option('--quiet-ms <ms>', 'first wait until no command was spooled for this long', nonNegativeInt, 0)
    .option('--max-wait-ms <ms>', 'but wait at most this long', nonNegativeInt, 5000)
    .addHelpText(
      'after',
      `
The hook appends each command to a 0600 spool file in the sync state directory, in the shell
itself, and starts this command only when the spool has something new and no flush is running;
with --quiet-ms it waits for a pause, so a burst of commands is one push. Run it by hand to send
what is spooled at once. Exit code 0 also when another flush is running (it sends everything).`,
    )
    .action(async (o: { quietMs: number; maxWaitMs: number }, cmd: Command) => {
      const g = cmd.optsWithGlobals<SyncCliOptions>();
      // A terminal closing right after a command must not take the push with it; and what it
      // creates beside the spool (lock, offsets) is private under the shell's umask 000 too.
      process.on('SIGHUP', () => undefined);
      process.umask(0o077);
      const { flushHistorySpool, SyncClient } = await syncLib();
      const options = await clientOptions(g);
      const r = await flushHistorySpool(options.stateDir, { open: () => SyncClient.open(options), quietMs: o.quietMs, maxWaitMs: o.maxWaitMs });
      if (g.json) printJson(r);
      else if (!r.ran) note('another flush is running: it sends what is spooled');
      else note(`${r.entries} command(s) in ${r.pushes} push(es)${r.skipped ? `, ${r.skipped} unreadable line(s) skipped` : ''}${r.sendError ? `; not sent yet (${r.sendError}): they go out with the next push` : ''}`);
    });

  history
    .command('search')
    .description('find commands from every device: pulls first, then prints matches newest first')
    .argument('<text>', 'text found anywhere in the command line (case-insensitive; % _ * are plain characters)')
    .option('--limit <n>', 'at most this many', positiveInt, 50)
    .option('--cwd <dir>', 'only commands started in this directory')
    .option('--host <host>', 'only commands of this host')
    .option('--no-pull', 'search what this device has, without a request')
    .addHelpText(
      'after',
      `
Prints one command per block: start time, host, directory, exit code, then the command line.
--json prints one JSON entry per line instead. Exit code 1 when nothing matches (as grep).

Examples:
  offsite sync history search ssh
  offsite sync history search 'git push' --cwd ~/src/app --limit 5
  offsite sync history search make --no-pull --json`,
    )
    .action(async (text: string, o: { limit: number; cwd?: string; host?: string; pull: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<SyncCliOptions>();
      const { searchHistory } = await syncLib();
      const found = await withClient(g, async (c) => {
        if (o.pull) {
          const r = await c.pull();
          if (g.debug) note(`pulled ${r.entries.length} new; ${requestsText(r.requests)}`);
          for (const p of r.problems) note(`${p.code}: ${p.message}`);
        }
        return searchHistory(c.stateDir, { text, limit: o.limit, ...(o.cwd ? { cwd: path.resolve(o.cwd) } : {}), ...(o.host ? { host: o.host } : {}) });
      });
      if (found.length === 0) {
        note(`no command matches "${text}"`);
        process.exitCode = EXIT.failure;
        return;
      }
      if (g.json) for (const e of found) printJsonLine(e);
      else for (const e of found) printLine(formatEntry(e));
    });
}

function offsiteCommandText(): string {
  return process.argv[1] ? path.resolve(process.argv[1]) : 'this offsite';
}

/** "2026-01-01 12:00:00  host  ~/src  exit 0" then the command, indented (newlines kept). */
function formatEntry(e: HistoryEntry): string {
  const when = typeof e.startTime === 'string' ? e.startTime.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '?';
  const status = e.exitCode === 0 ? 'ok' : `exit ${String(e.exitCode)}`;
  return `${when}  ${e.host}  ${e.cwd}  ${status}\n    ${e.command.replaceAll('\n', '\n    ')}`;
}
