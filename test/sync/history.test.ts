// The shell-history worked example, end to end with real shells: `offsite sync history install`
// puts the hook into a temp rc file, an interactive bash (and zsh) reads commands from stdin
// (which runs PROMPT_COMMAND, the DEBUG trap, preexec and precmd as at a terminal), the hook's
// spool and its background pusher send each command, and a second device finds them with
// `offsite sync history search`. Plus the rc-file handling and the library's search.
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { historyEntry, hookBlock, installHook, parseHistoryTime, searchHistory, SyncClient, uninstallHook, type HistoryEntry, type HistoryShell, type SyncError } from '../../src/sync/index.js';
import { OFFSITE_BIN, runCli } from '../support/cli.js';
import { historyEntries, initDevice, joinDevice, localTarget, rgwTarget, scratchDir, stateDir, type SyncTarget } from './helpers.js';
import { runShell, waitForRecorded, ZSH_PROMPT_NOISE } from './history-shell.js';

const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const QUOTED = `echo "it's \\"quoted\\" — ünïcödé ✓ 100% a_b"`;
const MULTILINE = `printf '%s\\n' "two\nlines"`;
/** A tab, a carriage return, backslashes and a backslash-n that is text: what the spool escapes. */
const ESCAPES = "printf '%s|\\n' 'tab:\there' 'back\\\\slash' 'not\\na newline' 'cr:\rhere'";

/** What the test shells run, and what each recorded entry must be (in order of start time). */
function scenario(work: string, shell: HistoryShell): { script: string; expected: { command: string; cwd: string; exitCode: number }[]; stdout: string } {
  const other = path.join(work, 'other dir');
  const script = [
    'echo first',
    "sh -c 'exit 3'",
    '',
    'cd "other dir"',
    'echo in-other',
    'cd ..',
    QUOTED,
    ' echo leading-space-not-recorded',
    'sleep 0.3',
    MULTILINE,
    // bash reads a script on stdin through readline too: Ctrl-V makes a tab or CR literal.
    shell === 'bash' ? ESCAPES.replace(/[\t\r]/g, (c) => `\x16${c}`) : ESCAPES,
    '',
  ].join('\n');
  return {
    script,
    expected: [
      { command: 'echo first', cwd: work, exitCode: 0 },
      { command: "sh -c 'exit 3'", cwd: work, exitCode: 3 },
      { command: 'cd "other dir"', cwd: work, exitCode: 0 },
      { command: 'echo in-other', cwd: other, exitCode: 0 },
      { command: 'cd ..', cwd: other, exitCode: 0 },
      { command: QUOTED, cwd: work, exitCode: 0 },
      { command: 'sleep 0.3', cwd: work, exitCode: 0 },
      { command: MULTILINE, cwd: work, exitCode: 0 },
      { command: ESCAPES, cwd: work, exitCode: 0 },
    ],
    // (the check strips carriage returns from the output)
    stdout: `first\nin-other\nit's "quoted" — ünïcödé ✓ 100% a_b\nleading-space-not-recorded\ntwo\nlines\ntab:\there|\nback\\\\slash|\nnot\\na newline|\ncr:here|\n`,
  };
}

/** The user's own rc content: a prompt command and (bash) a DEBUG trap that must keep working. */
function userRc(shell: HistoryShell, log: string): string {
  return shell === 'bash'
    ? `# my bashrc\nPS1='$ '\nPROMPT_COMMAND='echo "pc $?" >> ${log}'\ntrap 'echo "dbg $?" >> ${log}.dbg' DEBUG\n`
    : `# my zshrc\nPS1='$ '\nsetopt hist_ignore_space\nmy_precmd() { echo "pc $?" >> ${log} }\nprecmd_functions+=(my_precmd)\n`;
}

