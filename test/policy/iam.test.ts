// The least-privilege IAM policy: its scoping as JSON, then enforced for real. Ceph RGW
// evaluates the same policy language as a bucket policy, so each policy is put on a bucket with
// a fresh RGW user as its principal, and that user's Offsite storage is tried inside and outside
// the prefix.
import { PutBucketPolicyCommand } from '@aws-sdk/client-s3';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { describe, it, before } from 'node:test';
import { applyLifecycle, iamPolicy, PolicyError, type IamPolicyDocument, type PolicyFeature } from '../../src/policy/index.js';
import { isStorageError, type S3Storage, type StorageErrorCode } from '../../src/storage/index.js';
import { pseudoRandomStream, sha256OfStream } from '../support/data.js';
import { adminClient, createTestBucket, openTestS3 } from '../support/env.js';

const ALL: PolicyFeature[] = ['archive', 'restore', 'lifecycle', 'doctor'];

function actionsOf(p: IamPolicyDocument): string[] {
  return p.Statement.flatMap((s) => s.Action);
}

describe('iamPolicy', () => {
  it('scopes object actions to the prefix and listing to the prefix; no "*" resource', () => {
    const p = iamPolicy({ bucket: 'my-bucket', prefix: 'offsite/host1/', features: ALL });
    assert.equal(p.Version, '2012-10-17');
    for (const s of p.Statement) {
      assert.equal(s.Effect, 'Allow');
      for (const r of s.Resource) {
        assert.notEqual(r, '*');
        assert.ok(r === 'arn:aws:s3:::my-bucket' || r === 'arn:aws:s3:::my-bucket/offsite/host1/*', `unexpected resource ${r}`);
      }
      for (const a of s.Action) assert.match(a, /^s3:[A-Za-z]+$/, 'no wildcard actions');
    }
    const objectStatements = p.Statement.filter((s) => s.Resource.some((r) => r.includes('/')));
    assert.ok(objectStatements.length > 0);
    for (const s of objectStatements) for (const r of s.Resource) assert.ok(r.startsWith('arn:aws:s3:::my-bucket/offsite/host1/'), `object ARN without the prefix: ${r}`);

    const list = p.Statement.find((s) => s.Action.includes('s3:ListBucket'));
    assert.deepEqual(list?.Resource, ['arn:aws:s3:::my-bucket']);
    assert.deepEqual(list?.Condition, { StringLike: { 's3:prefix': ['offsite/host1/*'] } });
    assert.deepEqual(list?.Action, ['s3:ListBucket'], 'the condition applies to listing only');

    const objects = p.Statement.find((s) => s.Sid === 'OffsiteObjects');
    for (const a of ['s3:PutObject', 's3:GetObject', 's3:DeleteObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts', 's3:PutObjectTagging', 's3:GetObjectTagging', 's3:RestoreObject']) {
      assert.ok(objects?.Action.includes(a), `missing ${a}`);
    }
    const bucketSettings = p.Statement.find((s) => s.Sid === 'OffsiteBucketSettings');
    assert.deepEqual(bucketSettings?.Resource, ['arn:aws:s3:::my-bucket']);
    assert.deepEqual(bucketSettings?.Action, ['s3:GetBucketObjectLockConfiguration', 's3:GetBucketVersioning', 's3:GetLifecycleConfiguration', 's3:ListBucketMultipartUploads', 's3:PutLifecycleConfiguration']);
  });

  it('each feature adds only what it calls', () => {
    const restore = actionsOf(iamPolicy({ bucket: 'b-1', prefix: 'p/', features: ['restore'] }));
    assert.deepEqual(restore.sort(), ['s3:GetObject', 's3:GetObjectTagging', 's3:ListBucket', 's3:RestoreObject']);
    const archive = actionsOf(iamPolicy({ bucket: 'b-1', prefix: 'p/', features: ['archive'] }));
    assert.ok(!archive.includes('s3:RestoreObject'));
    for (const f of ['archive', 'restore', 'doctor'] as const) {
      assert.ok(!actionsOf(iamPolicy({ bucket: 'b-1', features: [f] })).includes('s3:PutLifecycleConfiguration'), `${f} must not change lifecycle rules`);
    }
    assert.deepEqual(actionsOf(iamPolicy({ bucket: 'b-1', prefix: 'p/', features: ['lifecycle'] })), ['s3:GetLifecycleConfiguration', 's3:PutLifecycleConfiguration']);
    const doctor = actionsOf(iamPolicy({ bucket: 'b-1', features: ['doctor'] }));
    for (const a of ['s3:GetBucketVersioning', 's3:GetBucketObjectLockConfiguration', 's3:GetLifecycleConfiguration']) assert.ok(doctor.includes(a), a);
  });

  it('without a prefix: the bucket\'s objects, unconditioned listing; wildcards in a prefix are literal', () => {
    const whole = iamPolicy({ bucket: 'b-1', features: ['archive'] });
    assert.ok(whole.Statement.every((s) => s.Condition === undefined));
    assert.deepEqual(whole.Statement.find((s) => s.Sid === 'OffsiteObjects')?.Resource, ['arn:aws:s3:::b-1/*']);
    const odd = iamPolicy({ bucket: 'b-1', prefix: '/we*ird?$/', features: ['archive'], partition: 'aws-cn' });
    assert.deepEqual(odd.Statement.find((s) => s.Sid === 'OffsiteObjects')?.Resource, ['arn:aws-cn:s3:::b-1/we${*}ird${?}${$}/*']);
    assert.deepEqual(odd.Statement.find((s) => s.Sid === 'OffsiteList')?.Condition, { StringLike: { 's3:prefix': ['we${*}ird${?}${$}/*'] } });
    const wide = iamPolicy({ bucket: 'b-1', prefix: 'p/', features: ['archive'], listWholeBucket: true });
    assert.equal(wide.Statement.find((s) => s.Sid === 'OffsiteList')?.Condition, undefined);
    assert.deepEqual(wide.Statement.find((s) => s.Sid === 'OffsiteObjects')?.Resource, ['arn:aws:s3:::b-1/p/*'], 'objects stay scoped');
  });

  it('refuses a bad bucket name and an empty feature list', () => {
    assert.throws(() => iamPolicy({ bucket: 'Bad_Bucket', features: ['archive'] }), PolicyError);
    assert.throws(() => iamPolicy({ bucket: 'b-1', features: [] }), /at least one feature/);
    assert.throws(() => iamPolicy({ bucket: 'b-1', features: ['everything' as PolicyFeature] }), /unknown feature everything/);
  });
});

