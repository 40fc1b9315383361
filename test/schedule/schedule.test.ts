// The schedule layer: parsing, run times, the no-overlap loop (with real timers, 50-100 ms
// intervals), long-wait chaining, and the systemd/crontab translations. The OnCalendar=
// translation is checked against systemd's own calendar (`systemd-analyze calendar`).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import {
  crontabLines,
  cronToOnCalendar,
  isScheduleError,
  jitterMs,
  MAX_TIMEOUT_MS,
  nextRun,
  parseSchedule,
  runOnSchedule,
  setLongTimeout,
  systemdUnits,
  type CronSchedule,
  type Schedule,
  type ScheduleErrorCode,
  type TickInfo,
  type TimerHandle,
} from '../../src/schedule/index.js';

/** Loop tests use sub-second intervals, which parseSchedule refuses but the loop takes. */
const every = (ms: number): Schedule => ({ kind: 'interval', seconds: ms / 1000, spec: `${ms}ms` });
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
// A broken loop tends to hang (a stop() that never resolves) rather than throw: fail it instead.
const TIMED = { timeout: 5000 };

async function waitFor(condition: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function scheduleError(code: ScheduleErrorCode, ...fragments: string[]): (e: unknown) => boolean {
  return (e) => {
    assert.ok(isScheduleError(e, code), `expected ScheduleError ${code}, got ${String(e)}`);
    for (const f of fragments) assert.ok(e.message.includes(f), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(f)}`);
    return true;
  };
}

function cron(expression: string, timezone?: string): CronSchedule {
  const schedule = parseSchedule(expression, timezone === undefined ? {} : { timezone });
  assert.equal(schedule.kind, 'cron');
  return schedule as CronSchedule;
}

describe('parseSchedule', () => {
  it('reads intervals in seconds, with or without a unit', () => {
    assert.deepEqual(parseSchedule('3600'), { kind: 'interval', seconds: 3600, spec: '3600' });
    assert.deepEqual(parseSchedule(3600), { kind: 'interval', seconds: 3600, spec: '3600' });
    assert.deepEqual(parseSchedule(' 90s '), { kind: 'interval', seconds: 90, spec: '90s' });
    assert.deepEqual(parseSchedule('15m'), { kind: 'interval', seconds: 900, spec: '15m' });
    assert.deepEqual(parseSchedule('1h'), { kind: 'interval', seconds: 3600, spec: '1h' });
    assert.deepEqual(parseSchedule('1d'), { kind: 'interval', seconds: 86400, spec: '1d' });
    assert.deepEqual(parseSchedule(1), { kind: 'interval', seconds: 1, spec: '1' });
  });

  it('reads 5- and 6-field cron expressions, normalising the spacing', () => {
    assert.deepEqual(parseSchedule(' 0  3 * *  * '), { kind: 'cron', expression: '0 3 * * *', spec: '0  3 * *  *' });
    assert.deepEqual(parseSchedule('*/10 * * * * *'), { kind: 'cron', expression: '*/10 * * * * *', spec: '*/10 * * * * *' });
    assert.deepEqual(parseSchedule('0 9 * * mon-fri', { timezone: 'Europe/Berlin' }), {
      kind: 'cron',
      expression: '0 9 * * mon-fri',
      spec: '0 9 * * mon-fri',
      timezone: 'Europe/Berlin',
    });
  });

  it('refuses bad input, naming the value and giving valid examples', () => {
    const cases: Array<[string | number, string]> = [
      ['', 'empty'],
      ['0', 'at least 1 second'],
      [0, 'at least 1 second'],
      [-5, 'at least 1 second'],
      [0.5, 'whole number of seconds'],
      [1.5, 'whole number of seconds'],
      ['1.5h', 'whole, positive number of seconds'],
      ['-5', 'whole, positive number of seconds'],
      ['10x', 'whole, positive number of seconds'],
      ['every hour', 'has 5 or 6 fields, this has 2'],
      ['* * *', 'has 5 or 6 fields, this has 3'],
      ['@daily', 'has 5 or 6 fields, this has 1'],
      ['61 * * * *', 'minute: 61'],
      ['0 0 1 1 * 2030', 'starts with a seconds field'],
      ['0 0 31 2 *', 'never matches'],
    ];
    for (const [spec, reason] of cases) {
      assert.throws(() => parseSchedule(spec), scheduleError('InvalidSchedule', `"${String(spec)}"`, reason, '"3600"', '"0 3 * * *"'), String(spec));
    }
    assert.throws(() => parseSchedule('0 3 * * *', { timezone: 'Mars/Olympus' }), scheduleError('InvalidSchedule', 'unknown time zone "Mars/Olympus"'));
  });
});

describe('nextRun', () => {
  it('adds the interval to the given time', () => {
    const after = new Date('2026-03-01T10:00:00.250Z');
    assert.deepEqual(nextRun(parseSchedule('15m'), after), new Date('2026-03-01T10:15:00.250Z'));
    assert.deepEqual(nextRun(every(50), after), new Date('2026-03-01T10:00:00.300Z'));
  });

  it('finds the next cron time strictly after the given one, in local time', () => {
    // Local dates, so the test holds in any TZ.
    assert.deepEqual(nextRun(cron('0 3 * * *'), new Date(2026, 2, 1, 5, 0)), new Date(2026, 2, 2, 3, 0));
    assert.deepEqual(nextRun(cron('0 3 * * *'), new Date(2026, 2, 1, 2, 59, 59)), new Date(2026, 2, 1, 3, 0));
    assert.deepEqual(nextRun(cron('0 3 * * *'), new Date(2026, 2, 1, 3, 0)), new Date(2026, 2, 2, 3, 0));
    assert.deepEqual(nextRun(cron('*/15 * * * *'), new Date(2026, 2, 1, 10, 7, 30)), new Date(2026, 2, 1, 10, 15));
    // Friday 2026-03-06 noon -> Monday 2026-03-09 midnight.
    assert.deepEqual(nextRun(cron('0 0 * * 1-5'), new Date(2026, 2, 6, 12, 0)), new Date(2026, 2, 9, 0, 0));
    assert.deepEqual(nextRun(cron('0 4 1 * *'), new Date(2026, 0, 31, 23, 0)), new Date(2026, 1, 1, 4, 0));
    assert.deepEqual(nextRun(cron('30 */5 * * * *'), new Date(2026, 2, 1, 10, 7, 0)), new Date(2026, 2, 1, 10, 10, 30));
  });

  it('reads cron times in the given time zone, across a DST change', () => {
    const ny = cron('0 3 * * *', 'America/New_York');
    assert.deepEqual(nextRun(ny, new Date('2026-01-01T00:00:00Z')), new Date('2026-01-01T08:00:00Z'));
    assert.deepEqual(nextRun(ny, new Date('2026-07-01T00:00:00Z')), new Date('2026-07-01T07:00:00Z'));
  });
});

describe('jitterMs', () => {
  it('is uniform in [0, max)', () => {
    assert.equal(jitterMs(100, () => 0), 0);
    assert.equal(jitterMs(100, () => 0.5), 50);
    assert.equal(jitterMs(100, () => 0.999999), 99);
    assert.equal(jitterMs(100, () => 1), 99, 'a stub returning 1 still stays below max');
    assert.equal(jitterMs(0), 0);
    const samples = Array.from({ length: 2000 }, () => jitterMs(10));
    assert.ok(samples.every((s) => Number.isInteger(s) && s >= 0 && s < 10));
    assert.equal(new Set(samples).size, 10, 'every value in [0, 10) turns up in 2000 draws');
    assert.throws(() => jitterMs(-1), scheduleError('InvalidArgument', '-1'));
    assert.throws(() => jitterMs(Number.NaN), scheduleError('InvalidArgument'));
  });
});

describe('setLongTimeout', () => {
  it('chains timers no longer than the maximum, and fires once at the end', TIMED, async () => {
    const chunks: number[] = [];
    const setTimer = (cb: () => void, ms: number): TimerHandle => {
      chunks.push(ms);
      return setTimeout(cb, ms);
    };
    const t0 = Date.now();
    let fired = 0;
    let firedAfter = 0;
    setLongTimeout(
      () => {
        fired += 1;
        firedAfter = Date.now() - t0;
      },
      110,
      { maxChunkMs: 20, setTimer },
    );
    await waitFor(() => fired > 0, 'the long timeout');
    await sleep(30);
    assert.equal(fired, 1);
    assert.ok(firedAfter >= 109, `fired after ${firedAfter} ms`);
    // The deadline is re-read at each link, so a late timer (a busy machine) means fewer links,
    // never a later callback: the number of links is checked with a stub clock below.
    assert.ok(chunks.length >= 1 && chunks.every((ms) => ms <= 20), `chunks ${chunks.join(',')}`);
  });

  it('waits two months as a chain of setTimeout-sized links (driven by a stub clock)', () => {
    let clock = Date.UTC(2026, 0, 1);
    const links: Array<{ cb: () => void; ms: number }> = [];
    let fired = 0;
    const twoMonthsMs = 61 * 86_400_000;
    setLongTimeout(() => (fired += 1), twoMonthsMs, {
      clock: () => clock,
      setTimer: (cb, ms) => {
        links.push({ cb, ms });
        return setTimeout(() => undefined, 0);
      },
    });
    for (let i = 0; i < 10 && fired === 0; i++) {
      const link = links[i];
      assert.ok(link, `link ${i}`);
      clock += link.ms;
      link.cb();
    }
    assert.deepEqual(
      links.map((l) => l.ms),
      [MAX_TIMEOUT_MS, MAX_TIMEOUT_MS, twoMonthsMs - 2 * MAX_TIMEOUT_MS],
    );
    assert.equal(fired, 1);
  });

  it('re-reads the clock at each link: a late link shortens the next one', () => {
    let clock = 0;
    const links: Array<{ cb: () => void; ms: number }> = [];
    let fired = 0;
    setLongTimeout(() => (fired += 1), 100, {
      maxChunkMs: 30,
      clock: () => clock,
      setTimer: (cb, ms) => {
        links.push({ cb, ms });
        return setTimeout(() => undefined, 0);
      },
    });
    for (const lateBy of [0, 25, 0, 0]) {
      const link = links.at(-1);
      if (!link || fired) break;
      clock += link.ms + lateBy;
      link.cb();
    }
    assert.deepEqual(
      links.map((l) => l.ms),
      [30, 30, 15],
    );
    assert.equal(fired, 1);
  });

  it('can be cancelled between links', TIMED, async () => {
    const links: Array<() => void> = [];
    const cleared: TimerHandle[] = [];
    let fired = false;
    let clock = 0;
    const cancel = setLongTimeout(() => (fired = true), 60, {
      maxChunkMs: 15,
      clock: () => clock,
      setTimer: (cb) => {
        links.push(cb);
        return setTimeout(() => undefined, 0);
      },
      clearTimer: (handle) => cleared.push(handle),
    });
    clock += 15;
    links[0]?.();
    cancel();
    assert.equal(links.length, 2);
    assert.equal(cleared.length, 1, 'the pending link is cleared');
    clock += 100;
    links[1]?.(); // even if a cleared timer fired anyway
    assert.equal(fired, false);
    // And with real timers.
    let realFired = false;
    setLongTimeout(() => (realFired = true), 30, { maxChunkMs: 10 })();
    await sleep(60);
    assert.equal(realFired, false);
  });
});

// Independent loops that mostly sleep: run side by side to keep the file quick.
describe('runOnSchedule', { concurrency: true }, () => {
  it('never overlaps runs: ticks due during a run are skipped and the next is computed from its end', TIMED, async () => {
    let active = 0;
    let maxActive = 0;
    const ticks: Array<TickInfo & { nextRunAt: Date | undefined }> = [];
    const handle = runOnSchedule({
      schedule: every(50),
      runAtStart: true,
      task: async () => {
        active += 1;
        maxActive = Math.max(maxActive, active);
        await sleep(130);
        active -= 1;
      },
      onTick: (info) => ticks.push({ ...info, nextRunAt: handle.nextRunAt() }),
    });
    assert.equal(handle.running(), true);
    await waitFor(() => ticks.length >= 3, '3 runs', 3000);
    await handle.stop();
    assert.equal(maxActive, 1);
    for (const [i, tick] of ticks.entries()) {
      assert.equal(tick.ok, true);
      // Each run lasts at least 130 ms from its due time: the 2 ticks after it, at least, fell due meanwhile.
      assert.ok(tick.skippedTicks >= 2, `run ${i} skipped ${tick.skippedTicks}`);
      const next = ticks[i + 1];
      if (next) {
        assert.ok(next.startedAt >= tick.finishedAt, `run ${i + 1} started before run ${i} finished`);
        assert.deepEqual(tick.nextRunAt, new Date(tick.finishedAt.getTime() + 50), 'the next tick counts from the end of the run');
        assert.ok(next.startedAt.getTime() - tick.finishedAt.getTime() >= 45, 'the interval is kept after a long run');
      }
    }
    assert.equal(handle.nextRunAt(), undefined);
  });

  it('keeps to the schedule times when runs are short (no drift by run duration)', TIMED, async () => {
    const ticks: Array<TickInfo & { nextRunAt: Date | undefined }> = [];
    const handle = runOnSchedule({
      schedule: every(100),
      task: () => sleep(10),
      onTick: (info) => ticks.push({ ...info, nextRunAt: handle.nextRunAt() }),
    });
    const first = handle.nextRunAt();
    assert.ok(first);
    await waitFor(() => ticks.length >= 4, '4 runs');
    await handle.stop();
    let previousDue = first;
    let onGrid = 0;
    for (const tick of ticks) {
      assert.ok(tick.nextRunAt);
      // A heavily loaded machine may still make one run late; then the loop restarts from its end.
      if (tick.skippedTicks === 0) {
        assert.deepEqual(tick.nextRunAt, new Date(previousDue.getTime() + 100));
        onGrid += 1;
      } else {
        assert.deepEqual(tick.nextRunAt, new Date(tick.finishedAt.getTime() + 100));
      }
      previousDue = tick.nextRunAt;
    }
    assert.ok(onGrid >= 2, `${onGrid} of ${ticks.length} runs on the grid`);
  });

  it('reports a task that throws or rejects and keeps going', TIMED, async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => {
      unhandled.push(e);
    };
    process.on('unhandledRejection', onUnhandled);
    try {
      let calls = 0;
      const errors: unknown[] = [];
      const ticks: TickInfo[] = [];
      const handle = runOnSchedule({
        schedule: every(40),
        runAtStart: true,
        task: (() => {
          calls += 1;
          if (calls === 1) throw new Error('boom 1'); // synchronous, before any promise exists
          if (calls === 2) return Promise.reject(new Error('boom 2'));
          return Promise.resolve();
        }) as (signal: AbortSignal) => Promise<void>,
        onError: (e) => errors.push(e),
        onTick: (info) => {
          ticks.push(info);
          if (ticks.length === 3) throw new Error('onTick failed');
        },
      });
      await waitFor(() => ticks.length >= 5, '5 runs');
      await handle.stop();
      assert.deepEqual(
        ticks.slice(0, 5).map((t) => t.ok),
        [false, false, true, true, true],
      );
      assert.equal((ticks[0]?.error as Error).message, 'boom 1');
      assert.equal((ticks[1]?.error as Error).message, 'boom 2');
      assert.equal(ticks[2]?.error, undefined);
      assert.deepEqual(
        errors.slice(0, 3).map((e) => (e as Error).message),
        ['boom 1', 'boom 2', 'onTick failed'],
      );
      await sleep(20);
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('stop({ abort: true }) aborts the running task and resolves once it has finished', TIMED, async () => {
    let signalSeen: AbortSignal | undefined;
    let finished = false;
    let calls = 0;
    const handle = runOnSchedule({
      schedule: every(50),
      runAtStart: true,
      task: async (signal) => {
        calls += 1;
        signalSeen = signal;
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
        await sleep(40); // cleanup after the abort: stop() must wait for it
        finished = true;
        throw signal.reason;
      },
      onError: () => undefined,
    });
    await waitFor(() => signalSeen !== undefined, 'the run to start');
    assert.equal(signalSeen?.aborted, false);
    const t0 = Date.now();
    await handle.stop({ abort: true });
    assert.equal(finished, true, 'stop() resolved before the task finished');
    assert.ok(Date.now() - t0 >= 35);
    assert.equal(signalSeen?.aborted, true);
    assert.equal((signalSeen?.reason as Error).name, 'AbortError');
    assert.equal(handle.running(), false);
    assert.equal(handle.nextRunAt(), undefined);
    await sleep(120);
    assert.equal(calls, 1, 'no run after stop()');
    await handle.runNow();
    assert.equal(calls, 1, 'runNow() does nothing after stop()');
  });

  it('stop() without abort lets the run finish undisturbed', TIMED, async () => {
    let signalSeen: AbortSignal | undefined;
    let finished = false;
    const handle = runOnSchedule({
      schedule: every(50),
      runAtStart: true,
      task: async (signal) => {
        signalSeen = signal;
        await sleep(60);
        finished = true;
      },
    });
    await handle.stop();
    assert.equal(finished, true);
    assert.equal(signalSeen?.aborted, false);
  });

  it('runNow() runs at once, and while a run is going waits for that one instead of starting another', TIMED, async () => {
    let calls = 0;
    let finished = 0;
    const handle = runOnSchedule({
      schedule: parseSchedule('1h'),
      task: async () => {
        calls += 1;
        await sleep(80);
        finished += 1;
      },
    });
    const due = handle.nextRunAt();
    assert.ok(due && due.getTime() - Date.now() > 3_500_000);
    assert.equal(handle.running(), false);
    const first = handle.runNow();
    assert.equal(handle.running(), true);
    const second = handle.runNow();
    await second;
    assert.equal(finished, 1, 'the second runNow() resolved when the first run finished');
    assert.equal(calls, 1);
    await first;
    assert.deepEqual(handle.nextRunAt(), due, 'a manual run leaves the schedule alone');
    await handle.runNow();
    assert.equal(calls, 2);
    await handle.stop();
  });

  it('skips a tick that falls due during a runNow() run and restarts from its end', TIMED, async () => {
    const ticks: Array<TickInfo & { nextRunAt: Date | undefined }> = [];
    let calls = 0;
    const handle = runOnSchedule({
      schedule: every(60),
      task: async () => {
        calls += 1;
        // Long enough that the tick at 60 ms falls due during it even on a busy machine.
        await sleep(calls === 1 ? 300 : 1);
      },
      onTick: (info) => ticks.push({ ...info, nextRunAt: handle.nextRunAt() }),
    });
    await handle.runNow();
    const tick = ticks[0];
    assert.ok(tick);
    assert.ok(tick.skippedTicks >= 3, `skipped ${tick.skippedTicks}`);
    assert.deepEqual(tick.nextRunAt, new Date(tick.finishedAt.getTime() + 60));
    await waitFor(() => calls >= 2, 'the next scheduled run');
    await handle.stop();
    assert.ok((ticks[1]?.startedAt.getTime() ?? 0) - tick.finishedAt.getTime() >= 55);
  });

  it('unrefs its timers only when asked', TIMED, async () => {
    for (const unref of [false, true]) {
      const handles: TimerHandle[] = [];
      const loop = runOnSchedule({
        schedule: parseSchedule('1h'),
        task: async () => undefined,
        unref,
        setTimer: (cb, ms) => {
          const h = setTimeout(cb, ms);
          handles.push(h);
          return h;
        },
      });
      assert.equal(handles.length, 1, 'an idle loop is one pending timer');
      assert.equal(handles[0]?.hasRef(), !unref);
      await loop.stop();
    }
  });

  it('refuses options that would spin or make no sense', () => {
    const task = async (): Promise<void> => undefined;
    assert.throws(() => runOnSchedule({ schedule: every(0), task }), scheduleError('InvalidArgument', 'positive'));
    assert.throws(() => runOnSchedule({ schedule: parseSchedule('1h'), task, jitterMs: -5 }), scheduleError('InvalidArgument', '-5'));
  });
});

describe('cronToOnCalendar', () => {
  it('translates lists, ranges, names and steps', () => {
    const cases: Array<[string, string[]]> = [
      ['0 3 * * *', ['*-*-* 03:00:00']],
      ['*/15 * * * *', ['*-*-* *:00/15:00']],
      ['5-59/20 8-17 * * *', ['*-*-* 08..17:05/20:00']],
      ['0 0 * * 1-5', ['Mon..Fri *-*-* 00:00:00']],
      ['0 9 * * mon,wed,fri', ['Mon,Wed,Fri *-*-* 09:00:00']],
      ['0 0 * * 6,0', ['Sat,Sun *-*-* 00:00:00']],
      ['0 0 1 jan-mar *', ['*-01..03-01 00:00:00']],
      ['0 0 1-10/3 */3 *', ['*-01/3-01,04,07,10 00:00:00']],
      ['30 */5 * * * *', ['*-*-* *:00/5:30']],
      // Both day fields set: cron runs on either, so two OnCalendar= lines.
      ['0 12 1,15 * 0', ['Sun *-*-* 12:00:00', '*-*-01,15 12:00:00']],
    ];
    for (const [expression, expected] of cases) assert.deepEqual(cronToOnCalendar(cron(expression)), expected, expression);
    assert.deepEqual(cronToOnCalendar(cron('0 3 * * *', 'Europe/Berlin')), ['*-*-* 03:00:00 Europe/Berlin']);
  });

  it('refuses what OnCalendar= cannot express', () => {
    for (const expression of ['0 0 L * *', '0 0 15W * *', '0 0 * * 5#2', '0 0 * * 5L']) {
      assert.throws(() => cronToOnCalendar(cron(expression)), scheduleError('NotRepresentable', `"${expression}"`, 'use an interval'), expression);
    }
  });

  // scripts/run-tests.mjs installs systemd-analyze (Debian's systemd) when it is missing.
  it('fires at the same times as croner, by systemd-analyze calendar', () => {
    const base = new Date('2026-02-27T13:17:00Z');
    const count = 12;
    for (const expression of ['0 3 * * *', '*/15 * * * *', '5-59/20 8-17 * * *', '0 0 * * 1-5', '0 0 */2 * 1', '0 12 1,15 * 0', '0 0 1-10/3 */3 *', '30 */5 * * * *', '0 9 * * mon,wed,fri', '0 4 29-31 * *']) {
      const schedule = cron(expression, 'UTC');
      const ours: string[] = [];
      for (let t = base; ours.length < count; ) {
        t = nextRun(schedule, t);
        ours.push(t.toISOString());
      }
      const theirs = cronToOnCalendar(schedule).flatMap((calendar) => {
        const out = spawnSync('systemd-analyze', ['calendar', `--iterations=${count}`, `--base-time=${base.toISOString().replace('T', ' ').replace('.000Z', ' UTC')}`, calendar], {
          encoding: 'utf8',
          env: { ...process.env, TZ: 'UTC', LC_ALL: 'C' },
        });
        assert.equal(out.status, 0, out.stderr);
        return [...out.stdout.matchAll(/(?:Next elapse|Iter\. #\d+): \w+ (\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) UTC/g)].map((m) => `${m[1]}T${m[2]}.000Z`);
      });
      assert.deepEqual([...new Set(theirs)].sort().slice(0, count), ours, expression);
    }
  });
});

describe('systemdUnits', () => {
  const opts = { command: '/usr/local/bin/offsite', configPath: '/etc/offsite/offsite.toml', user: 'backup' };

  it('writes a oneshot service and a calendar timer per cron job', () => {
    const units = systemdUnits([{ name: 'nightly', schedule: parseSchedule('0 3 * * *'), jitterSeconds: 600 }], opts);
    assert.deepEqual(
      units.map((u) => u.fileName),
      ['offsite-backup-nightly.service', 'offsite-backup-nightly.timer'],
    );
    assert.equal(
      units[0]?.content,
      [
        '# Written by `offsite schedule print`: one backup run of job nightly, started by offsite-backup-nightly.timer.',
        '[Unit]',
        'Description=Offsite backup nightly',
        'Wants=network-online.target',
        'After=network-online.target',
        '',
        '[Service]',
        'Type=oneshot',
        'User=backup',
        '# No secrets in this file: unit files are readable by every user. Put credentials',
        '# (AWS_ACCESS_KEY_ID=..., AWS_SECRET_ACCESS_KEY=...) in an environment file with mode 600',
        '# (chmod 600, owned by root) and uncomment the next line.',
        '#EnvironmentFile=/etc/offsite/credentials.env',
        'ExecStart=/usr/local/bin/offsite --config /etc/offsite/offsite.toml backup nightly',
        '# A backup yields the CPU and the disk to everything else on the machine.',
        'Nice=10',
        'IOSchedulingClass=idle',
        '',
      ].join('\n'),
    );
    assert.equal(
      units[1]?.content,
      [
        '# Written by `offsite schedule print`.',
        '[Unit]',
        'Description=Offsite backup nightly (0 3 * * *)',
        '',
        '[Timer]',
        'OnCalendar=*-*-* 03:00:00',
        'Persistent=true',
        'RandomizedDelaySec=600',
        '',
        '[Install]',
        'WantedBy=timers.target',
        '',
      ].join('\n'),
    );
  });

  it('writes interval timers, two OnCalendar= lines when both day fields are set, and quotes odd paths', () => {
    const units = systemdUnits(
      [
        { name: 'db.main_1', schedule: parseSchedule('1h') },
        { name: 'quick', schedule: parseSchedule('90s') },
        { name: 'mid-month', schedule: parseSchedule('0 12 15 * 0') },
      ],
      { command: '/opt/off site/bin/offsite', configPath: '/etc/offsite/100%$HOME".toml' },
    );
    const byName = new Map(units.map((u) => [u.fileName, u.content]));
    assert.equal(units.length, 6);
    const hourly = byName.get('offsite-backup-db.main_1.timer') ?? '';
    assert.match(hourly, /^OnBootSec=300s\nOnUnitActiveSec=3600s\nRandomizedDelaySec=0$/m);
    assert.doesNotMatch(hourly, /Persistent|OnCalendar/);
    assert.match(byName.get('offsite-backup-quick.timer') ?? '', /^OnBootSec=90s\nOnUnitActiveSec=90s$/m);
    assert.match(byName.get('offsite-backup-mid-month.timer') ?? '', /^OnCalendar=Sun \*-\*-\* 12:00:00\nOnCalendar=\*-\*-15 12:00:00\nPersistent=true$/m);
    const service = byName.get('offsite-backup-db.main_1.service') ?? '';
    assert.match(service, /^ExecStart="\/opt\/off site\/bin\/offsite" --config "\/etc\/offsite\/100%%\$\$HOME\\"\.toml" backup db\.main_1$/m);
    assert.doesNotMatch(service, /^User=/m);
  });

  it('refuses bad job names, relative paths and untranslatable cron expressions', () => {
    const schedule = parseSchedule('1h');
    for (const name of ['', '-x', '.hidden', 'a b', 'a/b', '../etc', 'tâche', 'x;rm']) {
      assert.throws(() => systemdUnits([{ name, schedule }], opts), scheduleError('InvalidJobName', JSON.stringify(name)), name);
      assert.throws(() => crontabLines([{ name, schedule }], opts), scheduleError('InvalidJobName', JSON.stringify(name)), name);
    }
    assert.throws(() => systemdUnits([{ name: 'a', schedule }, { name: 'a', schedule }], opts), scheduleError('InvalidJobName', 'twice'));
    assert.throws(() => systemdUnits([{ name: 'a', schedule }], { command: 'offsite' }), scheduleError('InvalidArgument', 'absolute path'));
    assert.throws(() => crontabLines([{ name: 'a', schedule }], { command: '/bin/offsite', configPath: 'offsite.toml' }), scheduleError('InvalidArgument', 'absolute path'));
    assert.throws(() => systemdUnits([{ name: 'a', schedule }], { command: '/bin/offsite\nExecStartPre=/bin/evil' }), scheduleError('InvalidArgument', 'line breaks'));
    assert.throws(() => systemdUnits([{ name: 'a', schedule }], { command: '/bin/offsite', user: 'root\nUser=x' }), scheduleError('InvalidArgument'));
    assert.throws(() => systemdUnits([{ name: 'last', schedule: parseSchedule('0 0 L * *') }], opts), scheduleError('NotRepresentable', 'use an interval'));
  });
});

describe('crontabLines', () => {
  it('writes one line per job, the cron expression as is and intervals as */n', () => {
    const lines = crontabLines(
      [
        { name: 'nightly', schedule: parseSchedule('0 3 * * *') },
        { name: 'often', schedule: parseSchedule('15m') },
        { name: 'hourly', schedule: parseSchedule('3600') },
        { name: 'daily', schedule: parseSchedule('1d') },
        { name: 'six', schedule: parseSchedule('6h') },
        { name: 'minute', schedule: parseSchedule(60) },
        { name: 'weekdays', schedule: parseSchedule('0 30 2 * * mon-fri') },
      ],
      { command: '/usr/local/bin/offsite', configPath: "/etc/it's 100%.toml" },
    );
    const tail = `/usr/local/bin/offsite --config '/etc/it'\\''s 100\\%.toml' backup`;
    assert.deepEqual(lines, [
      `0 3 * * * ${tail} nightly`,
      `*/15 * * * * ${tail} often`,
      `0 * * * * ${tail} hourly`,
      `0 0 * * * ${tail} daily`,
      `0 */6 * * * ${tail} six`,
      `* * * * * ${tail} minute`,
      `30 2 * * mon-fri ${tail} weekdays`,
    ]);
    assert.deepEqual(crontabLines([{ name: 'n', schedule: parseSchedule('*/5 * * * *') }], { command: '/usr/bin/offsite', user: 'backup' }), [
      '*/5 * * * * backup /usr/bin/offsite backup n',
    ]);
  });

  it('refuses what cron(8) cannot do exactly', () => {
    const opts = { command: '/usr/bin/offsite' };
    const refused: Array<[string | number, string]> = [
      ['90s', 'neither'],
      ['7m', 'neither'],
      ['7h', 'neither'],
      ['2d', 'neither'],
      ['*/10 * * * * *', 'once a minute'],
      ['0 0 L * *', 'croner extensions'],
      ['0 0 * * 5#2', 'croner extensions'],
      ['0 0 */2 * 1', 'differently'],
    ];
    for (const [spec, reason] of refused) {
      assert.throws(() => crontabLines([{ name: 'j', schedule: parseSchedule(spec) }], opts), scheduleError('NotRepresentable', JSON.stringify(String(spec)), reason), String(spec));
    }
    assert.throws(
      () => crontabLines([{ name: 'j', schedule: parseSchedule('0 3 * * *', { timezone: 'Asia/Tokyo' }) }], opts),
      scheduleError('NotRepresentable', 'Asia/Tokyo'),
    );
  });
});
