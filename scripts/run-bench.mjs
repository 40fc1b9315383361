// `npm run bench`: installs the peer tools when missing (as root), starts a throw-away Ceph RGW
// on bluestore (a sparse file: a GiB-sized bench would not fit memstore's RAM budget), creates
// the bucket, runs bench/run.ts (the scenarios in BENCH_SCENARIOS: large-file, archive-tree), and
// stops the server by PID at the end, on failure and on Ctrl-C. Knobs are environment variables,
// see docs/bench.md (BENCH_SIZE_MIB=64 BENCH_TREE_MIB=64 BENCH_TREE_FILES=500 for a quick run).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';
import { ensureDebianPackages, startRgw } from './rgw.mjs';

// The SDK's notice about Node 20 support ending in 2027 is noise in a bench report.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

// Loads the TypeScript bench in this process, so one signal handler owns all clean-up.
register();
const { PEER_PACKAGES } = await import('../bench/peers.ts');
const { abortBench, runBench } = await import('../bench/run.ts');

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let rgw;
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]]) {
  process.on(signal, () => {
    console.error(`\n# ${signal}: stopping the tools and RGW`);
    abortBench();
    rgw?.stop();
    process.exit(code);
  });
}

let exitCode = 0;
try {
  ensureDebianPackages(PEER_PACKAGES);
  const t0 = Date.now();
  // Offsite is timed as users run it: the compiled bin/offsite.
  const build = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('npm run build failed');
  // The bluestore file is sparse: big enough for the largest object of the run, 10 GiB at least
  // (BENCH_SIZE_MIB=10240 checks that memory stays bounded for 10 GiB transfers).
  const largest = Number(process.env.BENCH_SIZE_MIB ?? 1024) * 1024 * 1024;
  process.env.BLUESTORE_BYTES ??= String(Math.max(10 * 1024 ** 3, Math.ceil(largest * 2.5)));
  rgw = await startRgw({ objectStore: 'bluestore' });
  const version = spawnSync('radosgw', ['--version'], { encoding: 'utf8' }).stdout.match(/ceph version (\S+)/)?.[1] ?? 'unknown';
  console.error(`# RGW ${version} (bluestore) up at ${rgw.endpoint} in ${Date.now() - t0} ms`);
  await runBench({
    target: { endpoint: rgw.endpoint, region: 'us-east-1', accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey, bucket: `bench-${randomBytes(4).toString('hex')}` },
    server: `Ceph RGW ${version}, bluestore, ${rgw.endpoint}`,
  });
} catch (e) {
  console.error(e?.name === 'BenchFailure' ? `bench failed: ${e.message}` : e);
  exitCode = 1;
} finally {
  rgw?.stop();
}
process.exit(exitCode);