/** Installs the hook with the CLI, runs the scenario in a real shell, checks every recorded field. */
async function recordInShell(shell: HistoryShell, target: SyncTarget, label: string): Promise<{ url: string; secret: string; dirA: string; entries: HistoryEntry[]; work: string; laptop: SyncClient }> {
  const url = await target.newBucket(label);
  const { client: desk, secret } = await initDevice(url);
  const dirA = desk.stateDir;
  await desk.close();
  // The laptop joins before anything is recorded: what it finds later, it had to pull.
  const laptop = await joinDevice(url, secret);

  const home = await scratchDir(`${shell}-home-`);
  const rcDir = path.join(home, 'rc');
  await mkdir(rcDir);
  const rcFile = path.join(rcDir, shell === 'bash' ? '.bashrc' : '.zshrc');
  const log = path.join(home, 'prompt.log');
  await writeFile(rcFile, userRc(shell, log));
  const install = await runCli(['sync', '--dir', dirA, 'history', 'install', '--shell', shell, '--rc', rcFile], { env: { HOME: home } });
  assert.equal(install.code, 0, install.stderr);
  assert.match(install.stdout, new RegExp(`added the hook to ${rcFile}`), install.stdout);
  assert.match(install.stdout, new RegExp(`source ${rcFile}`), install.stdout);
  assert.equal(install.stderr, '', 'no warning: the device exists');
  const rc = await readFile(rcFile, 'utf8');
  assert.ok(rc.includes(`'${process.execPath}' '${OFFSITE_BIN}' 'sync' '--dir' '${dirA}' 'history' 'flush'`), `the hook starts this offsite's pusher by absolute path with --dir:\n${rc}`);
  assert.ok(rc.includes(`'${path.join(dirA, 'history-spool')}'`), `the hook spools into the device's state directory:\n${rc}`);

  const work = path.join(home, 'work');
  await mkdir(path.join(work, 'other dir'), { recursive: true });
  const { script, expected, stdout } = scenario(work, shell);
  const run = await runShell(shell, rcFile, home, work, script, target.childEnv());
  const t0 = Date.now();
  assert.equal(run.code, 0, run.stderr);
  // The hook prints nothing: only the commands' own output reaches the terminal.
  assert.equal(run.stdout.replaceAll('$ ', '').replace(/\r/g, ''), stdout, 'stdout holds the commands\' output only');
  // stderr: the prompts with the echoed input, and bash's note that stdin is no terminal; nothing else.
  const noise = run.stderr.split('\n').filter((l) => !/^(\$( |$)|> |bash: cannot set terminal process group|bash: no job control in this shell|$)/.test(l.replace(ZSH_PROMPT_NOISE, '')));
  assert.deepEqual(noise, [], `no job notice or recorder output on stderr: ${JSON.stringify(run.stderr)}`);

  const entries = (await waitForRecorded(dirA, expected.length)).sort((a, b) => a.startTime.localeCompare(b.startTime));
  process.stderr.write(`# ${shell} on ${target.name}: the shell ran ${run.ended - run.started} ms; its ${expected.length} commands were sent ${Date.now() - t0} ms later\n`);
  assert.deepEqual(
    entries.map((e) => ({ command: e.command, cwd: e.cwd, exitCode: e.exitCode })),
    expected,
    'every command recorded once, as typed, with its directory and exit code; the leading-space one and empty lines not',
  );
  let previousEnd = run.started;
  for (const e of entries) {
    assert.deepEqual(Object.keys(e).sort(), ['command', 'cwd', 'endTime', 'exitCode', 'host', 'id', 'shell', 'startTime'], `fields of ${e.command}`);
    assert.match(e.id, /^[0-9a-f]{32}$/, 'a random 16-byte hex id');
    assert.equal(e.host, hostname(), 'the host name');
    assert.equal(e.shell, shell, 'the shell');
    assert.match(e.startTime, ISO_MS, 'ISO 8601 with milliseconds');
    assert.match(e.endTime, ISO_MS, 'ISO 8601 with milliseconds');
    const start = Date.parse(e.startTime);
    const end = Date.parse(e.endTime);
    // EPOCHREALTIME is cut to milliseconds: allow 1 ms against Date.now().
    assert.ok(start >= previousEnd - 1, `${e.command} started (${e.startTime}) after the one before ended (${new Date(previousEnd).toISOString()})`);
    assert.ok(end >= start, `${e.command} ended (${e.endTime}) after it started (${e.startTime})`);
    previousEnd = end;
  }
  assert.ok(previousEnd <= run.ended + 1, 'the last command ended before the shell exited');
  const sleep = entries.find((e) => e.command === 'sleep 0.3')!;
  const took = Date.parse(sleep.endTime) - Date.parse(sleep.startTime);
  assert.ok(took >= 300 && took < 5000, `sleep 0.3 took ${took} ms between its start and end time`);
  assert.equal(new Set(entries.map((e) => e.id)).size, entries.length, 'unique ids');

  // The user's prompt command still runs after every command and sees the same $?.
  const prompts = (await readFile(log, 'utf8')).trim().split('\n');
  // Prompts: the first, then after each of the 11 lines (the empty one keeps the 3 of the line before).
  const codes = ['pc 0', 'pc 0', 'pc 3', 'pc 3', 'pc 0', 'pc 0', 'pc 0', 'pc 0', 'pc 0', 'pc 0', 'pc 0', 'pc 0'];
  assert.deepEqual(prompts, codes, "the user's own prompt command ran at each prompt with the command's exit status");
  if (shell === 'bash') {
    const traps = (await readFile(`${log}.dbg`, 'utf8')).trim().split('\n');
    assert.ok(traps.length >= expected.length, `the user's DEBUG trap still runs (${traps.length} times)`);
    assert.ok(traps.includes('dbg 3'), "the user's DEBUG trap sees $? too");
  }
  return { url, secret, dirA, entries, work, laptop };
}

