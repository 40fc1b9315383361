// `offsite doctor` against the test RGW and a local directory: every check reports what it
// found, bucket settings changed through the admin client show up, failures exit non-zero.
import assert from 'node:assert/strict';
import { DeleteObjectCommand, PutBucketLifecycleConfigurationCommand, PutBucketVersioningCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { describe, it } from 'node:test';
import type { DoctorReport } from '../../src/doctor/index.js';
import { runCli } from '../support/cli.js';
import { adminClient, createTestBucket, s3ChildEnv, s3Url, tempDir } from '../support/env.js';

const statusOf = (r: DoctorReport) => Object.fromEntries(r.checks.map((c) => [c.id, c.status]));
const detailOf = (r: DoctorReport, id: string) => r.checks.find((c) => c.id === id)?.detail ?? '';

describe('offsite doctor', () => {
  it('passes on a healthy bucket and reports its settings', async () => {
    const bucket = await createTestBucket('doctor');
    const r = await runCli(['--json', 'doctor', s3Url(bucket)], { env: s3ChildEnv() });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const report = JSON.parse(r.stdout) as DoctorReport;
    assert.equal(report.ok, true);
    assert.deepEqual(statusOf(report), {
      url: 'pass',
      credentials: 'pass',
      bucket: 'pass',
      write: 'pass',
      conditional: 'pass',
      versioning: 'pass',
      'object-lock': 'pass',
      lifecycle: 'pass',
    });
    assert.match(detailOf(report, 'credentials'), /environment \(AWS_ACCESS_KEY_ID\)/);
    assert.equal(detailOf(report, 'versioning'), 'off');
    assert.equal(detailOf(report, 'lifecycle'), 'none');
    assert.ok(report.stats.requests.PutObject! >= 3, 'probe put and the two conditional puts');

    // The probe leaves nothing behind.
    const ls = await runCli(['--json', 'ls', '-r', s3Url(bucket)], { env: s3ChildEnv() });
    assert.deepEqual(JSON.parse(ls.stdout), []);
  });

  it('sees versioning and lifecycle rules set on the bucket', async () => {
    const bucket = await createTestBucket('doctor-set');
    const admin = adminClient();
    await admin.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
    await admin.send(
      new PutBucketLifecycleConfigurationCommand({
        Bucket: bucket,
        LifecycleConfiguration: { Rules: [{ ID: 'archive-to-glacier', Status: 'Enabled', Filter: { Prefix: 'archive/' }, Transitions: [{ Days: 1, StorageClass: 'GLACIER' }] }] },
      }),
    );
    // Observed directly: RGW 16 stops enforcing If-None-Match: * once versioning is on (a
    // second create of one key succeeds). The doctor must report what the server really does.
    await admin.send(new PutObjectCommand({ Bucket: bucket, Key: 'direct', Body: 'a', IfNoneMatch: '*' }));
    const enforced = await admin.send(new PutObjectCommand({ Bucket: bucket, Key: 'direct', Body: 'b', IfNoneMatch: '*' })).then(
      () => false,
      (e: { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode === 412,
    );
    await admin.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'direct' }));
    admin.destroy();
    const r = await runCli(['doctor', s3Url(bucket)], { env: s3ChildEnv() });
    assert.match(r.stdout, /versioning\s+enabled/);
    assert.match(r.stdout, /lifecycle rules\s+1 rule\(s\): archive-to-glacier Enabled/);
    if (enforced) {
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /all checks passed/);
    } else {
      assert.equal(r.code, 1, 'a server that ignores conditional writes fails the doctor');
      assert.match(r.stdout, /FAIL\s+conditional writes\s+If-None-Match: \* ignored by this server/);
    }
  });

  it('a wrong secret fails the credentials check and exits 1', async () => {
    const bucket = await createTestBucket('doctor-bad');
    const r = await runCli(['--json', 'doctor', s3Url(bucket)], { env: { ...s3ChildEnv(), AWS_SECRET_ACCESS_KEY: 'wrong-wrong-wrong' } });
    assert.equal(r.code, 1);
    const report = JSON.parse(r.stdout) as DoctorReport;
    assert.equal(statusOf(report).credentials, 'fail');
    assert.match(detailOf(report, 'credentials'), /rejected the credentials/);
    assert.equal(statusOf(report).write, 'skip');
    assert.ok(!r.stdout.includes('wrong-wrong-wrong'));
  });

  it('a missing bucket fails the bucket check, saying how to create it', async () => {
    const r = await runCli(['doctor', s3Url('doctor-no-such-bucket')], { env: s3ChildEnv() });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /FAIL\s+bucket reachable\s+.*create it/);
    assert.match(r.stdout, /skip\s+put \/ get \/ list \/ delete probe/);
  });

  it('no credentials at all: says where to set them', async () => {
    const home = await tempDir();
    const r = await runCli(['doctor', s3Url('whatever')], {
      env: { AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined, AWS_PROFILE: undefined, HOME: home, AWS_EC2_METADATA_DISABLED: 'true', AWS_CONFIG_FILE: `${home}/none`, AWS_SHARED_CREDENTIALS_FILE: `${home}/none` },
    });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /FAIL\s+credentials\s+none found.*AWS_ACCESS_KEY_ID/);
  });

  it('checks a local directory', async () => {
    const dir = await tempDir();
    const r = await runCli(['doctor', `${dir}/bucket`]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /ok\s+put \/ get \/ list \/ delete probe/);
    assert.match(r.stdout, /ok\s+conditional writes/);
  });
});
