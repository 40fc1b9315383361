// The shell-history hook's spool, with real bash and zsh: no command line ever appears in a
// process's argv (another user polls /proc/*/cmdline meanwhile), a burst of commands is one
// pusher and few pushes, a prompt costs well under 10 ms of CPU and starts no process, and the
// spool is private (0700/0600 under umask 000) and never written through a link.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { HistoryShell } from '../../src/sync/index.js';
import { OFFSITE_BIN, runCli } from '../support/cli.js';
import { initDevice, localTarget, scratchDir } from './helpers.js';
import { batchesSent, runShell, waitForRecorded, watchArgv } from './history-shell.js';

const SECRET = 'hunter2-s3cret';

interface Rig {
  dir: string;
  spool: string;
  home: string;
  work: string;
  rcFile: string;
  /** Text in the argv of every offsite process the hook starts (old recorder or new pusher). */
  hookProcess: string;
}

/** A device on a local directory, and an rc file with `before` (the user's lines) and the hook. */
async function rig(shell: HistoryShell, before = '', install = true): Promise<Rig> {
  const url = await localTarget.newBucket(`spool-${shell}`);
  const { client } = await initDevice(url);
  const dir = client.stateDir;
  await client.close();
  const home = await scratchDir(`${shell}-spool-home-`);
  await mkdir(path.join(home, 'rc'));
  const rcFile = path.join(home, 'rc', shell === 'bash' ? '.bashrc' : '.zshrc');
  await writeFile(rcFile, `PS1='$ '\n${before}`);
  if (install) {
    const r = await runCli(['sync', '--dir', dir, 'history', 'install', '--shell', shell, '--rc', rcFile], { env: { HOME: home } });
    assert.equal(r.code, 0, r.stderr);
  }
  const work = path.join(home, 'work');
  await mkdir(work);
  return { dir, spool: path.join(dir, 'history-spool'), home, work, rcFile, hookProcess: `${OFFSITE_BIN} sync --dir ${dir} history` };
}

/** Waits until no pusher runs any more (its lock is gone). */
async function pusherGone(r: Rig, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (existsSync(path.join(r.spool, 'flusher.lock'))) {
    assert.ok(Date.now() < deadline, 'the pusher exits once the spool is sent');
    await new Promise((res) => setTimeout(res, 100));
  }
  await new Promise((res) => setTimeout(res, 300));
}

/** The shell's own CPU and its waited-for children's, in ms, from the `times` builtin's two lines. */
function parseTimes(stdout: string): { self: number; children: number } {
  const values = [...stdout.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => (Number(m[1]) * 60 + Number(m[2])) * 1000);
  assert.ok(values.length >= 4, `times printed: ${stdout}`);
  const [u, s, cu, cs] = values.slice(-4) as [number, number, number, number];
  return { self: u + s, children: cu + cs };
}

