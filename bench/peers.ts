// How to run the peer tools against the bench's S3 target: the binary, an isolated environment
// (no user profile, no stray AWS_/RCLONE_ variables, AWS_CA_BUNDLE removed: the endpoint is plain
// http and rclone 1.60 refuses to start with it set), and the command lines the scenarios use.
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { copyFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { runQuiet, type Command } from './measure.js';
import type { BenchBucket } from './target.js';
import { BenchFailure, type S3Target } from './types.js';

/** Debian's binaries: `aws` on PATH may be a pip aws-cli 1.x shim; the bench wants awscli 2. */
export const AWS_BIN = process.env.BENCH_AWS_BIN ?? '/usr/bin/aws';
export const RCLONE_BIN = process.env.BENCH_RCLONE_BIN ?? '/usr/bin/rclone';
export const RESTIC_BIN = process.env.BENCH_RESTIC_BIN ?? '/usr/bin/restic';

/** Debian packages that provide the commands above (for ensureDebianPackages in run-bench.mjs). */
export const PEER_PACKAGES: Record<string, string[]> = {
  '/usr/bin/aws': ['awscli'],
  '/usr/bin/rclone': ['rclone'],
  '/usr/bin/restic': ['restic'],
  '/usr/bin/time': ['time'],
};

/** process.env without anything that could point a tool elsewhere or change its behaviour. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(AWS_|RCLONE_)/.test(k)) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

/**
 * bin/offsite runs as a user runs it, through its shebang (`env node` with its V8 flags), so the
 * `node` found first on PATH must be the one running the bench.
 */
export function withNodeOnPath(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...env, PATH: `${path.dirname(process.execPath)}${path.delimiter}${env.PATH ?? ''}` };
}

