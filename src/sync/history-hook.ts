// The bash and zsh hooks that `offsite sync history install` puts into an rc file.
//
// Each command is written by the shell itself, with builtins only, as one line appended to this
// shell's spool file in the device's state directory (history-spool.ts reads it). No process is
// started per command, so the command line never appears in any process's argv (where every
// user of the machine can read it in /proc/PID/cmdline), and a prompt costs well under a
// millisecond. A pusher (`offsite sync history flush`) is started in the background only when
// the spool has something new and no pusher is running; it waits for a quiet moment, so a burst
// of commands is one Node start and one push.
//
// The spool line: 1 TAB start TAB end TAB exit TAB shell TAB cwd TAB command TAB "end" LF, with
// "\" as "\\", LF as "\n", TAB as "\t" and CR as "\r" in cwd and command: any command line
// (quotes, newlines, Unicode) is one line, and a line is complete only once its "\tend\n" is there.
import path from 'node:path';
import { defaultSyncStateDir } from './config.js';
import { SyncError } from './errors.js';
import { DB_FILE } from './state.js';

/** The state database (state.ts): without it there is no device here, and nothing to record. */

export type HistoryShell = 'bash' | 'zsh';

export interface HookOptions {
  /** How to run offsite: absolute paths, e.g. [process.execPath, the bin script]. */
  offsite: readonly string[];
  /** The sync state directory to pass as --dir, if not the default. */
  stateDir?: string;
  /**
   * Where the device's state is, for the spool: default `stateDir`, else the default state
   * directory (as the pusher, run with the same --dir, will find it).
   */
  deviceDir?: string;
}

/** In the device's state directory: the spool files, their offsets and the pusher's pid file. */
export const HISTORY_SPOOL_DIR = 'history-spool';
/**
 * The running pusher's pid ("launch TIME" while a hook starts one, empty when none runs): the
 * hook starts a pusher only when neither holds. 0600, made by the hook and kept by the pusher.
 */
export const SPOOL_PID_FILE = 'flusher.pid';
export const SPOOL_SUFFIX = '.spool';
/** Beside each bash spool file: the file bash reads its last history line back through. */
export const SPOOL_SCRATCH_SUFFIX = '.last';
/** How each spool line ends: a line is complete once it is there. */
export const SPOOL_LINE_END = '\tend\n';

/** Milliseconds without a new command before the pusher sends (it sends at most 5 s after its start anyway). */
export const HOOK_QUIET_MS = 1000;
/** A pusher that has not said it runs this long after its launch failed to start: launch another. */
const LAUNCH_GRACE_S = 30;
/** A shell starts a new spool file after this many commands (the pusher removes old ones). */
const COMMANDS_PER_SPOOL_FILE = 1000;

