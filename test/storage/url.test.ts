// Storage URLs: what each form opens, and bad URLs refused with a message that shows good ones.
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { isStorageError, LocalStorage, openStorage, parseStorageUrl, S3Storage, splitObjectUrl, splitPrefixUrl } from '../../src/storage/index.js';
import { tempDir } from '../support/env.js';

describe('storage URLs', () => {
  it('parses local paths and file URLs', () => {
    assert.deepEqual(parseStorageUrl('/srv/backups'), { kind: 'local', root: '/srv/backups' });
    assert.deepEqual(parseStorageUrl('file:///srv/backups'), { kind: 'local', root: '/srv/backups' });
    assert.deepEqual(parseStorageUrl('./rel'), { kind: 'local', root: path.resolve('rel') });
    assert.ok(openStorage('/tmp/x') instanceof LocalStorage);
  });

  it('parses s3 URLs with their parameters', () => {
    const saved = { e: process.env.AWS_ENDPOINT_URL_S3, f: process.env.AWS_ENDPOINT_URL };
    delete process.env.AWS_ENDPOINT_URL_S3;
    delete process.env.AWS_ENDPOINT_URL;
    try {
      assert.deepEqual(parseStorageUrl('s3://my-bucket'), { kind: 's3', bucket: 'my-bucket', forcePathStyle: false });
      assert.deepEqual(parseStorageUrl('s3://my-bucket/a/b?region=eu-west-1&part_size=32&concurrency=8&max_attempts=3&profile=prod'), {
        kind: 's3',
        bucket: 'my-bucket',
        prefix: 'a/b/',
        region: 'eu-west-1',
        forcePathStyle: false,
        profile: 'prod',
        partSize: 32 * 1024 * 1024,
        concurrency: 8,
        maxAttempts: 3,
      });
      const minio = parseStorageUrl('s3://bkt/p/?endpoint=http://127.0.0.1:9000');
      assert.equal(minio.kind === 's3' && minio.forcePathStyle, true, 'path style by default with an endpoint');
      const vhost = parseStorageUrl('s3://bkt?endpoint=https://s3.example.com&path_style=false');
      assert.equal(vhost.kind === 's3' && vhost.forcePathStyle, false);
      process.env.AWS_ENDPOINT_URL_S3 = 'http://10.0.0.1:7480';
      const fromEnv = parseStorageUrl('s3://bkt');
      assert.equal(fromEnv.kind === 's3' && fromEnv.endpoint, 'http://10.0.0.1:7480');
    } finally {
      if (saved.e === undefined) delete process.env.AWS_ENDPOINT_URL_S3;
      else process.env.AWS_ENDPOINT_URL_S3 = saved.e;
      if (saved.f !== undefined) process.env.AWS_ENDPOINT_URL = saved.f;
    }
    const s = openStorage('s3://bkt/p?endpoint=http://127.0.0.1:1&region=us-east-1');
    assert.ok(s instanceof S3Storage);
    assert.equal(s.prefix, 'p/');
    void s.close();
  });

  it('refuses bad URLs with a message that shows good ones', () => {
    const cases: Array<[string, RegExp]> = [
      ['', /empty/],
      ['ftp://x/y', /unknown scheme "ftp:"/],
      ['file://relative/path', /absolute path/],
      ['s3://', /bucket name is missing|not a well-formed/],
      ['s3://Bad_Bucket!/x', /not a valid bucket name|not a well-formed/],
      ['s3://bkt?endpoint=localhost:9000', /endpoint .* must be an http/],
      ['s3://bkt?path_style=maybe', /path_style must be true or false/],
      ['s3://bkt?part_size=0', /part_size must be a positive whole number/],
      ['s3://bkt?regoin=eu', /unknown parameter "regoin"/],
      ['s3://AKIAXXXX:topsecret@bkt/k', /credentials do not belong in the URL/],
    ];
    for (const [url, reason] of cases) {
      assert.throws(
        () => parseStorageUrl(url),
        (e: unknown) => {
          assert.ok(isStorageError(e, 'InvalidUrl'), `${url}: ${String(e)}`);
          assert.match(e.message, reason, url);
          assert.match(e.message, /Examples: .*s3:\/\/my-bucket/, url);
          assert.ok(!e.message.includes('topsecret'), 'a secret in a URL is never echoed');
          return true;
        },
      );
    }
  });

  it('splits object and prefix URLs', async () => {
    assert.deepEqual(splitObjectUrl('s3://bkt/dir/f%20g.txt?region=x'), { storageUrl: 's3://bkt?region=x', key: 'dir/f g.txt' });
    assert.throws(() => splitObjectUrl('s3://bkt/dir/'), /not an object/);
    assert.deepEqual(splitPrefixUrl('s3://bkt/logs/2026/'), { storageUrl: 's3://bkt', prefix: 'logs/2026/' });
    assert.deepEqual(splitPrefixUrl('s3://bkt'), { storageUrl: 's3://bkt', prefix: '' });

    const dir = await tempDir();
    // A new bucket: its root is the first directory the path creates.
    assert.deepEqual(splitObjectUrl(path.join(dir, 'bucket/a/b.txt')), { storageUrl: path.join(dir, 'bucket'), key: 'a/b.txt' });
    // An existing bucket (it holds .offsite-local/) is found from below.
    await mkdir(path.join(dir, 'bucket/.offsite-local'), { recursive: true });
    await mkdir(path.join(dir, 'bucket/a/deeper'), { recursive: true });
    assert.deepEqual(splitObjectUrl(path.join(dir, 'bucket/a/deeper/c.txt')), { storageUrl: path.join(dir, 'bucket'), key: 'a/deeper/c.txt' });
    assert.deepEqual(splitPrefixUrl(path.join(dir, 'bucket/a')), { storageUrl: path.join(dir, 'bucket'), prefix: 'a/' });
    assert.deepEqual(splitPrefixUrl(path.join(dir, 'bucket')), { storageUrl: path.join(dir, 'bucket'), prefix: '' });
    // A plain existing directory: the file's parent.
    await mkdir(path.join(dir, 'plain'));
    assert.deepEqual(splitObjectUrl(path.join(dir, 'plain/f.txt')), { storageUrl: path.join(dir, 'plain'), key: 'f.txt' });
  });
});
