// How to run the peer tools against the bench's S3 target: the binary, an isolated environment
// (no user profile, no stray AWS_/RCLONE_ variables, AWS_CA_BUNDLE removed: the endpoint is plain
// http and rclone 1.60 refuses to start with it set), and the command lines the scenarios use.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from './measure.js';
import type { S3Target } from './types.js';

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

/** aws-cli with its defaults (8 MiB parts, 10 requests in parallel, ranged parallel GETs). */
export function awsCli(target: S3Target, scratchDir: string): Tool {
  const env = awsEnv(target, scratchDir);
  const common = ['--endpoint-url', target.endpoint, '--no-progress', '--only-show-errors'];
  return {
    name: 'aws-cli',
    version: versionOf(AWS_BIN, ['--version'], env),
    upload: (file, key) => ({ cmd: AWS_BIN, args: ['s3', 'cp', ...common, file, `s3://${target.bucket}/${key}`], env }),
    download: (key, file) => ({ cmd: AWS_BIN, args: ['s3', 'cp', ...common, `s3://${target.bucket}/${key}`, file], env }),
  };
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
