// Five devices as five processes push 200 entries each at the same moment, through a local
// directory, through the real RGW and through an `offsite serve` server: every device ends
// with all 1,000, and no pull returns an entry twice.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { closeSyncServers, historyEntries, ids, initDevice, stateDir, TARGETS } from './helpers.js';

after(closeSyncServers); // the servers of the HTTP target

const childScript = fileURLToPath(new URL('./device-child.ts', import.meta.url));
const DEVICES = 5;
const PER_DEVICE = 200;

interface ChildReport {
  label: string;
  held: string[];
  pulled: string[];
  problems: string[];
  pulls: number;
}

function startDevice(url: string, secret: string, dir: string, label: string, env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', childScript, url, secret, dir, label, String(PER_DEVICE), String(DEVICES * PER_DEVICE)], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  const lines = createInterface({ input: child.stdout });
  const ready = new Promise<void>((resolve) => lines.once('line', () => resolve()));
  const report = new Promise<ChildReport>((resolve, reject) => {
    lines.on('line', (l) => l !== 'ready' && resolve(JSON.parse(l) as ChildReport));
    child.once('exit', (code) => reject(new Error(`device ${label} exited with ${code} before reporting`)));
  });
  return { child, ready, report };
}

for (const target of TARGETS) {
  describe(`five devices at once through ${target.name}`, () => {
    it(`${DEVICES} processes push ${PER_DEVICE} entries each at the same time: all hold ${DEVICES * PER_DEVICE}, none arrived twice`, async (t) => {
      const url = await target.newBucket('sync-five');
      const { client: first, secret } = await initDevice(url);
      await first.close();
      const labels = Array.from({ length: DEVICES }, (_, i) => `dev${i}`);
      const devices = await Promise.all(labels.map(async (label) => startDevice(url, secret, await stateDir(), label, target.childEnv())));
      await Promise.all(devices.map((d) => d.ready));
      const started = Date.now();
      for (const d of devices) d.child.stdin.end('go\n');
      const reports = await Promise.all(devices.map((d) => d.report));
      t.diagnostic(`${target.name}: converged in ${Date.now() - started} ms; pulls per device ${reports.map((r) => r.pulls).join(', ')}`);

      const everything = ids(labels.flatMap((l) => historyEntries(l, PER_DEVICE)));
      for (const r of reports) {
        assert.deepEqual(r.problems, [], `${r.label}: ${r.problems.join('; ')}`);
        assert.equal(r.held.length, DEVICES * PER_DEVICE, `${r.label} holds ${r.held.length}`);
        assert.deepEqual([...r.held].sort(), everything, `${r.label} holds exactly every entry`);
        assert.equal(new Set(r.pulled).size, r.pulled.length, `${r.label}: a pull returned an entry twice`);
        const own = new Set(ids(historyEntries(r.label, PER_DEVICE)));
        assert.ok(!r.pulled.some((id) => own.has(id)), `${r.label}: its own entries came back`);
        assert.equal(r.pulled.length, (DEVICES - 1) * PER_DEVICE, `${r.label}: pulled ${r.pulled.length}`);
      }
    });
  });
}