// --- enforced by Ceph RGW ---------------------------------------------------------

interface RgwUser {
  uid: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/** A new S3 user on the test RGW (radosgw-admin, with the run's ceph.conf). */
function createRgwUser(): RgwUser {
  const dir = process.env.OFFSITE_TEST_RGW_DIR;
  if (!dir) throw new Error('OFFSITE_TEST_RGW_DIR is not set: run the tests with node scripts/run-tests.mjs');
  const uid = `limited-${randomBytes(4).toString('hex')}`;
  const user = { uid, accessKeyId: `LIM${randomBytes(8).toString('hex').toUpperCase()}`, secretAccessKey: randomBytes(20).toString('base64url') };
  execFileSync('radosgw-admin', ['user', 'create', `--uid=${uid}`, `--display-name=${uid}`, `--access-key=${user.accessKeyId}`, `--secret-key=${user.secretAccessKey}`], {
    env: { ...process.env, CEPH_CONF: path.join(dir, 'ceph', 'ceph.conf') },
    stdio: 'ignore',
  });
  return user;
}

/** The identity policy as a bucket policy for `user` (same statements, plus a Principal). */
async function grant(bucket: string, user: RgwUser, policy: IamPolicyDocument): Promise<void> {
  const client = adminClient();
  try {
    const Statement = policy.Statement.map((s) => ({ ...s, Principal: { AWS: [`arn:aws:iam:::user/${user.uid}`] } }));
    await client.send(new PutBucketPolicyCommand({ Bucket: bucket, Policy: JSON.stringify({ Version: policy.Version, Statement }) }));
  } finally {
    client.destroy();
  }
}

async function outcome(p: Promise<unknown>): Promise<'ok' | StorageErrorCode> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (isStorageError(e)) return e.code;
    throw e;
  }
}

async function listAll(s: S3Storage): Promise<string[]> {
  const keys: string[] = [];
  for await (const e of s.list()) if (e.type === 'object') keys.push(e.key);
  return keys;
}

