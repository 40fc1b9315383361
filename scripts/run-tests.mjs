// `npm test`: starts one Ceph RADOS Gateway for the whole run (installing Debian's radosgw when
// missing), runs every test file under test/ with Node's test runner (files in parallel, each
// with its own bucket), then stops the server by PID.
//   node scripts/run-tests.mjs [FILE_OR_NAME_FILTER...]
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensurePostgresTools } from './postgres.mjs';
import { ensureDebianPackages, startRgw } from './rgw.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function findTests(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) return findTests(p);
    return name.endsWith('.test.ts') ? [p] : [];
  });
}

const filters = process.argv.slice(2);
const files = findTests(path.join(root, 'test'))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}

// The CLI tests run bin/offsite, which runs the compiled dist/: build it from this tree first.
const build = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);

// Tools the suite uses to prove plain restores, to check systemd timers, to run the shell-history
// hook in a real zsh, and to run the PostgreSQL tests; installed here once, before test files run in parallel.
ensureDebianPackages({ age: ['age'], aws: ['awscli'], 'systemd-analyze': ['systemd'], zsh: ['zsh'] });
ensurePostgresTools();

const t0 = Date.now();
const rgw = await startRgw();
console.error(`# RGW up at ${rgw.endpoint} in ${Date.now() - t0} ms (${rgw.dir})`);
const cleanup = () => rgw.stop();
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});
process.on('SIGTERM', () => {
  cleanup();
  process.exit(143);
});

const concurrency = process.env.OFFSITE_TEST_CONCURRENCY ?? '4';
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files.map((f) => path.relative(root, f))],
  {
    cwd: root,
    stdio: 'inherit',
    env: {
      ...process.env,
      OFFSITE_TEST_S3_ENDPOINT: rgw.endpoint,
      OFFSITE_TEST_S3_ACCESS_KEY_ID: rgw.accessKeyId,
      OFFSITE_TEST_S3_SECRET_ACCESS_KEY: rgw.secretAccessKey,
      OFFSITE_TEST_RGW_DIR: rgw.dir,
      // Never the user's own manifest key (~/.config/offsite/manifest.key): one for this run.
      OFFSITE_MANIFEST_KEY_FILE: path.join(rgw.dir, 'manifest.key'),
    },
  },
);
const code = await new Promise((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0))));
cleanup();
process.exit(code);