async function searchesFromAnotherDevice(laptop: SyncClient, entries: HistoryEntry[], work: string, env: Record<string, string> = {}): Promise<void> {
  const dirB = laptop.stateDir;
  await laptop.close();
  const cli = (args: string[]) => runCli(['sync', '--dir', dirB, 'history', 'search', ...args], { env });

  const before = await cli(['ünïcödé', '--no-pull']);
  assert.equal(before.code, 1, `--no-pull makes no request, and the laptop has not pulled yet: ${before.stdout}`);
  assert.match(before.stderr, /no command matches "ünïcödé"/);
  assert.equal(before.stdout, '', 'nothing on stdout without a match');

  const quoted = entries.find((e) => e.command === QUOTED)!;
  const text = await cli(['ÜNÏCÖDÉ']);
  assert.equal(text.code, 0, text.stderr);
  const when = quoted.startTime.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  assert.equal(text.stdout, `${when}  ${hostname()}  ${work}  ok\n    ${QUOTED}\n`, 'time, host, cwd, exit status and the command, case-insensitively found after a pull');

  const all = await cli(['', '--json', '--no-pull']);
  assert.equal(all.code, 0, all.stderr);
  const lines = all.stdout.trim().split('\n').map((l) => JSON.parse(l) as HistoryEntry);
  const byId = (a: HistoryEntry, b: HistoryEntry) => a.id.localeCompare(b.id);
  assert.deepEqual([...lines].sort(byId), [...entries].sort(byId), 'every command with every field');
  // (commands started in the same millisecond come newest-arrived first)
  assert.ok(lines.every((l, i) => i === 0 || lines[i - 1]!.startTime >= l.startTime), 'newest first');

  const percent = await cli(['%', '--json', '--no-pull']);
  assert.equal(percent.code, 0, percent.stderr);
  assert.deepEqual(
    percent.stdout.trim().split('\n').map((l) => (JSON.parse(l) as HistoryEntry).command),
    [ESCAPES, MULTILINE, QUOTED],
    '% is a plain character, not a LIKE wildcard',
  );
  const underscore = await cli(['a_b', '--json', '--no-pull']);
  assert.deepEqual(underscore.stdout.trim().split('\n').map((l) => (JSON.parse(l) as HistoryEntry).command), [QUOTED], '_ is a plain character');

  const failed = await cli(['exit', '--json', '--no-pull', '--cwd', work, '--limit', '1']);
  assert.equal(failed.code, 0, failed.stderr);
  assert.deepEqual(JSON.parse(failed.stdout) as HistoryEntry, entries.find((e) => e.exitCode === 3), 'the failed command, exit 3, found by --cwd');
  const inOther = await cli(['echo', '--json', '--no-pull', '--cwd', path.join(work, 'other dir')]);
  assert.deepEqual(inOther.stdout.trim().split('\n').map((l) => (JSON.parse(l) as HistoryEntry).command), ['echo in-other'], '--cwd keeps commands started there');
  const limited = await cli(['e', '--json', '--no-pull', '--limit', '2']);
  assert.equal(limited.stdout.trim().split('\n').length, 2, '--limit');
  const otherHost = await cli(['echo', '--no-pull', '--host', `not-${hostname()}`]);
  assert.equal(otherHost.code, 1, '--host filters');

  const none = await cli(['no-such-command-anywhere']);
  assert.equal(none.code, 1, 'no match: exit 1, like grep');
  assert.match(none.stderr, /no command matches "no-such-command-anywhere"/);
}

