// Start-up loads what the command uses: `--version` no command module at all, a command only its
// own module (so `offsite --version` and a sync hook do not load the AWS SDK), and the table in
// main.ts that says which module defines which command matches what each module registers.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Command } from 'commander';
import { COMMAND_MODULES } from '../../src/cli/command-modules.js';
import { OFFSITE_BIN } from '../support/cli.js';
import { tempDir } from '../support/env.js';

test('each command module registers exactly the commands main.ts routes to it', async () => {
  const all: string[] = [];
  for (const m of COMMAND_MODULES) {
    const program = new Command();
    (await m.load())(program);
    assert.deepEqual(program.commands.map((c) => c.name()).sort(), [...m.names].sort());
    all.push(...m.names);
  }
  assert.equal(new Set(all).size, all.length, 'a command name is routed to two modules');
});

/**
 * The modules a run of bin/offsite loads, as paths below the repository: every ES module it
 * resolves (through a resolve hook) and every CommonJS module in require's cache at exit (the
 * AWS SDK is required on first use: src/storage/s3/sdk.ts).
 */
async function modulesLoadedBy(args: string[]): Promise<{ code: number | null; stdout: string; loaded: string[] }> {
  const dir = await tempDir('startup');
  const hook = path.join(dir, 'hook.mjs');
  const log = path.join(dir, 'loaded.txt');
  writeFileSync(hook, `import { appendFileSync } from 'node:fs';\nexport async function resolve(s, c, next) { const r = await next(s, c); appendFileSync(${JSON.stringify(log)}, r.url + '\\n'); return r; }\n`);
  const register = path.join(dir, 'register.mjs');
  writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(`file://${hook}`)});\n`);
  const atExit = path.join(dir, 'at-exit.cjs');
  writeFileSync(atExit, `process.on('exit', () => require('node:fs').appendFileSync(${JSON.stringify(log)}, Object.keys(require('node:module')._cache).map((f) => 'file://' + f + '\\n').join('')));\n`);
  writeFileSync(log, '');
  const run = spawnSync(process.execPath, ['--import', register, '--require', atExit, OFFSITE_BIN, ...args], { encoding: 'utf8' });
  const root = path.resolve(path.dirname(OFFSITE_BIN), '..');
  const loaded = readFileSync(log, 'utf8')
    .split('\n')
    .filter((u) => u.startsWith('file://'))
    .map((u) => path.relative(root, new URL(u).pathname));
  return { code: run.status, stdout: run.stdout, loaded };
}

const awsSdk = (loaded: string[]) => loaded.filter((f) => f.includes('node_modules/@aws-sdk/') || f.includes('node_modules/@smithy/'));

test('--version loads no command module, no engine and no AWS SDK', async () => {
  const run = await modulesLoadedBy(['--version']);
  assert.equal(run.code, 0);
  assert.match(run.stdout, /^\d+\.\d+\.\d+/);
  assert.ok(run.loaded.includes('dist/cli/main.js'), `the hook saw the CLI load: ${run.loaded.join(', ')}`);
  const heavy = run.loaded.filter((f) => f.startsWith('dist/cli/commands/') || /^dist\/(storage|backup|sync|catalog|codec|snapshot|policy|doctor)\//.test(f));
  assert.deepEqual([...heavy, ...awsSdk(run.loaded)], []);
});

test('a put to a local directory loads no AWS SDK; a command on an S3 URL does', async () => {
  const dir = await tempDir('startup-put');
  writeFileSync(path.join(dir, 'small.txt'), 'x'.repeat(1024));
  const local = await modulesLoadedBy(['put', path.join(dir, 'small.txt'), path.join(dir, 'bucket', 'small.txt')]);
  assert.equal(local.code, 0);
  assert.equal(readFileSync(path.join(dir, 'bucket', 'small.txt'), 'utf8'), 'x'.repeat(1024));
  assert.ok(local.loaded.includes('dist/storage/index.js'), 'the storage layer was loaded');
  assert.deepEqual(awsSdk(local.loaded), []);
  // The same check sees the SDK when it is used: a listing on an S3 endpoint where nothing listens.
  const s3 = await modulesLoadedBy(['ls', 's3://no-bucket/?endpoint=http://127.0.0.1:9&region=us-east-1']);
  assert.notEqual(s3.code, 0);
  assert.ok(awsSdk(s3.loaded).some((f) => f.includes('@aws-sdk/client-s3/')), 'the SDK is loaded for an S3 URL');
});

test('a command loads its own module, not the others', async () => {
  const run = await modulesLoadedBy(['sync', '--help']);
  assert.equal(run.code, 0);
  const commandModules = [...new Set(run.loaded.filter((f) => f.startsWith('dist/cli/commands/')).map((f) => path.basename(f)))].sort();
  assert.deepEqual(commandModules, ['sync-history.js', 'sync.js']);
});