/** A word for a POSIX shell: single-quoted, with ' as '\''. */
export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", "'\\''")}'`;
}

interface HookPaths {
  /** The pusher's argv, quoted. */
  flusher: string;
  spoolDir: string;
  /** The device's state database: without it there is no device, and nothing is recorded. */
  stateDb: string;
  pidFile: string;
}

function hookPaths(opts: HookOptions): HookPaths {
  for (const w of opts.offsite) if (!path.isAbsolute(w)) throw new SyncError('InvalidEntry', `the hook must run offsite by an absolute path, not "${w}"`);
  const explicit = opts.stateDir === undefined ? [] : ['--dir', path.resolve(opts.stateDir)];
  const words = [...opts.offsite, 'sync', ...explicit, 'history', 'flush', '--quiet-ms', String(HOOK_QUIET_MS)];
  const deviceDir = path.resolve(opts.deviceDir ?? opts.stateDir ?? defaultSyncStateDir());
  const spoolDir = path.join(deviceDir, HISTORY_SPOOL_DIR);
  return {
    flusher: words.map(shellQuote).join(' '),
    spoolDir: shellQuote(spoolDir),
    stateDb: shellQuote(path.join(deviceDir, DB_FILE)),
    pidFile: shellQuote(path.join(spoolDir, SPOOL_PID_FILE)),
  };
}

/**
 * The part both shells share, in the syntax both accept. `__offsite_history_ready END` makes
 * sure the spool directory is ours and this shell has its spool file (and, beside it, the 0600
 * file bash reads its history line back through); `__offsite_history_write EXIT START END
 * SHELL CWD COMMAND` appends the line and starts the pusher unless one runs.
 *
 * Why each check: the directory must be a real directory owned by this user ([[ -O ]], not a
 * link), or nothing is written; it is created 0700, and each spool file 0600 with O_EXCL (a
 * noclobber create), in a subshell under umask 077 whatever the user's umask. Both happen once
 * per shell (and per 1000 commands): the only forks besides starting the pusher.
 */
function spoolFunctions(p: HookPaths, noclobber: string): string {
  return `  __offsite_history_ready() {
    local d=${p.spoolDir} f=$__offsite_history_file n
    [[ -e ${p.stateDb} ]] || return 1
    if [[ ! -e $d ]]; then ( umask 077 && command mkdir -m 700 -- "$d" ) </dev/null >/dev/null 2>&1; fi
    [[ -d $d && ! -L $d && -O $d ]] || return 1
    if [[ -z $f || ! -f $f || -L $f || ! -f \${f%.spool}.last || -L \${f%.spool}.last ]] || (( __offsite_history_count >= ${COMMANDS_PER_SPOOL_FILE} )); then
      n=\${1//[.,@]/}
      f="$d/$$-$n-$RANDOM$RANDOM.spool"
      ( umask 077 && ${noclobber} && : > "$f" && : > "\${f%.spool}.last" && { [[ -e ${p.pidFile} ]] || : > ${p.pidFile}; } ) </dev/null >/dev/null 2>&1 || return 1
      __offsite_history_file=$f
      __offsite_history_count=0
    fi
  }
  __offsite_history_write() {
    local f=$__offsite_history_file b='\\' w=$5 c=$6 q= t= now=\${3#@}
    w=\${w//"$b"/"$b$b"}; w=\${w//$'\\n'/"\${b}n"}; w=\${w//$'\\t'/"\${b}t"}; w=\${w//$'\\r'/"\${b}r"}
    c=\${c//"$b"/"$b$b"}; c=\${c//$'\\n'/"\${b}n"}; c=\${c//$'\\t'/"\${b}t"}; c=\${c//$'\\r'/"\${b}r"}
    builtin printf '1\\t%s\\t%s\\t%s\\t%s\\t%s\\t%s\\tend\\n' "$2" "$3" "$1" "$4" "$w" "$c" >> "$f" 2>/dev/null || return 0
    __offsite_history_count=$(( __offsite_history_count + 1 ))
    # The pid file says "PID" while a pusher runs, "launch TIME" while one starts (Node takes a
    # moment before it can say so itself), nothing otherwise.
    now=\${now%%[.,]*}
    { builtin read -r q t < ${p.pidFile}; } 2>/dev/null
    if [[ $q == launch ]]; then
      (( now - t < ${LAUNCH_GRACE_S} )) && return 0
    elif [[ -n $q ]] && builtin kill -0 "$q" 2>/dev/null; then
      return 0
    fi
    builtin printf 'launch %s\\n' "$now" >| ${p.pidFile} 2>/dev/null
    __offsite_history_push
  }
`;
}

/**
 * bash (4.4 or later): the DEBUG trap notes the start time and directory of the first command
 * after a prompt; PROMPT_COMMAND, which runs before the next prompt, takes $? first, and if bash
 * saved a new history line (HISTCMD moved: no empty lines, no `HISTCONTROL=ignorespace` lines),
 * spools that line. The user's PROMPT_COMMAND and DEBUG trap keep running, and see the same $?
 * as without the hook. The saved line is read back through a 0600 file beside the spool file
 * (`$(history 1)` would fork a subshell per command).
 */
function bashHook(opts: HookOptions): string {
  const p = hookPaths(opts);
  return `# Added by "offsite sync history install --shell bash"; remove it with
# "offsite sync history uninstall --shell bash". It records each command (as saved in
# the history), its directory, exit code and times, without starting a process per
# command. Keep it last in this file. See docs/sync-history.md.
if [[ $- == *i* ]] && (( BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] >= 404 )); then
  __offsite_history_flusher=(${p.flusher})
  __offsite_history_file=
  __offsite_history_count=0
  __offsite_history_now() {
    __offsite_history_t=\${EPOCHREALTIME:-}
    [[ -n $__offsite_history_t ]] || printf -v __offsite_history_t '%(%s)T' -1
  }
  __offsite_history_push() {
    ( trap '' HUP; exec "\${__offsite_history_flusher[@]}" </dev/null >/dev/null 2>&1 & )
  }
${spoolFunctions(p, 'set -o noclobber')}  __offsite_history_debug() {
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
      __offsite_history_record "$s"
    fi
    __offsite_history_start=
    return $s
  }
  __offsite_history_record() {
    local HISTTIMEFORMAT= c
    __offsite_history_ready "$__offsite_history_t" || return 0
    builtin history 1 >| "\${__offsite_history_file%.spool}.last" 2>/dev/null || return 0
    IFS= builtin read -r -d '' c < "\${__offsite_history_file%.spool}.last"
    c=\${c%$'\\n'}
    __offsite_history_write "$1" "@$__offsite_history_start" "@$__offsite_history_t" bash "$__offsite_history_cwd" "\${c#*[0-9][* ] }"
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
 * directory; precmd takes $? first and spools everything. With HIST_IGNORE_SPACE, a line
 * starting with a space is not recorded either.
 */
function zshHook(opts: HookOptions): string {
  const p = hookPaths(opts);
  return `# Added by "offsite sync history install --shell zsh"; remove it with
# "offsite sync history uninstall --shell zsh". It records each command as typed, its
# directory, exit code and times, without starting a process per command.
# See docs/sync-history.md.
if [[ -o interactive ]]; then
  typeset -ga __offsite_history_flusher
  __offsite_history_flusher=(${p.flusher})
  typeset -g __offsite_history_file=
  typeset -gi __offsite_history_count=0
  zmodload zsh/datetime 2>/dev/null
  __offsite_history_push() {
    ( trap '' HUP; exec "\${__offsite_history_flusher[@]}" ) </dev/null >/dev/null 2>&1 &!
  }
${spoolFunctions(p, 'setopt noclobber')}  __offsite_history_preexec() {
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
      __offsite_history_ready "$e" && __offsite_history_write "$s" "@$__offsite_history_start" "@$e" zsh "$__offsite_history_cwd" "$__offsite_history_line"
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

/** The hook for `shell`, without the marker lines. */
export function hookScript(shell: HistoryShell, opts: HookOptions): string {
  return shell === 'bash' ? bashHook(opts) : zshHook(opts);
}