describe('offsite sync history with real shells, through a local directory', () => {
  for (const shell of ['bash', 'zsh'] as const) {
    it(`${shell}: the hook records every command, and another device finds them with search`, async () => {
      const { entries, work, laptop } = await recordInShell(shell, localTarget, `history-${shell}`);
      await searchesFromAnotherDevice(laptop, entries, work);
    });
  }
});

describe('offsite sync history through Ceph RGW', () => {
  it('bash records into the bucket; a device that joins afterwards finds the commands', async () => {
    const { url, secret, entries, work, laptop } = await recordInShell('bash', rgwTarget, 'history-rgw');
    await searchesFromAnotherDevice(laptop, entries, work, rgwTarget.childEnv());
    // A third device, joined after everything, starts from the log and finds the same.
    const phone = await joinDevice(url, secret);
    const found = searchHistory(phone.stateDir, { text: 'OTHER' });
    await phone.close();
    assert.deepEqual(found.map((e) => e.command), ['echo in-other', 'cd "other dir"'], 'found on a device that joined later');
    // The bucket holds only ciphertext: no command text in any object.
    for (const o of await rgwTarget.allObjects(url)) {
      assert.ok(!o.body.includes('in-other') && !o.body.includes('ünïcödé'), `${o.name} holds no command text`);
    }
  });
});