describe('iamPolicy enforced by Ceph RGW (as a bucket policy for a user with no other rights)', () => {
  let bucket: string;
  let user: RgwUser;
  const as = (u: RgwUser, prefix = '') => openTestS3(bucket, { prefix, credentials: { accessKeyId: u.accessKeyId, secretAccessKey: u.secretAccessKey }, maxAttempts: 1, partSize: 5 * 1024 * 1024 });

  before(async () => {
    bucket = await createTestBucket('iam');
    user = createRgwUser();
    const owner = openTestS3(bucket);
    await owner.put('backups/existing', 'seed');
    await owner.put('other/secret', 'not yours');
    await owner.close();
  });

  it('archive: read, write (multipart and tagged too), list and delete under the prefix only', async () => {
    await grant(bucket, user, iamPolicy({ bucket, prefix: 'backups/', features: ['archive'] }));
    const inside = as(user, 'backups/');
    const root = as(user);
    try {
      assert.equal(await outcome(inside.put('a.tar', 'archive', { tags: { backup: 'deep-archive' } })), 'ok');
      const big = await inside.put('big.tar', pseudoRandomStream(11 * 1024 * 1024, 'iam'), { tags: { archive: 'normal' } });
      assert.equal(big.size, 11 * 1024 * 1024, 'multipart upload allowed');
      assert.deepEqual(await sha256OfStream((await inside.get('big.tar')).body), await sha256OfStream(pseudoRandomStream(11 * 1024 * 1024, 'iam')));
      assert.deepEqual(await inside.getTags('a.tar'), { backup: 'deep-archive' });
      assert.deepEqual((await listAll(inside)).sort(), ['a.tar', 'big.tar', 'existing']);
      assert.equal(await outcome(inside.delete('a.tar')), 'ok');

      assert.equal(await outcome(root.put('other/x', 'x')), 'AccessDenied', 'no writes outside the prefix');
      assert.equal(await outcome(root.get('other/secret')), 'AccessDenied', 'no reads outside the prefix');
      assert.equal(await outcome(listAll(root)), 'AccessDenied', 'no listing of the whole bucket');
      assert.equal(await outcome(applyLifecycle(inside, [])), 'AccessDenied', 'no lifecycle changes');
      // The documented trade-off of the prefix-only listing: a missing key is 403, not 404.
      assert.equal(await outcome(inside.head('missing')), 'AccessDenied');
    } finally {
      await inside.close();
      await root.close();
    }
  });

  it('listWholeBucket: missing keys are NotFound again, while objects stay scoped', async () => {
    await grant(bucket, user, iamPolicy({ bucket, prefix: 'backups/', features: ['archive'], listWholeBucket: true }));
    const inside = as(user, 'backups/');
    const root = as(user);
    try {
      assert.equal(await outcome(inside.head('missing')), 'NotFound');
      assert.equal(await outcome(root.get('other/secret')), 'AccessDenied');
    } finally {
      await inside.close();
      await root.close();
    }
  });

  it('restore: read-only (no put, no delete)', async () => {
    await grant(bucket, user, iamPolicy({ bucket, prefix: 'backups/', features: ['restore'] }));
    const inside = as(user, 'backups/');
    try {
      assert.equal(await outcome(inside.get('existing')), 'ok');
      assert.ok((await listAll(inside)).includes('existing'));
      assert.equal(await outcome(inside.put('new', 'x')), 'AccessDenied');
      assert.equal(await outcome(inside.delete('existing')), 'AccessDenied');
    } finally {
      await inside.close();
    }
  });

  it('lifecycle: applyLifecycle works; without the feature the error names the missing permission', async () => {
    const rule = [{ tag: { key: 'backup', value: 'deep-archive' }, storageClass: 'GLACIER', days: 30 }];
    await grant(bucket, user, iamPolicy({ bucket, prefix: 'backups/', features: ['doctor'] }));
    const s = as(user, 'backups/');
    try {
      await assert.rejects(applyLifecycle(s, rule), (e: unknown) => isStorageError(e, 'AccessDenied') && /s3:PutLifecycleConfiguration/.test(e.message));
      await grant(bucket, user, iamPolicy({ bucket, prefix: 'backups/', features: ['lifecycle'] }));
      const res = await applyLifecycle(s, rule);
      assert.ok(res.diff.added.includes('offsite-backup-deep-archive-GLACIER-30d'));
    } finally {
      await s.close();
    }
  });
});
