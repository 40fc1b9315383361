// `offsite snapshot …` as a user runs it: save from stdin, restore, verify, and a corrupted
// snapshot refused with exit code 8.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { runCli } from '../support/cli.js';
import { tempDir } from '../support/env.js';

describe('offsite snapshot', () => {
  it('save, info, ls, restore, verify, rm', async () => {
    const dir = await tempDir();
    const value = { agent: 'a1', notes: ['ünïcode ✓'], n: 3 };
    const save = await runCli(['snapshot', 'save', 'agents/a1', '-', '--agent-id', 'a1', '--description', 'first'], { cwd: dir, input: JSON.stringify(value) });
    assert.equal(save.code, 0, save.stderr);
    assert.match(save.stdout, /saved snapshot agents\/a1/);

    const info = JSON.parse((await runCli(['--json', 'snapshot', 'info', 'agents/a1'], { cwd: dir })).stdout) as { agentId: string; description: string; size: number };
    assert.equal(info.agentId, 'a1');
    assert.equal(info.description, 'first');
    assert.equal(info.size, Buffer.byteLength(JSON.stringify(value)));

    const ls = await runCli(['snapshot', 'ls'], { cwd: dir });
    assert.match(ls.stdout, /agents\/a1$/m);
    const restored = await runCli(['snapshot', 'restore', 'agents/a1'], { cwd: dir });
    assert.deepEqual(JSON.parse(restored.stdout), value);
    const verify = await runCli(['snapshot', 'verify', 'agents/a1'], { cwd: dir });
    assert.equal(verify.code, 0);
    assert.match(verify.stdout, /^ok/);

    assert.equal((await runCli(['snapshot', 'rm', 'agents/a1'], { cwd: dir })).code, 0);
    const gone = await runCli(['snapshot', 'restore', 'agents/a1'], { cwd: dir });
    assert.equal(gone.code, 3);
    assert.match(gone.stderr, /no snapshot "agents\/a1"/);
  });

  it('a corrupted snapshot: verify and restore exit 8 and print no value', async () => {
    const dir = await tempDir();
    const store = path.join(dir, 'snaps');
    assert.equal((await runCli(['snapshot', '--storage', store, 'save', 'k', '-'], { cwd: dir, input: '{"balance":100}' })).code, 0);
    // Replace the bytes in place (same file, so the recorded metadata stays attached).
    const file = path.join(store, 'k.json.gz');
    const fd = await import('node:fs/promises').then((m) => m.open(file, 'r+'));
    const evil = gzipSync('{"balance":999}');
    await fd.truncate(0);
    await fd.write(evil, 0, evil.length, 0);
    await fd.close();
    const verify = await runCli(['snapshot', '--storage', store, 'verify', 'k'], { cwd: dir });
    assert.equal(verify.code, 8, verify.stdout + verify.stderr);
    assert.match(verify.stdout, /FAIL/);
    const restore = await runCli(['snapshot', '--storage', store, 'restore', 'k'], { cwd: dir });
    assert.equal(restore.code, 8);
    assert.equal(restore.stdout, '', 'no value printed');
    assert.match(restore.stderr, /corrupted/);
  });

  it('invalid JSON input is a usage error', async () => {
    const dir = await tempDir();
    await writeFile(path.join(dir, 'bad.json'), '{not json');
    const r = await runCli(['snapshot', 'save', 'k', 'bad.json'], { cwd: dir });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /bad\.json is not valid JSON/);

  });
});
