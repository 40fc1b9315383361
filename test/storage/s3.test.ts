// The S3 adapter against the real Ceph RADOS Gateway started by `npm test`: the shared contract
// suite unchanged, then what only S3 has (credentials, buckets, retries, presigned URLs).
// The retry tests put a FAKE in front of the real server: test/support/fault-proxy.ts, a proxy
// that injects 503 SlowDown, connection resets and forced 403s, because RGW does none on demand.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { Readable } from 'node:stream';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { describe, it, before, after } from 'node:test';
import { multipartPlan, openStorage, type Storage } from '../../src/storage/index.js';
import { pseudoRandomStream, readAll, sha256, sha256OfStream } from '../support/data.js';
import { adminClient, createTestBucket, openTestS3, s3ChildEnv, s3TestServer, s3Url } from '../support/env.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { storageContract } from './contract.js';
import { rejectsWith } from '../support/assert.js';

storageContract('s3 on Ceph RGW', async () => {
  const bucket = await createTestBucket('contract');
  return { storage: openTestS3(bucket), url: s3Url(bucket), childEnv: s3ChildEnv() };
});

/** A TCP port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe('s3 adapter: errors a person can act on', () => {
  let bucket: string;
  before(async () => {
    bucket = await createTestBucket('errors');
  });

  it('a wrong secret is InvalidCredentials, not retried, and the secret is not in the message', async () => {
    const s = openTestS3(bucket, { credentials: { accessKeyId: s3TestServer().accessKeyId, secretAccessKey: 'wrong-secret-value' } });
    const e = await rejectsWith(s.put('k', 'x'), 'InvalidCredentials');
    assert.match(e.message, /AWS_SECRET_ACCESS_KEY|secret/i);
    assert.ok(!e.message.includes('wrong-secret-value'), 'secret leaked into the message');
    assert.equal(s.stats().totalRequests, 1, 'a 403 must not be retried');
    await rejectsWith(s.head('k'), 'InvalidCredentials');
    await s.close();
  });

  it('an unknown access key is InvalidCredentials', async () => {
    const s = openTestS3(bucket, { credentials: { accessKeyId: 'NOSUCHKEY0000000', secretAccessKey: 'x' } });
    await rejectsWith(s.get('k'), 'InvalidCredentials');
    await s.close();
  });

  it('a missing bucket is NoSuchBucket for put, get, head and list, and says how to create it', async () => {
    const s = openTestS3('no-such-bucket-offsite-test');
    const e = await rejectsWith(s.put('k', 'x'), 'NoSuchBucket');
    assert.match(e.message, /no-such-bucket-offsite-test/);
    assert.match(e.message, /create/i);
    await rejectsWith(s.get('k'), 'NoSuchBucket');
    await rejectsWith(s.head('k'), 'NoSuchBucket');
    await rejectsWith((async () => {
      for await (const _ of s.list()) break;
    })(), 'NoSuchBucket');
    await s.close();
  });

  it('connection refused is Transient after exactly maxAttempts tries', async () => {
    const port = await closedPort();
    const s = openTestS3(bucket, { endpoint: `http://127.0.0.1:${port}`, maxAttempts: 3 });
    const e = await rejectsWith(s.put('k', 'x'), 'Transient');
    assert.match(e.message, /127\.0\.0\.1/);
    assert.equal(s.stats().requests.PutObject, 3, 'bounded retries: 3 attempts');
    await s.close();
  });

  it('openStorage() reaches the same bucket by URL with credentials from the environment', async () => {
    const env = s3ChildEnv();
    const saved = { ...process.env };
    Object.assign(process.env, env);
    try {
      const byUrl = openStorage(s3Url(bucket, 'via-url/'));
      await byUrl.put('k.txt', 'hello');
      const direct = openTestS3(bucket);
      assert.equal((await readAll((await direct.get('via-url/k.txt')).body)).toString(), 'hello');
      await byUrl.close();
      await direct.close();
    } finally {
      process.env = saved;
    }
  });
});

describe('s3 adapter: transient faults (through a FAKE fault-injecting proxy in front of RGW)', () => {
  let bucket: string;
  let proxy: FaultProxy;
  let s: Storage;
  before(async () => {
    bucket = await createTestBucket('faults');
    proxy = await FaultProxy.start(s3TestServer().endpoint);
    s = openTestS3(bucket, { endpoint: proxy.endpoint, maxAttempts: 5, partSize: 5 * 1024 * 1024 });
  });
  after(async () => {
    await s.close();
    await proxy.close();
  });

  it('503 SlowDown twice, then success: the put is retried and lands', async () => {
    const before = s.stats().requests.PutObject ?? 0;
    proxy.inject({ method: 'PUT', fault: { kind: 'status', status: 503, code: 'SlowDown' }, times: 2 });
    await s.put('slow.txt', 'content after slowdown');
    assert.equal(proxy.injected, 2);
    assert.equal((s.stats().requests.PutObject ?? 0) - before, 3, 'two retries and the success');
    assert.equal((await readAll((await s.get('slow.txt')).body)).toString(), 'content after slowdown');
  });

  it('a connection reset before the response is retried', async () => {
    const injectedBefore = proxy.injected;
    proxy.inject({ method: 'GET', match: (p) => p.includes('slow.txt'), fault: { kind: 'reset' }, times: 1 });
    const got = await s.get('slow.txt');
    assert.equal((await readAll(got.body)).toString(), 'content after slowdown');
    assert.equal(proxy.injected - injectedBefore, 1);
  });

  it('a connection dropped in the middle of a download resumes with a Range request, bytes intact', async () => {
    const size = 12 * 1024 * 1024;
    const expected = await sha256OfStream(pseudoRandomStream(size, 'mid-body'));
    await s.put('big.bin', pseudoRandomStream(size, 'mid-body'));
    const seenBefore = proxy.seen.length;
    proxy.inject({ method: 'GET', match: (p) => p.includes('big.bin'), fault: { kind: 'reset-mid-body', afterBytes: 3 * 1024 * 1024 }, times: 1 });
    const got = await s.get('big.bin');
    assert.deepEqual(await sha256OfStream(got.body), expected);
    const gets = proxy.seen.slice(seenBefore).filter((l) => l.startsWith('GET') && l.includes('big.bin'));
    assert.ok(gets.length >= 2, `expected a resumed GET, saw ${gets.join(', ')}`);
  });

  it('a multipart upload survives 503s on some parts', async () => {
    const size = 16 * 1024 * 1024;
    proxy.inject({ method: 'PUT', match: (p) => p.includes('partNumber=2'), fault: { kind: 'status', status: 503, code: 'SlowDown' }, times: 2 });
    proxy.inject({ method: 'PUT', match: (p) => p.includes('partNumber=3'), fault: { kind: 'reset' }, times: 1 });
    await s.put('multi.bin', pseudoRandomStream(size, 'multi'));
    const got = await s.get('multi.bin');
    assert.deepEqual(await sha256OfStream(got.body), await sha256OfStream(pseudoRandomStream(size, 'multi')));
  });

  it('added latency is tolerated', async () => {
    proxy.inject({ fault: { kind: 'delay', ms: 300 }, times: 1 });
    await s.put('late.txt', 'late');
    assert.equal((await s.head('late.txt')).size, 4);
  });

  it('a server that stops answering is abandoned after the idle timeout and the request retried', async () => {
    const impatient = openTestS3(bucket, { endpoint: proxy.endpoint, maxAttempts: 3, idleTimeoutMs: 400 });
    try {
      const injectedBefore = proxy.injected;
      proxy.inject({ method: 'PUT', match: (p) => p.includes('hung.txt'), fault: { kind: 'stall' }, times: 1 });
      await impatient.put('hung.txt', 'answered the second time');
      assert.equal(proxy.injected - injectedBefore, 1);
      assert.equal(impatient.stats().requests.PutObject, 2, 'the stalled attempt and the retry');
      assert.equal((await readAll((await s.get('hung.txt')).body)).toString(), 'answered the second time');
    } finally {
      await impatient.close();
    }
  });

  it('a 403 AccessDenied is not retried and says what to check', async () => {
    const before = s.stats().requests.GetObject ?? 0;
    proxy.inject({ method: 'GET', fault: { kind: 'status', status: 403, code: 'AccessDenied' }, times: 5 });
    const e = await rejectsWith(s.get('slow.txt'), 'AccessDenied');
    assert.match(e.message, /permission|polic/i);
    assert.equal((s.stats().requests.GetObject ?? 0) - before, 1, 'exactly one attempt');
    proxy.clear();
  });

  it('503 on every attempt ends as Transient after maxAttempts', async () => {
    const before = s.stats().requests.HeadObject ?? 0;
    proxy.inject({ method: 'HEAD', fault: { kind: 'status', status: 503, code: 'SlowDown' }, times: 100 });
    await rejectsWith(s.head('slow.txt'), 'Transient');
    assert.equal((s.stats().requests.HeadObject ?? 0) - before, 5);
    proxy.clear();
  });
});

describe('s3 adapter: presigned URLs and multipart details', () => {
  let bucket: string;
  let s: Storage;
  before(async () => {
    bucket = await createTestBucket('presign');
    s = openTestS3(bucket);
  });
  after(() => s.close());

  it('a presigned PUT uploads and a presigned GET downloads without credentials', async () => {
    assert.ok(s.capabilities.presign && s.presign);
    const putUrl = await s.presign('shared/file.txt', { method: 'PUT', expiresIn: 300 });
    const put = await fetch(putUrl, { method: 'PUT', body: 'shared by url' });
    assert.equal(put.status, 200);
    const getUrl = await s.presign('shared/file.txt', { method: 'GET', expiresIn: 300 });
    const got = await fetch(getUrl);
    assert.equal(got.status, 200);
    assert.equal(await got.text(), 'shared by url');
    const tampered = getUrl.replace(/X-Amz-Signature=([0-9a-f])/, (_m, c: string) => `X-Amz-Signature=${c === '0' ? '1' : '0'}`);
    assert.notEqual(tampered, getUrl);
    assert.equal((await fetch(tampered)).status, 403);
  });

  it('a multipart object gets a non-empty ETag and keeps its tags (RGW quirks handled)', async () => {
    const size = 11 * 1024 * 1024;
    const small = openTestS3(bucket, { partSize: 5 * 1024 * 1024 });
    const res = await small.put('mp.bin', pseudoRandomStream(size, 'mp'), { tags: { kind: 'test' } });
    assert.match(res.etag, /^[0-9a-f]{32}-3$/);
    const head = await small.head('mp.bin');
    assert.equal(head.etag, res.etag);
    assert.deepEqual(await small.getTags('mp.bin'), { kind: 'test' });
    assert.equal(small.stats().requests.UploadPart, 3);
    await small.close();
  });

  it('a prefix-scoped storage sees only its own keys', async () => {
    const a = openTestS3(bucket, { prefix: 'tenant-a/' });
    await a.put('x.txt', 'a');
    await s.put('outside.txt', 'o');
    const keys: string[] = [];
    for await (const e of a.list()) if (e.type === 'object') keys.push(e.key);
    assert.deepEqual(keys, ['x.txt']);
    assert.equal(sha256(await readAll((await s.get('tenant-a/x.txt')).body)), sha256('a'));
    await a.close();
  });
});

describe('s3 adapter: streamed uploads', () => {
  const MIB = 1024 * 1024;
  let bucket: string;
  before(async () => {
    bucket = await createTestBucket('upload');
  });

  it('a stream of exactly one part is one PutObject; one byte more is a two-part upload', async () => {
    const s = openTestS3(bucket, { partSize: 5 * MIB });
    await s.put('one-part.bin', pseudoRandomStream(5 * MIB, 'one'));
    assert.deepEqual(s.stats().requests, { PutObject: 1 });
    const two = await s.put('two-parts.bin', pseudoRandomStream(5 * MIB + 1, 'two'));
    assert.equal(s.stats().requests.UploadPart, 2);
    assert.match(two.etag, /-2$/);
    assert.deepEqual(await sha256OfStream((await s.get('two-parts.bin')).body), await sha256OfStream(pseudoRandomStream(5 * MIB + 1, 'two')));
    await s.close();
  });

  it('a size hint past 9,000 parts grows the parts (S3 allows 10,000) and keeps memory near partSize x concurrency', async () => {
    // 1 TiB at 8 MiB x 4: 117 MiB parts, one in flight.
    assert.deepEqual(multipartPlan(undefined, 8 * MIB, 4), { partSize: 8 * MIB, queueSize: 4 });
    assert.deepEqual(multipartPlan(9000 * 8 * MIB, 8 * MIB, 4), { partSize: 8 * MIB, queueSize: 4 });
    assert.deepEqual(multipartPlan(9000 * 8 * MIB + 1, 8 * MIB, 4), { partSize: 9 * MIB, queueSize: 3 });
    const tib = 1024 * 1024 * MIB;
    const big = multipartPlan(tib, 8 * MIB, 4);
    assert.equal(big.partSize, 117 * MIB);
    assert.equal(big.queueSize, 1);
    assert.ok(Math.ceil(tib / big.partSize) <= 9000);
    // On the real server: 14 MiB with 5 MiB parts is 3 parts; hinted as a 9,000 x 7 MiB stream (7 MiB parts), 2.
    const s = openTestS3(bucket, { partSize: 5 * MIB });
    const plain = await s.put('unhinted.bin', pseudoRandomStream(14 * MIB, 'hint'));
    assert.match(plain.etag, /-3$/);
    const hinted = await s.put('hinted.bin', pseudoRandomStream(14 * MIB, 'hint'), { sizeHint: 9000 * 7 * MIB });
    assert.match(hinted.etag, /-2$/);
    assert.deepEqual(await sha256OfStream((await s.get('hinted.bin')).body), await sha256OfStream(pseudoRandomStream(14 * MIB, 'hint')));
    await s.close();
  });

  it('a body that fails half-way aborts the multipart upload: no object, no parts left behind', async () => {
    const s = openTestS3(bucket, { partSize: 5 * MIB, concurrency: 2 });
    async function* failing() {
      let read = 0;
      for await (const chunk of pseudoRandomStream(12 * MIB, 'fails')) {
        read += (chunk as Buffer).length;
        if (read > 11 * MIB) throw new Error('disk read error');
        yield chunk as Buffer;
      }
    }
    await assert.rejects(s.put('failed.bin', Readable.from(failing())), /disk read error/);
    await rejectsWith(s.head('failed.bin'), 'NotFound');
    const admin = adminClient();
    const uploads = await admin.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'failed.bin' }));
    assert.deepEqual(uploads.Uploads ?? [], []);
    admin.destroy();
    await s.close();
  });
});
