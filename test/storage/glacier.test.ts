// Archived objects (GLACIER, DEEP_ARCHIVE) through the S3 adapter. RGW stores these classes but
// reads them back at once and has no RestoreObject (501), so these tests go through a FAKE:
// test/support/glacier-proxy.ts, a proxy in front of the real RGW that answers as AWS does
// (403 InvalidObjectState until restored, RestoreObject 202/409/200, x-amz-restore on HEAD) and
// verifies RestoreObject's SigV4 signature itself. Data, puts, heads and every other request are
// the real RGW's.
import { CopyObjectCommand, RestoreObjectCommand, S3Client } from '@aws-sdk/client-s3';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { S3Storage } from '../../src/storage/index.js';
import { pseudoRandomStream, readAll, sha256, sha256OfStream } from '../support/data.js';
import { createTestBucket, openTestS3, s3TestServer } from '../support/env.js';
import { GlacierProxy } from '../support/glacier-proxy.js';
import { rejectsWith } from '../support/assert.js';

const MiB = 1024 * 1024;

function sdkClient(endpoint: string, secretAccessKey = s3TestServer().secretAccessKey, accessKeyId = s3TestServer().accessKeyId): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 1,
  });
}

function sdkFailure(e: unknown): { name: string; status: number | undefined } {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return { name: err.name ?? '', status: err.$metadata?.httpStatusCode };
}

describe('archived objects (through a FAKE Glacier proxy in front of RGW)', () => {
  let proxy: GlacierProxy;
  let bucket: string;
  let s3: S3Storage;

  before(async () => {
    const server = s3TestServer();
    proxy = await GlacierProxy.start({ upstream: server.endpoint, credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey } });
    bucket = await createTestBucket('glacier');
    // 5 MiB parts: the 12 MiB object below goes up as a multipart upload and comes back as
    // parallel ranged GETs, each of which the proxy has to let through once restored.
    s3 = openTestS3(bucket, { endpoint: proxy.endpoint, partSize: 5 * MiB });
  });

  after(async () => {
    await s3.close();
    await proxy.close();
  });

  it('GLACIER: get is ArchivedObject until restored; restore started, in progress, done; then the exact bytes', async () => {
    const size = 12 * MiB + 123;
    await s3.put('cold/big.bin', pseudoRandomStream(size, 'glacier'), { storageClass: 'GLACIER' });
    const expected = await sha256OfStream(pseudoRandomStream(size, 'glacier'));

    const before = await s3.head('cold/big.bin');
    assert.equal(before.storageClass, 'GLACIER');
    assert.equal(before.size, size);
    assert.equal(before.restore, undefined, 'no restore requested yet');

    const e = await rejectsWith(s3.get('cold/big.bin'), 'ArchivedObject');
    assert.match(e.message, /GLACIER/, 'the message names the storage class');
    assert.match(e.message, /cold\/big\.bin/);

    assert.equal(await s3.restoreArchived('cold/big.bin', { days: 2, tier: 'Bulk' }), 'started');
    const ongoing = await s3.head('cold/big.bin');
    assert.deepEqual(ongoing.restore, { ongoing: true });
    assert.equal(await s3.restoreArchived('cold/big.bin', { days: 2 }), 'in-progress');
    await rejectsWith(s3.get('cold/big.bin'), 'ArchivedObject');

    proxy.completeAllRestores();
    const done = await s3.head('cold/big.bin');
    assert.equal(done.storageClass, 'GLACIER', 'a restore makes a temporary copy; the class stays');
    assert.equal(done.restore?.ongoing, false);
    assert.ok(done.restore?.expiry instanceof Date && !Number.isNaN(done.restore.expiry.getTime()), 'expiry-date parsed');
    const days = (done.restore.expiry.getTime() - Date.now()) / 86_400_000;
    assert.ok(days > 2 - 0.01 && days <= 3, `expiry about 2 days away (rounded up to midnight UTC), got ${days.toFixed(2)}`);

    const { body, info } = await s3.get('cold/big.bin');
    assert.equal(info.restore?.ongoing, false, 'a GET of a restored object carries x-amz-restore too');
    assert.deepEqual(await sha256OfStream(body), expected);
    assert.equal(await s3.restoreArchived('cold/big.bin', { days: 2 }), 'already-restored');

    const restores = proxy.seen.filter((r) => r.method === 'POST' && r.url.includes('restore'));
    assert.deepEqual(
      restores.map((r) => [r.status, r.answeredBy, r.signatureValid]),
      [
        [202, 'proxy', true],
        [409, 'proxy', true],
        [200, 'proxy', true],
      ],
    );
    const refusedGets = proxy.seen.filter((r) => r.method === 'GET' && r.key === 'cold/big.bin' && r.status === 403);
    assert.equal(refusedGets.length, 2);
  });

  it('DEEP_ARCHIVE behaves the same, and head shows each restore state', async () => {
    const data = Buffer.from('deep archive payload\n'.repeat(1000));
    await s3.put('deep.txt', data, { storageClass: 'DEEP_ARCHIVE' });
    const e = await rejectsWith(s3.get('deep.txt'), 'ArchivedObject');
    assert.match(e.message, /DEEP_ARCHIVE/);
    assert.equal(await s3.restoreArchived('deep.txt', { days: 1 }), 'started');
    assert.deepEqual((await s3.head('deep.txt')).restore, { ongoing: true });
    proxy.completeAllRestores();
    const info = await s3.head('deep.txt');
    assert.equal(info.storageClass, 'DEEP_ARCHIVE');
    assert.equal(info.restore?.ongoing, false);
    assert.ok(info.restore?.expiry && info.restore.expiry.getTime() > Date.now());
    const got = await s3.get('deep.txt');
    assert.equal(sha256(await readAll(got.body)), sha256(data));
  });

  it('STANDARD objects are untouched: readable at once, no restore state, restore says readable', async () => {
    const data = Buffer.from('hot data');
    await s3.put('hot.txt', data);
    const info = await s3.head('hot.txt');
    assert.equal(info.storageClass, 'STANDARD');
    assert.equal(info.restore, undefined);
    assert.equal(sha256(await readAll((await s3.get('hot.txt')).body)), sha256(data));
    // AWS answers RestoreObject on a STANDARD object with 403 InvalidObjectState; the adapter
    // reports that as "already readable" rather than as an archived object.
    assert.equal(await s3.restoreArchived('hot.txt', { days: 1 }), 'already-restored');
    assert.ok(!proxy.seen.some((r) => r.key === 'hot.txt' && r.method === 'GET' && r.status === 403));
  });

  it('restore of a missing key is NotFound', async () => {
    await rejectsWith(s3.restoreArchived('no-such-key', { days: 1 }), 'NotFound');
  });

  it("the AWS SDK's RestoreObjectCommand signature verifies at the proxy; a wrong secret or key does not", async () => {
    // Characters the SigV4 canonical URI and query encode specially.
    const key = "odd keys/ä ö+&=(1)*!~'.bin";
    await s3.put(key, 'x', { storageClass: 'GLACIER' });
    const good = sdkClient(proxy.endpoint);
    const res = await good.send(new RestoreObjectCommand({ Bucket: bucket, Key: key, RestoreRequest: { Days: 1, GlacierJobParameters: { Tier: 'Standard' } } }));
    assert.equal(res.$metadata.httpStatusCode, 202);

    const wrongSecret = sdkClient(proxy.endpoint, 'not-the-secret');
    await assert.rejects(wrongSecret.send(new RestoreObjectCommand({ Bucket: bucket, Key: key, RestoreRequest: { Days: 1 } })), (e: unknown) => {
      assert.deepEqual(sdkFailure(e), { name: 'SignatureDoesNotMatch', status: 403 });
      return true;
    });
    const wrongKeyId = sdkClient(proxy.endpoint, 'x', 'NOSUCHACCESSKEY0');
    await assert.rejects(wrongKeyId.send(new RestoreObjectCommand({ Bucket: bucket, Key: key, RestoreRequest: { Days: 1 } })), (e: unknown) => {
      assert.deepEqual(sdkFailure(e), { name: 'InvalidAccessKeyId', status: 403 });
      return true;
    });
    const last = proxy.seen.filter((r) => r.method === 'POST' && r.key === key);
    assert.deepEqual(
      last.map((r) => r.signatureValid),
      [true, false, false],
    );

    // Through the adapter, a wrong secret is the usual InvalidCredentials.
    const badAdapter = openTestS3(bucket, { endpoint: proxy.endpoint, credentials: { accessKeyId: s3TestServer().accessKeyId, secretAccessKey: 'wrong-secret' } });
    await rejectsWith(badAdapter.restoreArchived(key, { days: 1 }), 'InvalidCredentials');
    await badAdapter.close();
    good.destroy();
    wrongSecret.destroy();
    wrongKeyId.destroy();
  });

  it('CopyObject from an archived, unrestored source is refused as on AWS', async () => {
    await s3.put('copy-src', 'cold', { storageClass: 'GLACIER' });
    const client = sdkClient(proxy.endpoint);
    await assert.rejects(client.send(new CopyObjectCommand({ Bucket: bucket, Key: 'copy-dst', CopySource: `${bucket}/copy-src` })), (e: unknown) => {
      assert.deepEqual(sdkFailure(e), { name: 'InvalidObjectState', status: 403 });
      return true;
    });
    client.destroy();
  });
});