describe('the rc file', () => {
  it('install twice leaves one block; uninstall restores the file byte for byte (CLI)', async () => {
    const home = await scratchDir('rc-');
    const rcFile = path.join(home, '.bashrc');
    const original = '# mine\nalias ll="ls -l"\n\nexport EDITOR=vi\n';
    await writeFile(rcFile, original);
    const env = { HOME: home, SHELL: '/bin/bash' };
    const first = await runCli(['sync', 'history', 'install'], { env });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /no sync device in .* yet/, 'warns that nothing is recorded before init or join');
    const once = await readFile(rcFile, 'utf8');
    assert.ok(once.startsWith(original), 'the block is appended after the user\'s lines');
    assert.ok(!once.includes("'--dir'"), 'no --dir when none was given');
    const second = await runCli(['sync', 'history', 'install', '--shell', 'bash'], { env });
    assert.match(second.stdout, /already in/, second.stdout);
    assert.equal(await readFile(rcFile, 'utf8'), once, 'installing again changes nothing');
    const moved = await runCli(['sync', '--dir', path.join(home, 'state'), 'history', 'install', '--shell', 'bash'], { env });
    assert.match(moved.stdout, /updated the hook in/, moved.stdout);
    const updated = await readFile(rcFile, 'utf8');
    assert.equal(updated.split('# >>> offsite sync history >>>').length, 2, 'one block');
    assert.ok(updated.includes(`'--dir' '${path.join(home, 'state')}'`), 'the block now passes --dir');
    const un = await runCli(['sync', 'history', 'uninstall', '--shell', 'bash'], { env });
    assert.equal(un.code, 0, un.stderr);
    assert.match(un.stdout, /removed the hook/);
    assert.equal(await readFile(rcFile, 'utf8'), original, 'byte-identical after uninstall');
    const again = await runCli(['sync', 'history', 'uninstall', '--shell', 'bash'], { env });
    assert.match(again.stdout, /no hook/, again.stdout);
    const noShell = await runCli(['sync', 'history', 'install'], { env: { HOME: home, SHELL: '/bin/fish' } });
    assert.equal(noShell.code, 2, 'a shell other than bash or zsh is a usage error');
  });

  it('keeps a file without a final newline, a block in the middle, and the zsh rc in ZDOTDIR', async () => {
    const home = await scratchDir('rc-');
    const rcFile = path.join(home, '.zshrc');
    const opts = { offsite: ['/usr/bin/node', '/opt/offsite/bin/offsite'] };
    await writeFile(rcFile, 'setopt autocd');
    assert.equal((await installHook({ ...opts, shell: 'zsh', rcFile })).action, 'installed', 'installed');
    assert.equal((await installHook({ ...opts, shell: 'zsh', rcFile })).action, 'unchanged', 'unchanged');
    await uninstallHook({ rcFile });
    assert.equal(await readFile(rcFile, 'utf8'), 'setopt autocd', 'no newline left behind');

    const middle = `a=1\n${hookBlock('bash', { offsite: ['/old/node', '/old/offsite'] })}b=2\n`;
    await writeFile(rcFile, middle + hookBlock('bash', opts));
    assert.equal((await installHook({ ...opts, shell: 'zsh', rcFile })).action, 'updated', 'updated');
    const text = await readFile(rcFile, 'utf8');
    assert.equal(text, `a=1\n${hookBlock('zsh', opts)}b=2\n`, 'the first block replaced in place, the duplicate removed');
    assert.equal((await uninstallHook({ rcFile })).removed, true, 'removed');
    assert.equal(await readFile(rcFile, 'utf8'), 'a=1\nb=2\n', 'the lines around it kept');

    await writeFile(rcFile, '# >>> offsite sync history >>>\nhalf a block\n');
    await assert.rejects(installHook({ ...opts, shell: 'zsh', rcFile }), (e: SyncError) => e.code === 'InvalidEntry' && /without/.test(e.message), 'a begin marker without end is refused');

    const zdot = path.join(home, 'zdot');
    const r = await runCli(['sync', 'history', 'install', '--shell', 'zsh'], { env: { HOME: home, ZDOTDIR: zdot } });
    assert.equal(r.code, 1, 'ZDOTDIR does not exist: the write fails');
    await mkdir(zdot);
    const ok = await runCli(['--json', 'sync', 'history', 'install', '--shell', 'zsh'], { env: { HOME: home, ZDOTDIR: zdot } });
    assert.equal((JSON.parse(ok.stdout) as { rcFile: string }).rcFile, path.join(zdot, '.zshrc'), 'the zsh rc file is in $ZDOTDIR');
  });
});