/** Environment credentials for the target, with the shared config files pointed at nothing. */
export function awsEnv(target: S3Target, scratchDir: string): NodeJS.ProcessEnv {
  return cleanEnv({
    AWS_ACCESS_KEY_ID: target.accessKeyId,
    AWS_SECRET_ACCESS_KEY: target.secretAccessKey,
    AWS_DEFAULT_REGION: target.region,
    AWS_REGION: target.region,
    AWS_CONFIG_FILE: path.join(scratchDir, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(scratchDir, 'no-aws-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_PAGER: '',
  });
}

export function versionOf(bin: string, args: string[], env: NodeJS.ProcessEnv): string {
  const r = spawnSync(bin, args, { env, encoding: 'utf8' });
  return (r.stdout || r.stderr || '').trim().split('\n')[0] || 'unknown';
}

/** A tool the bench times: Offsite itself or a peer. */
export interface Tool {
  name: string;
  /** First line of its own version output. */
  version: string;
  /** Local file -> s3://bucket/key. */
  upload(file: string, key: string): Command;
  /** s3://bucket/key -> local file. */
  download(key: string, file: string): Command;
}

/**
 * aws-cli with its defaults (8 MiB parts, 10 requests in parallel, ranged parallel GETs): Debian's
 * 2.x build (`aws-cli-2`, /usr/bin/aws), or the pip-installed 1.x (`aws-cli-1`, s3transfer with 10
 * threads, what many users have, and the faster uploader here: see awsCli1Bin).
 */
export function awsCli(target: S3Target, scratchDir: string, build: { name: 'aws-cli-1' | 'aws-cli-2'; bin: string } = { name: 'aws-cli-2', bin: AWS_BIN }): Tool {
  const env = awsEnv(target, scratchDir);
  const common = ['--endpoint-url', target.endpoint, '--no-progress', '--only-show-errors'];
  return {
    name: build.name,
    version: versionOf(build.bin, ['--version'], env),
    upload: (file, key) => ({ cmd: build.bin, args: ['s3', 'cp', ...common, file, `s3://${target.bucket}/${key}`], env }),
    download: (key, file) => ({ cmd: build.bin, args: ['s3', 'cp', ...common, `s3://${target.bucket}/${key}`, file], env }),
  };
}

/**
 * The pip aws-cli 1.x: $BENCH_AWS1_BIN, else an `aws` on PATH that is 1.x, else one installed as a
 * user would (`pip install awscli` into a virtual environment under ~/.cache/offsite-bench), when
 * the package registry serves it. Undefined (and why) when there is none to be had.
 */
export function awsCli1Bin(log: (line: string) => void): string | undefined {
  const isV1 = (bin: string) => /^aws-cli\/1\./.test(versionOf(bin, ['--version'], cleanEnv())) ? bin : undefined;
  if (process.env.BENCH_AWS1_BIN) return isV1(process.env.BENCH_AWS1_BIN) ?? fail(`BENCH_AWS1_BIN=${process.env.BENCH_AWS1_BIN} is not aws-cli 1.x`);
  const onPath = spawnSync('sh', ['-c', 'command -v aws'], { encoding: 'utf8' }).stdout.trim();
  if (onPath && onPath !== AWS_BIN && isV1(onPath)) return onPath;
  const venv = path.join(process.env.HOME ?? '/root', '.cache', 'offsite-bench', 'awscli1');
  const bin = path.join(venv, 'bin', 'aws');
  if (existsSync(bin) && isV1(bin)) return bin;
  log(`installing the pip aws-cli 1.x into ${venv} (python3 -m venv, pip install "awscli<2")`);
  const steps: Array<[string, string[]]> = [
    ['python3', ['-m', 'venv', venv]],
    [path.join(venv, 'bin', 'pip'), ['install', '--quiet', 'awscli<2']],
  ];
  for (const [cmd, args] of steps) {
    const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
    if (r.status !== 0) {
      log(`pip aws-cli 1.x not available (${cmd} ${args.join(' ')}: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}); timing without it`);
      return undefined;
    }
  }
  return isV1(bin) ?? fail(`${bin} installed, but it is not aws-cli 1.x`);
}

function fail(message: string): never {
  throw new BenchFailure(message);
}

/** rclone's config file (remote `bench:`) and environment for the target, written into scratchDir. */
export function rcloneSetup(target: S3Target, scratchDir: string): { configFile: string; env: NodeJS.ProcessEnv; command: (args: string[]) => Command; remote: (key: string) => string } {
  const configFile = path.join(scratchDir, 'rclone.conf');
  writeFileSync(
    configFile,
    [
      '[bench]',
      'type = s3',
      'provider = Ceph',
      'env_auth = false',
      `endpoint = ${target.endpoint}`,
      `region = ${target.region}`,
      `access_key_id = ${target.accessKeyId}`,
      `secret_access_key = ${target.secretAccessKey}`,
      'force_path_style = true',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const env = cleanEnv({ RCLONE_CONFIG: configFile });
  const command = (args: string[]): Command => ({ cmd: RCLONE_BIN, args: ['--config', configFile, ...args], env });
  const remote = (key: string) => `bench:${target.bucket}/${key}`;
  return { configFile, env, command, remote };
}

/** rclone with its defaults (5 MiB parts, 4 uploads in parallel, 4 download streams). */
export function rclone(target: S3Target, scratchDir: string): Tool {
  const { env, command, remote } = rcloneSetup(target, scratchDir);
  return {
    name: 'rclone',
    version: versionOf(RCLONE_BIN, ['version'], env),
    upload: (file, key) => command(['copyto', file, remote(key)]),
    download: (key, file) => command(['copyto', remote(key), file]),
  };
}

/**
 * One untimed upload and download of `file` with Debian's aws-cli, then deleted: a fresh
 * bluestore writes its first GiB slower, and whichever tool went first in a scenario paid for it
 * (Offsite went first in round 1 and took 10.5-10.7 s for the SQLite backup it made in 7.1-7.6 s
 * in round 2; 176 MB/s up in round 1 of large-file, 283 in round 2).
 */
export async function warmUpServer(
  target: S3Target,
  bucket: BenchBucket,
  scratchDir: string,
  file: string,
  log: (line: string) => void,
  opts: { live?: boolean } = {},
): Promise<void> {
  const prefix = 'warm-up/';
  const url = `s3://${target.bucket}/${prefix}${path.basename(file)}`;
  const back = path.join(scratchDir, 'warm-up.download');
  // A file that is being written (the live database) makes aws-cli fail its upload ("file
  // changed"): its bytes are copied aside first, which is all a warm-up needs of them.
  const still = opts.live ? path.join(scratchDir, 'warm-up.source') : file;
  const aws = (...args: string[]): Command => ({ cmd: AWS_BIN, args: ['--endpoint-url', target.endpoint, 's3', 'cp', '--no-progress', '--only-show-errors', ...args], env: awsEnv(target, scratchDir) });
  try {
    if (opts.live) await copyFile(file, still);
    await runQuiet(aws(still, url), 'warm-up upload');
    await runQuiet(aws(url, back), 'warm-up download');
    log(`warm-up: ${path.basename(file)} up and down once with aws s3 cp (untimed), then deleted`);
  } catch (e) {
    log(`warm-up failed (the rounds still run): ${(e as Error).message.split('\n')[0]}`);
  } finally {
    await bucket.deletePrefix(prefix);
    await rm(back, { force: true });
    if (opts.live) await rm(still, { force: true });
  }
}