for (const shell of ['bash', 'zsh'] as const) {
  describe(`the history spool in ${shell}`, () => {
    it('a command holding a secret never appears in any process\'s argv, and still arrives', async () => {
      const r = await rig(shell);
      const commands = ['echo start', `export DB_PASSWORD=${SECRET}`, `echo "connecting with ${SECRET}" > /dev/null`, 'sleep 0.5', `: ${SECRET} once more`, 'echo done'];
      const watch = await watchArgv(SECRET, r.hookProcess);
      const run = await runShell(shell, r.rcFile, r.home, r.work, `${commands.join('\n')}\n`);
      assert.equal(run.code, 0, run.stderr);
      const entries = await waitForRecorded(r.dir, commands.length);
      await pusherGone(r);
      const seen = await watch.stop();
      process.stderr.write(`# ${shell}: ${seen.scans} scans of /proc/*/cmdline; offsite processes the hook started: ${seen.watched.length}\n`);
      assert.ok(seen.scans > 20, `the argv of every process was read ${seen.scans} times`);
      assert.deepEqual(seen.hits, [], 'no process ever had the secret in its argv');
      assert.deepEqual(entries.map((e) => e.command).sort(), [...commands].sort(), 'every command recorded, the secret ones included');
    });

    it('100 quick commands: one pusher, few pushes, every command once', async () => {
      const r = await rig(shell);
      const before = batchesSent(r.dir);
      const commands = Array.from({ length: 100 }, (_, i) => `: quick command ${i}`);
      const watch = await watchArgv(SECRET, r.hookProcess);
      const run = await runShell(shell, r.rcFile, r.home, r.work, `${commands.join('\n')}\n`);
      assert.equal(run.code, 0, run.stderr);
      const entries = await waitForRecorded(r.dir, commands.length);
      await pusherGone(r);
      const seen = await watch.stop();
      const pushes = batchesSent(r.dir) - before;
      process.stderr.write(`# ${shell}: 100 commands in ${run.ended - run.started} ms -> ${seen.watched.length} pusher process(es), ${pushes} batch(es) sent\n`);
      assert.deepEqual(entries.map((e) => e.command).sort(), [...commands].sort(), 'each command once');
      assert.ok(seen.watched.length >= 1 && seen.watched.length <= 3, `${seen.watched.length} offsite processes started by the hook (one per burst, not one per command)`);
      assert.ok(pushes >= 1 && pushes <= 3, `${pushes} batches for 100 commands`);
      assert.deepEqual((await readdir(r.spool)).filter((n) => n.endsWith('.spool') || n.endsWith('.last')), [], 'the spool files of an exited shell are removed once sent');
    });

    it('a prompt costs well under 10 ms of CPU (200 prompts, with and without the hook)', async () => {
      const prompts = 200;
      const script = `${Array.from({ length: prompts }, (_, i) => `: prompt ${i}`).join('\n')}\ntimes\n`;
      const withHook = await rig(shell);
      const without = await rig(shell, '', false);
      const watch = await watchArgv(SECRET, withHook.hookProcess);
      const hooked = await runShell(shell, withHook.rcFile, withHook.home, withHook.work, script);
      const plain = await runShell(shell, without.rcFile, without.home, without.work, script);
      assert.equal(hooked.code, 0, hooked.stderr);
      await waitForRecorded(withHook.dir, prompts);
      await pusherGone(withHook);
      const seen = await watch.stop();
      const a = parseTimes(hooked.stdout);
      const b = parseTimes(plain.stdout);
      const perPrompt = (a.self - b.self) / prompts;
      const perPromptAll = (a.self + a.children - b.self - b.children) / prompts;
      process.stderr.write(
        `# ${shell}: ${prompts} prompts: shell CPU ${a.self.toFixed(0)} ms with the hook, ${b.self.toFixed(0)} ms without ` +
          `(children waited for: ${a.children.toFixed(0)} / ${b.children.toFixed(0)} ms) -> ${perPrompt.toFixed(3)} ms per recorded command ` +
          `(${perPromptAll.toFixed(3)} ms with the children); offsite processes started: ${seen.watched.length}\n`,
      );
      assert.ok(perPromptAll < 10, `${perPromptAll.toFixed(3)} ms of CPU per recorded command`);
      assert.ok(seen.watched.length <= 3, `${seen.watched.length} offsite processes for ${prompts} commands: none per command`);
    });

    it('under umask 000 the spool is 0700 and its files 0600', async () => {
      const r = await rig(shell, 'umask 000\n');
      const listing = `stat -c '%a %F %n' ${r.spool} ${r.spool}/*`;
      const run = await runShell(shell, r.rcFile, r.home, r.work, `echo one\necho two\n${listing}\n`);
      assert.equal(run.code, 0, run.stderr);
      const modes = run.stdout.split('\n').filter((l) => l.includes(r.spool)).map((l) => l.replace(r.spool, 'SPOOL'));
      assert.ok(modes.includes('700 directory SPOOL'), modes.join('\n'));
      assert.ok(modes.some((m) => /^600 regular file SPOOL\/.*\.spool$/.test(m)), modes.join('\n'));
      assert.deepEqual(modes.filter((m) => !/^(700 directory|600 regular (empty )?file) /.test(m)), [], `nothing else:\n${modes.join('\n')}`);
      await waitForRecorded(r.dir, 3);
      await pusherGone(r);
      for (const name of await readdir(r.spool)) {
        const st = await lstat(path.join(r.spool, name));
        assert.equal(st.mode & 0o777, st.isDirectory() ? 0o700 : 0o600, `${name} is private`);
      }
    });

    it('a link at the spool directory: nothing is written through it, nothing recorded, the pusher refuses it', async () => {
      const r = await rig(shell);
      const elsewhere = await scratchDir('spool-elsewhere-');
      await symlink(elsewhere, r.spool);
      const run = await runShell(shell, r.rcFile, r.home, r.work, `echo one\nexport DB_PASSWORD=${SECRET}\n`);
      assert.equal(run.code, 0, run.stderr);
      assert.ok(!run.stderr.includes('offsite') && !run.stdout.includes('offsite'), 'the hook says nothing');
      await new Promise((res) => setTimeout(res, 1500));
      assert.deepEqual(await readdir(elsewhere), [], 'nothing written where the link points');
      const flush = await runCli(['sync', '--dir', r.dir, 'history', 'flush']);
      assert.equal(flush.code, 2, flush.stderr);
      assert.match(flush.stderr, /not a directory of this user \(a symbolic link/);
      assert.deepEqual(await readdir(elsewhere), [], 'nothing written there by the pusher either');
    });
  });
}

describe('the pusher by hand', () => {
  it('offsite sync history flush sends what is spooled, and its pid file replaces a planted link', async () => {
    const r = await rig('bash');
    await mkdir(r.spool, { mode: 0o700 });
    const outside = path.join(await scratchDir('pid-target-'), 'victim');
    await writeFile(outside, 'keep me\n');
    await symlink(outside, path.join(r.spool, 'flusher.pid'));
    // A spool file as the hook writes it, and a line a killed shell left half written.
    const line = (cmd: string) => `1\t@1767225600.100\t@1767225601.250\t0\tbash\t/srv/a\\tb\t${cmd}\tend\n`;
    await writeFile(path.join(r.spool, '999999-1-1.spool'), `${line('echo \\"hi\\" \\\\n')}${line('multi\\nline')}1\t@1767`, { mode: 0o600 });
    const flush = await runCli(['--json', 'sync', '--dir', r.dir, 'history', 'flush']);
    assert.equal(flush.code, 0, flush.stderr);
    assert.deepEqual(JSON.parse(flush.stdout), { ran: true, pushes: 1, entries: 2, skipped: 0 });
    assert.equal(await readFile(outside, 'utf8'), 'keep me\n', 'the pid file was not written through the link');
    const entries = await waitForRecorded(r.dir, 2);
    assert.deepEqual(
      entries.map((e) => [e.command, e.cwd, e.startTime, e.endTime]).sort(),
      [
        ['echo "hi" \\n', '/srv/a\tb', '2026-01-01T00:00:00.100Z', '2026-01-01T00:00:01.250Z'],
        ['multi\nline', '/srv/a\tb', '2026-01-01T00:00:00.100Z', '2026-01-01T00:00:01.250Z'],
      ],
      'escapes undone; the half line left alone',
    );
    assert.deepEqual((await readdir(r.spool)).filter((n) => n.endsWith('.spool')), [], 'the file of a gone shell is removed once its complete lines are sent');
    const again = await runCli(['--json', 'sync', '--dir', r.dir, 'history', 'flush']);
    assert.deepEqual(JSON.parse(again.stdout), { ran: true, pushes: 0, entries: 0, skipped: 0 }, 'nothing twice');
  });
});