describe('history entries and search (library)', () => {
  it('builds entries from the hook\'s arguments', () => {
    assert.equal(parseHistoryTime('@1767225600.123456'), '2026-01-01T00:00:00.123Z', '$EPOCHREALTIME, cut to ms');
    assert.equal(parseHistoryTime('@1767225600,5'), '2026-01-01T00:00:00.500Z', 'a locale decimal comma');
    assert.equal(parseHistoryTime('@1767225600'), '2026-01-01T00:00:00.000Z', 'whole seconds');
    assert.equal(parseHistoryTime('2026-01-01T01:00:00.25+01:00'), '2026-01-01T00:00:00.250Z', 'ISO with an offset');
    for (const bad of ['2026-01-01T00:00:00', 'yesterday', '@', '@12x', '']) {
      assert.throws(() => parseHistoryTime(bad), (e: SyncError) => e.code === 'InvalidEntry', `"${bad}" is refused`);
    }
    const e = historyEntry({ command: 'ls', cwd: '/tmp', exitCode: '127', start: '@1767225600.1', end: '@1767225600.2', shell: 'bash' });
    assert.deepEqual({ ...e, id: 'x' }, { id: 'x', command: 'ls', cwd: '/tmp', exitCode: 127, startTime: '2026-01-01T00:00:00.100Z', endTime: '2026-01-01T00:00:00.200Z', host: hostname(), shell: 'bash' }, 'the fields');
    assert.notEqual(e.id, historyEntry({ command: 'ls', cwd: '/tmp', exitCode: 0, start: '@1', end: '@1' }).id, 'random ids');
    for (const exitCode of ['256', '-1', 'x', '1.5']) {
      assert.throws(() => historyEntry({ command: 'ls', cwd: '/', exitCode, start: '@1', end: '@1' }), (x: SyncError) => x.code === 'InvalidEntry', `exit code ${exitCode} is refused`);
    }
    assert.throws(() => historyEntry({ command: '', cwd: '/', exitCode: 0, start: '@1', end: '@1' }), (x: SyncError) => x.code === 'InvalidEntry', 'an empty command is refused');
  });

  it('search: newest first, limit, Unicode case folding, wildcards literal, filters', async () => {
    const url = await localTarget.newBucket('history-search');
    const { client } = await initDevice(url);
    const seeded = historyEntries('desk', 30);
    const extra = [
      { ...historyEntry({ command: 'grep -r "ÄÖÜ" 50%_done', cwd: '/srv', exitCode: 2, start: '2027-01-01T00:00:00.000Z', end: '2027-01-01T00:00:01.000Z', host: 'other' }), id: 'u1' },
      { id: 'not-history', note: 'an entry without a command is never a match' },
    ];
    await client.push([...seeded, ...extra]);
    const dir = client.stateDir;
    await client.close();

    const top = searchHistory(dir, { text: '--DEVICE DESK', limit: 3 });
    assert.deepEqual(top.map((e) => e.id), ['desk-29', 'desk-28', 'desk-27'], 'newest start time first, at most the limit');
    assert.equal(searchHistory(dir, { text: 'desk' }).length, 30, 'a limit of 50 by default');
    assert.deepEqual(searchHistory(dir, { text: 'äöü' }).map((e) => e.id), ['u1'], 'case-insensitive beyond ASCII');
    assert.deepEqual(searchHistory(dir, { text: '%_' }).map((e) => e.id), ['u1'], '% and _ are plain characters');
    assert.deepEqual(searchHistory(dir, { text: '' }).map((e) => e.id)[0], 'u1', 'an empty text matches every command');
    assert.equal(searchHistory(dir, { text: '' }).length, 31, 'only entries with a command');
    assert.deepEqual(searchHistory(dir, { text: 'n 1', cwd: '/home/user/projects/desk', host: 'host-desk' }).map((e) => e.id), ['desk-19', 'desk-18', 'desk-17', 'desk-16', 'desk-15', 'desk-14', 'desk-13', 'desk-12', 'desk-11', 'desk-10', 'desk-1'], 'cwd and host filters');
    assert.equal(searchHistory(dir, { text: 'desk', host: 'other' }).length, 0, 'host filter excludes');
    assert.throws(() => searchHistory(dir, { text: 'x', limit: 0 }), (e: SyncError) => e.code === 'InvalidEntry', 'limit 0 refused');
    const empty = await stateDir();
    assert.throws(() => searchHistory(empty, { text: 'x' }), (e: SyncError) => e.code === 'NotJoined', 'no device: NotJoined');
  });
});
