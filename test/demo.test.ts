// The README's first command runs `npm run demo`: this keeps that demo working and true.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { tempDir } from './support/env.js';

const demo = fileURLToPath(new URL('../scripts/demo.sh', import.meta.url));

it('npm run demo stores, verifies and reads back a file and a snapshot in a local bucket', async () => {
  const dir = await tempDir();
  const r = spawnSync('bash', [demo], { env: { ...process.env, OFFSITE_DEMO_DIR: dir }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /demo OK/);
  const readme = await readFile(fileURLToPath(new URL('../README.md', import.meta.url)));
  assert.deepEqual(await readFile(path.join(dir, 'demo-bucket/docs/README.md')), readme, 'the bucket holds the file as a plain file');
  const snap = JSON.parse(gunzipSync(await readFile(path.join(dir, 'demo-bucket/demo/state.json.gz'))).toString('utf8')) as { agent: string };
  assert.equal(snap.agent, 'demo');
});
