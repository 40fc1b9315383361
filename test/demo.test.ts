// The README's first command runs `npm run demo`: this keeps that demo working and true.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { OFFSITE_BIN } from './support/cli.js';
import { tempDir } from './support/env.js';

const demo = fileURLToPath(new URL('../scripts/demo.sh', import.meta.url));

it('npm run demo stores, verifies and reads back a file and a snapshot, backs up a live SQLite database, restores it, and prints the console command', async () => {
  const dir = await tempDir();
  const r = spawnSync('bash', [demo], { env: { ...process.env, OFFSITE_DEMO_DIR: dir }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /demo OK/);
  const readme = await readFile(fileURLToPath(new URL('../README.md', import.meta.url)));
  assert.deepEqual(await readFile(path.join(dir, 'demo-bucket/docs/README.md')), readme, 'the bucket holds the file as a plain file');
  const snap = JSON.parse(gunzipSync(await readFile(path.join(dir, 'demo-bucket/demo/state.json.gz'))).toString('utf8')) as { agent: string };
  assert.equal(snap.agent, 'demo');

  // The job's listing shows each state, one backup each.
  const listing = r.stdout.match(/^(local|both|s3) +\S+ +.+ (app-\S+\.sqlite)$/gm) ?? [];
  const where = listing.map((l) => l.split(/ +/)[0]);
  assert.deepEqual(where.slice(-3), ['local', 'both', 's3'], r.stdout);
  const inBucket = (await readdir(path.join(dir, 'demo-bucket/backups'))).filter((n) => n.endsWith('.sqlite'));
  assert.equal(inBucket.length, 2, 'the first and the middle backup are in the bucket');

  // The restored database is whole and a prefix of the writes (rows 1..n, no gap).
  const db = new Database(path.join(dir, 'demo-readback/restored.db'), { readonly: true });
  try {
    assert.equal((db.pragma('integrity_check') as Array<{ integrity_check: string }>)[0]?.integrity_check, 'ok');
    const { n, max } = db.prepare('SELECT COUNT(*) AS n, MAX(id) AS max FROM rows').get() as { n: number; max: number };
    assert.equal(n, max);
    assert.ok(n >= 20000, `at least the 20,000 rows made before the writer started, got ${n}`);
  } finally {
    db.close();
  }
  assert.match(r.stdout, /integrity_check ok, rows 1\.\.\d+ \(\d+ rows, no gap, a prefix of the live database's \d+\), 0 torn/);

  // It ends with the command that opens the console on the same data.
  const last = r.stdout.trimEnd().split('\n').pop() ?? '';
  const m = /offsite console --config (\S*demo-app\/offsite\.toml) --data-dir (\S*demo-app\/console)$/.exec(last);
  assert.ok(m, last);

  // That console shows the demo's backups: the same catalog, local directory and bucket.
  const tokenFile = path.join(dir, 'console-token');
  const child = spawn(process.execPath, [OFFSITE_BIN, 'console', '--config', m[1]!, '--data-dir', m[2]!, '--port', '0', '--token-file', tokenFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        const u = /console listening on (\S+)/.exec(out)?.[1];
        if (u) resolve(u);
      });
      child.once('exit', (code) => reject(new Error(`console exited (${code}): ${out}`)));
    });
    const token = (await readFile(tokenFile, 'utf8')).trim();
    const res = await fetch(`${url}/api/jobs/app/backups`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { backups: Array<{ name: string; where: string }> };
    // The restore kept the bucket-only backup as its local copy: now both.
    assert.deepEqual(body.backups.map((b) => b.where), ['local', 'both', 'both']);
    const jobs = (await (await fetch(`${url}/api/jobs`, { headers: { authorization: `Bearer ${token}` } })).json()) as { jobs: Array<{ name: string; status: string; last_success: string | null }> };
    assert.equal(jobs.jobs[0]?.status, 'ok', 'the runs of the demo are in the console\'s catalog');
  } finally {
    child.kill('SIGTERM');
  }
});