describe('restore timing and expiry (FAKE Glacier proxy, short days)', () => {
  let proxy: GlacierProxy;
  let s3: S3Storage;

  before(async () => {
    const server = s3TestServer();
    // A restore takes 300 ms and one "day" of the restored copy lasts 700 ms.
    proxy = await GlacierProxy.start({
      upstream: server.endpoint,
      credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
      restoreDelayMs: 300,
      dayMs: 700,
    });
    s3 = openTestS3(await createTestBucket('glacier-expiry'), { endpoint: proxy.endpoint });
  });

  after(async () => {
    await s3.close();
    await proxy.close();
  });

  it('a restore completes after its delay, and the copy expires after its days', async () => {
    const data = Buffer.from('expiring');
    await s3.put('k', data, { storageClass: 'GLACIER' });
    assert.equal(await s3.restoreArchived('k', { days: 1 }), 'started');
    assert.equal((await s3.head('k')).restore?.ongoing, true);
    await new Promise((r) => setTimeout(r, 350));
    const info = await s3.head('k');
    assert.equal(info.restore?.ongoing, false);
    assert.equal(sha256(await readAll((await s3.get('k')).body)), sha256(data));
    await new Promise((r) => setTimeout(r, 800));
    assert.equal((await s3.head('k')).restore, undefined, 'the restored copy expired');
    await rejectsWith(s3.get('k'), 'ArchivedObject');
    // A new object at the key is not restored, whatever the old one was.
    assert.equal(await s3.restoreArchived('k', { days: 1 }), 'started');
    await new Promise((r) => setTimeout(r, 350));
    await s3.put('k', data, { storageClass: 'GLACIER' });
    await rejectsWith(s3.get('k'), 'ArchivedObject');
  });
});
