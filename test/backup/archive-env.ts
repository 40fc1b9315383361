// Shared set-up for the archive tests that mount attacks on the bucket: a config on a fresh RGW
// bucket, the CLI run against it, and what an attacker with write access to the bucket does
// (replace an object, rewrite a manifest).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PutBucketPolicyCommand } from '@aws-sdk/client-s3';
import { loadArchiveConfig, type ArchiveConfig } from '../../src/backup/archive/index.js';
import { packDirectory } from '../../src/codec/index.js';
import { openStorage, type Storage } from '../../src/storage/index.js';
import { runCli, type CliResult } from '../support/cli.js';
import { adminClient, createTestBucket, s3Url, tempDir } from '../support/env.js';
import { readAll, sha256 } from '../support/data.js';

export interface ArchiveEnv {
  dir: string;
  root: string;
  bucket: string;
  configFile: string;
  config: ArchiveConfig;
  storage: Storage;
  /** `offsite archive --config FILE ARGS...` in `dir`. */
  cli(args: string[], env?: Record<string, string | undefined>): Promise<CliResult>;
  /** The same with `offsite --json`. */
  json(args: string[], env?: Record<string, string | undefined>): Promise<CliResult>;
}

export async function archiveEnv(label: string, extraToml = '', env: Record<string, string | undefined> = {}): Promise<ArchiveEnv> {
  const dir = await tempDir(`offsite-${label}-`);
  const root = path.join(dir, 'sessions');
  const bucket = await createTestBucket(label);
  const configFile = path.join(dir, 'offsite-archive.toml');
  await writeFile(configFile, `[destination]\nurl = "${s3Url(bucket)}"\n[sessions]\nroot = "sessions"\n[upload]\npart_size_mib = 5\n[catalog]\npath = "catalog.db"\n${extraToml}`);
  const config = await loadArchiveConfig(configFile, {}, { ...process.env, ...env });
  const storage = openStorage(config.destinationUrl, { partSize: 5 * 1024 * 1024 });
  return {
    dir,
    root,
    bucket,
    configFile,
    config,
    storage,
    cli: (args, more = {}) => runCli(['archive', '--config', configFile, ...args], { cwd: dir, env: { ...env, ...more } }),
    json: (args, more = {}) => runCli(['--json', 'archive', '--config', configFile, ...args], { cwd: dir, env: { ...env, ...more } }),
  };
}

/** The JSON object stored at `key`. */
export async function getJson(storage: Storage, key: string): Promise<Record<string, unknown>> {
  return JSON.parse((await readAll((await storage.get(key)).body as AsyncIterable<Buffer>)).toString('utf8')) as Record<string, unknown>;
}

export async function putJson(storage: Storage, key: string, value: unknown): Promise<void> {
  await storage.put(key, `${JSON.stringify(value, null, 1)}\n`, { contentType: 'application/json' });
}

/**
 * What an attacker who can write to the bucket builds: a plain tar of `dir/name/` and the file
 * list Offsite would write for it (the same packer Offsite uses).
 */
export async function attackerTar(dir: string, name: string): Promise<{ bytes: Buffer; sha256: string; files: unknown[] }> {
  const packed = packDirectory(dir, name);
  const bytes = await readAll(packed.stream);
  return { bytes, sha256: sha256(bytes), files: await packed.entries };
}

/**
 * Replaces the archive at `key` with `tar` and rewrites its manifest to describe it as a plain
 * tar (no encryption, no compression), hashes matching: the attack of the security issue.
 * `mac` is left as it was (the attacker cannot compute it) unless `dropMac`.
 */
export async function replaceWithPlainTar(storage: Storage, key: string, tar: { bytes: Buffer; sha256: string; files: unknown[] }, opts: { dropMac?: boolean } = {}): Promise<void> {
  await storage.put(key, tar.bytes, { contentType: 'application/x-tar' });
  const head = await storage.head(key);
  const manifestKey = `${key}.manifest.json`;
  const m = await getJson(storage, manifestKey);
  const files = tar.files as Array<{ type: string; size: number }>;
  const rewritten: Record<string, unknown> = {
    ...m,
    encryption: null,
    compression: 'none',
    object: { ...(m.object as object), size: tar.bytes.length, sha256: tar.sha256, etag: head.etag },
    source: { ...(m.source as object), files: files.filter((f) => f.type !== 'directory').length, bytes: files.reduce((n, f) => n + (f.type === 'file' ? f.size : 0), 0) },
    files,
  };
  if (opts.dropMac) delete rewritten.mac;
  await putJson(storage, manifestKey, rewritten);
}

/** Every path under `dir` (relative), or [] when it does not exist. */
export async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return;
      throw e;
    }
    for (const name of names.sort()) {
      const r = rel ? `${rel}/${name}` : name;
      out.push(r);
      await walk(path.join(d, name), r);
    }
  };
  await walk(dir, '');
  return out;
}

/** The NDJSON events of a --json run, and its final `result` line. */
export function jsonEvents(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export interface RgwUser {
  uid: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/** A second S3 user on the test RGW (radosgw-admin with the run's ceph.conf). */
export function createRgwUser(label = 'limited'): RgwUser {
  const rgwDir = process.env.OFFSITE_TEST_RGW_DIR;
  if (!rgwDir) throw new Error('OFFSITE_TEST_RGW_DIR is not set: run the tests with node scripts/run-tests.mjs');
  const uid = `${label}-${randomBytes(4).toString('hex')}`;
  const user = { uid, accessKeyId: `LIM${randomBytes(8).toString('hex').toUpperCase()}`, secretAccessKey: randomBytes(20).toString('base64url') };
  execFileSync('radosgw-admin', ['user', 'create', `--uid=${uid}`, `--display-name=${uid}`, `--access-key=${user.accessKeyId}`, `--secret-key=${user.secretAccessKey}`], {
    env: { ...process.env, CEPH_CONF: path.join(rgwDir, 'ceph', 'ceph.conf') },
    stdio: 'ignore',
  });
  return user;
}

/** A bucket policy: `user` may do everything on `bucket` except the `denied` actions. */
export async function allowAllBut(bucket: string, user: RgwUser, denied: string[]): Promise<void> {
  const principal = { AWS: [`arn:aws:iam:::user/${user.uid}`] };
  const resources = [`arn:aws:s3:::${bucket}`, `arn:aws:s3:::${bucket}/*`];
  const policy = {
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Allow', Principal: principal, Action: ['s3:*'], Resource: resources },
      { Effect: 'Deny', Principal: principal, Action: denied, Resource: resources },
    ],
  };
  const client = adminClient();
  try {
    await client.send(new PutBucketPolicyCommand({ Bucket: bucket, Policy: JSON.stringify(policy) }));
  } finally {
    client.destroy();
  }
}
