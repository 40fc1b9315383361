// The pooled uploader (src/storage/s3/upload.ts) against the real Ceph RGW: every part from a
// reused buffer, a file read by positioned reads, a stream copied in order, and what is left after
// a failure (nothing).
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { describe, it, before } from 'node:test';
import { PartBufferPool, uploadPooled } from '../../src/storage/s3/upload.js';
import { pseudoRandomStream, readAll, sha256, sha256OfStream } from '../support/data.js';
import { adminClient, createTestBucket, openTestS3, tempDir } from '../support/env.js';

const MIB = 1024 * 1024;

/** A pool that counts the buffers it had to allocate. */
class CountingPool extends PartBufferPool {
  allocated = 0;
  inFlight = 0;
  maxInFlight = 0;
  override acquire(size: number): Buffer {
    const reused = this.freeCount;
    const buf = super.acquire(size);
    if (this.freeCount === reused) this.allocated++;
    this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
    return buf;
  }
  override release(buf: Buffer): void {
    this.inFlight--;
    super.release(buf);
  }
}

describe('s3 pooled upload', () => {
  let bucket: string;
  let dir: string;
  before(async () => {
    bucket = await createTestBucket('pooled');
    dir = await tempDir('offsite-pooled-');
  });

  it('a 23 MiB stream in 5 MiB parts, 2 in flight, uses 2 buffers for its 5 parts, in order', async () => {
    const s = openTestS3(bucket);
    const pool = new CountingPool(5 * MIB, 2);
    const size = 23 * MIB + 7;
    const sent: number[] = [];
    const res = await uploadPooled({
      client: s.client,
      pool,
      params: { Bucket: bucket, Key: 'pooled/stream.bin' },
      body: pseudoRandomStream(size, 'pooled'),
      partSize: 5 * MIB,
      queueSize: 2,
      onProgress: (n) => sent.push(n),
    });
    assert.equal(res.size, size);
    assert.equal(res.multipart, true);
    assert.equal(pool.allocated, 2, 'two buffers, reused for the other three parts');
    assert.equal(pool.maxInFlight, 2);
    assert.equal(pool.inFlight, 0, 'every buffer went back');
    assert.equal(pool.freeCount, 2);
    assert.deepEqual(sent, [...sent].sort((a, b) => a - b), 'progress only grows');
    assert.equal(sent.at(-1), size);
    assert.deepEqual(await sha256OfStream((await s.get('pooled/stream.bin')).body), await sha256OfStream(pseudoRandomStream(size, 'pooled')));
    await s.close();
  });

  it("a file's own ReadStream is read with positioned reads; a ReadStream with a start is streamed", async () => {
    const file = path.join(dir, 'source.bin');
    const data = await readAll(pseudoRandomStream(12 * MIB + 3, 'file'));
    await writeFile(file, data);
    const s = openTestS3(bucket, { partSize: 5 * MIB, concurrency: 2 });
    const whole = createReadStream(file);
    const put = await s.put('pooled/file.bin', whole);
    assert.equal(put.size, data.length);
    assert.match(put.etag, /-3$/);
    assert.equal(whole.destroyed, true, 'the stream was closed, not read');
    assert.equal(whole.bytesRead, 0);
    assert.equal(sha256(await readAll((await s.get('pooled/file.bin')).body)), sha256(data));
    const tail = createReadStream(file, { start: 1000 });
    const partial = await s.put('pooled/tail.bin', tail);
    assert.equal(partial.size, data.length - 1000);
    assert.equal(tail.bytesRead, data.length - 1000, 'read as a stream');
    assert.equal(sha256(await readAll((await s.get('pooled/tail.bin')).body)), sha256(data.subarray(1000)));
    await s.close();
  });

  it('an empty stream, one of exactly one part and one of exactly two parts', async () => {
    const s = openTestS3(bucket, { partSize: 5 * MIB, concurrency: 3 });
    const empty = await s.put('pooled/empty.bin', Readable.from([]));
    assert.equal(empty.size, 0);
    assert.equal((await s.head('pooled/empty.bin')).size, 0);
    const one = await s.put('pooled/one.bin', pseudoRandomStream(5 * MIB, 'one'));
    assert.doesNotMatch(one.etag, /-/);
    const two = await s.put('pooled/two.bin', pseudoRandomStream(10 * MIB, 'two'));
    assert.match(two.etag, /-2$/);
    assert.deepEqual(await sha256OfStream((await s.get('pooled/two.bin')).body), await sha256OfStream(pseudoRandomStream(10 * MIB, 'two')));
    assert.deepEqual(s.stats().requests.UploadPart, 2);
    await s.close();
  });

  it('an abort mid-upload rejects only after the multipart upload is aborted: nothing left, every buffer back', async () => {
    const s = openTestS3(bucket);
    const pool = new CountingPool(5 * MIB, 2);
    const ac = new AbortController();
    await assert.rejects(
      uploadPooled({
        client: s.client,
        pool,
        params: { Bucket: bucket, Key: 'pooled/aborted.bin' },
        body: pseudoRandomStream(40 * MIB, 'abort'),
        partSize: 5 * MIB,
        queueSize: 2,
        signal: ac.signal,
        onProgress: () => ac.abort(new Error('stop')),
      }),
      /stop/,
    );
    assert.equal(pool.inFlight, 0);
    const admin = adminClient();
    const uploads = await admin.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'pooled/aborted.bin' }));
    assert.deepEqual(uploads.Uploads ?? [], []);
    admin.destroy();
    await s.close();
  });

  it('an idle pool lets its buffers go', async () => {
    const pool = new PartBufferPool(1024, 4);
    const a = pool.acquire(1024);
    const b = pool.acquire(1024);
    const odd = pool.acquire(2048);
    pool.release(a);
    pool.release(odd);
    assert.equal(pool.freeCount, 1, 'only buffers of the part size are kept');
    assert.equal(pool.acquire(1024), a, 'and handed out again');
    pool.release(a);
    pool.release(b);
    assert.equal(pool.freeCount, 2);
    await new Promise((r) => setTimeout(r, 2_200));
    assert.equal(pool.freeCount, 0);
  });
});
