// Starts and stops a throw-away Ceph RADOS Gateway for tests and benchmarks, installing the
// Debian packages it needs when they are missing (as root). Used by run-tests.mjs and the bench.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const rgwDir = path.resolve(here, '../test/support/rgw');

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Installs Debian packages whose commands are missing. Needs root (CI and the README run as root). */
export function ensureDebianPackages(packagesByCommand) {
  const missing = Object.entries(packagesByCommand).filter(([cmd]) => !have(cmd));
  if (missing.length === 0) return;
  const packages = [...new Set(missing.flatMap(([, pkgs]) => pkgs))];
  if (process.getuid?.() !== 0) {
    throw new Error(`missing commands ${missing.map(([c]) => c).join(', ')}: run as root, or install them: apt-get install -y --no-install-recommends ${packages.join(' ')}`);
  }
  console.error(`# installing Debian packages: ${packages.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'ignore', 'inherit'], env });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], { stdio: ['ignore', 'ignore', 'inherit'], env });
}

export const RGW_PACKAGES = {
  radosgw: ['radosgw'],
  'ceph-mon': ['ceph-mon'],
  'ceph-osd': ['ceph-osd'],
  uuidgen: ['uuid-runtime'],
  curl: ['curl'],
};

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts RGW in a fresh temp directory on free ports. Returns { endpoint, accessKeyId,
 * secretAccessKey, dir, stop() }. objectStore: 'memstore' (RAM, fast start) or 'bluestore'
 * (a sparse file, for benchmarks with GBs of data).
 */
export async function startRgw(opts = {}) {
  // A start can fail for reasons of the moment: a free port taken by another process before the
  // mon binds it, or the mon not yet answering `ceph osd new` on a loaded machine ("problem
  // getting command descriptions from mon"). Fresh ports and a fresh directory, once more.
  try {
    return await startRgwOnce(opts);
  } catch (e) {
    process.stderr.write(`# RGW did not start (${String(e.message).split('\n').find((l) => l.includes('failed')) ?? 'see above'}); trying once more\n`);
    return startRgwOnce(opts);
  }
}

async function startRgwOnce({ objectStore = 'memstore', quiet = true } = {}) {
  ensureDebianPackages(RGW_PACKAGES);
  const dir = mkdtempSync(path.join(tmpdir(), 'offsite-rgw-'));
  const rgwPort = await freePort();
  let monPort = await freePort();
  while (monPort === rgwPort) monPort = await freePort();
  const accessKeyId = `offsite${randomBytes(6).toString('hex')}`;
  const secretAccessKey = randomBytes(24).toString('base64url');
  const env = {
    ...process.env,
    RGW_PORT: String(rgwPort),
    MON_PORT: String(monPort),
    ACCESS_KEY: accessKeyId,
    SECRET_KEY: secretAccessKey,
    OBJECTSTORE: objectStore,
  };
  const res = spawnSync('bash', [path.join(rgwDir, 'start-rgw.sh'), path.join(dir, 'ceph')], { env, encoding: 'utf8' });
  if (res.status !== 0) {
    spawnSync('bash', [path.join(rgwDir, 'stop-rgw.sh'), path.join(dir, 'ceph')], { stdio: 'ignore' });
    throw new Error(`could not start RGW (exit ${res.status}):\n${res.stdout}\n${res.stderr}`);
  }
  if (!quiet) process.stderr.write(res.stdout);
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    spawnSync('bash', [path.join(rgwDir, 'stop-rgw.sh'), path.join(dir, 'ceph')], { stdio: 'ignore' });
    if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  };
  return { endpoint: `http://127.0.0.1:${rgwPort}`, accessKeyId, secretAccessKey, dir, stop };
}
