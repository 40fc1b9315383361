// Shared test helpers: the RGW started by scripts/run-tests.mjs, a bucket per test file, temp dirs.
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { S3Storage, type S3StorageOptions } from '../../src/storage/index.js';

export interface S3TestServer {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/** The RGW of this run. Tests never skip: run them through `npm test`, which starts it. */
export function s3TestServer(): S3TestServer {
  const endpoint = process.env.OFFSITE_TEST_S3_ENDPOINT;
  const accessKeyId = process.env.OFFSITE_TEST_S3_ACCESS_KEY_ID;
  const secretAccessKey = process.env.OFFSITE_TEST_S3_SECRET_ACCESS_KEY;
  if (!endpoint || !accessKeyId || !secretAccessKey) {
    throw new Error('no test S3 server: run the tests with `npm test` (or node scripts/run-tests.mjs FILTER), which starts Ceph RGW');
  }
  return { endpoint, accessKeyId, secretAccessKey };
}

/** Environment for a child process (CLI, concurrent writers) to reach the test RGW. */
export function s3ChildEnv(): Record<string, string> {
  const s = s3TestServer();
  return { AWS_ACCESS_KEY_ID: s.accessKeyId, AWS_SECRET_ACCESS_KEY: s.secretAccessKey, AWS_REGION: 'us-east-1' };
}

export function adminClient(): S3Client {
  const s = s3TestServer();
  return new S3Client({
    endpoint: s.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** Creates a fresh bucket with a unique name (S3 naming rules: lower case, 3-63 chars). */
export async function createTestBucket(label = 't'): Promise<string> {
  const name = `${label.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 40)}-${randomBytes(5).toString('hex')}`;
  const client = adminClient();
  try {
    await client.send(new CreateBucketCommand({ Bucket: name }));
  } finally {
    client.destroy();
  }
  return name;
}

/** The s3:// URL of a test bucket (endpoint and path style in the query). */
export function s3Url(bucket: string, prefix = ''): string {
  return `s3://${bucket}/${prefix}?endpoint=${encodeURIComponent(s3TestServer().endpoint)}&path_style=true&region=us-east-1`;
}

/** An S3Storage on the test server with explicit test credentials. */
export function openTestS3(bucket: string, opts: Partial<S3StorageOptions> = {}): S3Storage {
  const s = s3TestServer();
  return new S3Storage({
    bucket,
    endpoint: s.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
    ...opts,
  });
}

/**
 * A temp directory removed when the test process exits (not by an `after` hook: called from a
 * `before` hook, that would run before the tests that use it).
 */
export async function tempDir(label = 'offsite-test-'): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), label));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
