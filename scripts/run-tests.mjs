// `npm test`: starts one Ceph RADOS Gateway for the whole run (installing Debian's radosgw when
// missing), runs every test file under test/ with Node's test runner (files in parallel, each
// with its own bucket), then the browser tests (test/web/*.spec.ts, Playwright Test driving
// Debian's chromium, installed when missing) against the same RGW, then stops the server by PID.
// The last line is the total of both: `tests: N passed, M failed`.
//   node scripts/run-tests.mjs [FILE_OR_NAME_FILTER...]     (test/web: the browser tests only)
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensurePostgresTools } from './postgres.mjs';
import { ensureDebianPackages, startRgw } from './rgw.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function findTests(dir, suffix) {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) return findTests(p, suffix);
    return name.endsWith(suffix) ? [p] : [];
  });
}

const filters = process.argv.slice(2);
const selected = (suffix) =>
  findTests(path.join(root, 'test'), suffix)
    .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
    .sort();
const files = selected('.test.ts');
const browserFiles = selected('.spec.ts');
if (files.length === 0 && browserFiles.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}

// The CLI tests run bin/offsite, which runs the compiled dist/ and serves the page from
// dist/web: build both from this tree first.
for (const args of [
  [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
  [path.join(root, 'node_modules/vite/bin/vite.js'), 'build', '--config', 'web/vite.config.ts'],
]) {
  const build = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (build.status !== 0) process.exit(build.status ?? 1);
}

// Tools the suite uses to prove plain restores, to check systemd timers, to run the shell-history
// hook in a real zsh, and to run the PostgreSQL tests; installed here once, before test files run in parallel.
ensureDebianPackages({ age: ['age'], aws: ['awscli'], 'systemd-analyze': ['systemd'], zsh: ['zsh'] });
// The browser tests drive Debian's chromium (Playwright downloads no browser).
if (browserFiles.length > 0) ensureDebianPackages({ chromium: ['chromium'] });
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

const testEnv = {
  ...process.env,
  OFFSITE_TEST_S3_ENDPOINT: rgw.endpoint,
  OFFSITE_TEST_S3_ACCESS_KEY_ID: rgw.accessKeyId,
  OFFSITE_TEST_S3_SECRET_ACCESS_KEY: rgw.secretAccessKey,
  OFFSITE_TEST_RGW_DIR: rgw.dir,
  // Never the user's own manifest key (~/.config/offsite/manifest.key): one for this run.
  OFFSITE_MANIFEST_KEY_FILE: path.join(rgw.dir, 'manifest.key'),
};

function run(args, env = {}) {
  const child = spawn(process.execPath, args, { cwd: root, stdio: 'inherit', env: { ...testEnv, ...env } });
  return new Promise((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0))));
}

function readJson(file) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

const countsDir = path.join(rgw.dir, 'test-counts');
mkdirSync(countsDir, { recursive: true });
let passed = 0;
let failed = 0;
let code = 0;

if (files.length > 0) {
  const concurrency = process.env.OFFSITE_TEST_CONCURRENCY ?? '4';
  const countsFile = path.join(countsDir, 'node.json');
  const c = await run([
    '--import',
    'tsx',
    '--test',
    `--test-concurrency=${concurrency}`,
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    `--test-reporter=${path.join(root, 'scripts/count-reporter.mjs')}`,
    `--test-reporter-destination=${countsFile}`,
    ...files.map((f) => path.relative(root, f)),
  ]);
  const counts = readJson(countsFile);
  passed += counts?.passed ?? 0;
  failed += counts?.failed ?? (c === 0 ? 0 : 1);
  if (c !== 0) code = c;
}

if (browserFiles.length > 0) {
  const resultsFile = path.join(countsDir, 'playwright.json');
  rmSync(resultsFile, { force: true });
  const c = await run(
    [path.join(root, 'node_modules/@playwright/test/cli.js'), 'test', '--config', 'test/web/playwright.config.ts', ...browserFiles.map((f) => path.relative(root, f))],
    { OFFSITE_PLAYWRIGHT_JSON: resultsFile, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: '1' },
  );
  const stats = existsSync(resultsFile) ? readJson(resultsFile)?.stats : null;
  passed += (stats?.expected ?? 0) + (stats?.flaky ?? 0);
  failed += stats?.unexpected ?? (c === 0 ? 0 : 1);
  if (c !== 0 && code === 0) code = c;
}

cleanup();
if (code === 0 && failed > 0) code = 1;
console.log(`tests: ${passed} passed, ${failed} failed`);
process.exit(code);
