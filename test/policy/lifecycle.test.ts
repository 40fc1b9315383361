// Tag rules as a bucket lifecycle configuration: the JSON S3 gets, its validation, and putting
// it on the real Ceph RGW (previous rules returned, diff by rule ID, dry run).
import { GetBucketLifecycleConfigurationCommand } from '@aws-sdk/client-s3';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ABORT_MULTIPART_RULE_ID,
  DEFAULT_TAG_RULES,
  PolicyError,
  applyLifecycle,
  diffLifecycleRules,
  lifecycleConfiguration,
  type TagRule,
} from '../../src/policy/index.js';
import { LocalStorage, isStorageError } from '../../src/storage/index.js';
import { adminClient, createTestBucket, openTestS3, tempDir } from '../support/env.js';

const abortRule = (prefix: string) => ({
  ID: 'offsite-abort-incomplete-multipart-uploads',
  Status: 'Enabled',
  Filter: { Prefix: prefix },
  AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 },
});

describe('lifecycleConfiguration', () => {
  it('the default rules, under a prefix: tag AND prefix filters, one transition each, plus the multipart clean-up', () => {
    const tagged = (key: string, value: string) => ({ And: { Prefix: 'backups/', Tags: [{ Key: key, Value: value }] } });
    assert.deepEqual(lifecycleConfiguration(DEFAULT_TAG_RULES, { prefix: 'backups/' }), {
      Rules: [
        { ID: 'offsite-archive-fast-GLACIER_IR-0d', Status: 'Enabled', Filter: tagged('archive', 'fast'), Transitions: [{ Days: 0, StorageClass: 'GLACIER_IR' }] },
        { ID: 'offsite-archive-normal-GLACIER-0d', Status: 'Enabled', Filter: tagged('archive', 'normal'), Transitions: [{ Days: 0, StorageClass: 'GLACIER' }] },
        { ID: 'offsite-archive-delayed-GLACIER-30d', Status: 'Enabled', Filter: tagged('archive', 'delayed'), Transitions: [{ Days: 30, StorageClass: 'GLACIER' }] },
        { ID: 'offsite-backup-deep-archive-DEEP_ARCHIVE-0d', Status: 'Enabled', Filter: tagged('backup', 'deep-archive'), Transitions: [{ Days: 0, StorageClass: 'DEEP_ARCHIVE' }] },
        abortRule('backups/'),
      ],
    });
  });

  it('without a prefix: a Tag filter, and the clean-up covers the whole bucket', () => {
    const cfg = lifecycleConfiguration([{ tag: { key: 'backup', value: 'deep-archive' }, storageClass: 'DEEP_ARCHIVE', days: 0, id: 'mine' }]);
    assert.deepEqual(cfg, {
      Rules: [{ ID: 'mine', Status: 'Enabled', Filter: { Tag: { Key: 'backup', Value: 'deep-archive' } }, Transitions: [{ Days: 0, StorageClass: 'DEEP_ARCHIVE' }] }, abortRule('')],
    });
    // The JSON a person would paste into `aws s3api put-bucket-lifecycle-configuration`.
    assert.equal(JSON.parse(JSON.stringify(cfg)).Rules[1].ID, ABORT_MULTIPART_RULE_ID);
  });

  it('refuses what S3 would refuse, naming the rule', () => {
    const rule = (r: Partial<TagRule>): TagRule => ({ tag: { key: 'archive', value: 'x' }, storageClass: 'GLACIER', days: 0, ...r });
    const refused = (rules: TagRule[], pattern: RegExp) =>
      assert.throws(() => lifecycleConfiguration(rules), (e: unknown) => e instanceof PolicyError && e.code === 'InvalidPolicy' && pattern.test(e.message));
    refused([rule({ storageClass: 'STANDARD_IA', days: 10 })], /archive=x -> STANDARD_IA.*30 days/);
    refused([rule({ storageClass: 'STANDARD' })], /not a storage class a transition can go to/);
    refused([rule({ days: -1 })], /days must be a whole number/);
    refused([rule({ days: 1.5 })], /days must be a whole number/);
    refused([rule({ tag: { key: '', value: 'x' } })], /tag key/);
    refused([rule({ id: 'same' }), rule({ id: 'same', days: 5 })], /two rules have the ID "same"/);
    refused([rule({ id: ABORT_MULTIPART_RULE_ID })], /multipart clean-up rule/);
    assert.doesNotThrow(() => lifecycleConfiguration([rule({ storageClass: 'STANDARD_IA', days: 30 })]));
  });
});

describe('diffLifecycleRules', () => {
  it('compares by ID, and by what a filter selects rather than its shape', () => {
    const mine = lifecycleConfiguration([{ tag: { key: 'backup', value: 'deep-archive' }, storageClass: 'GLACIER', days: 1, id: 'deep' }], { prefix: 'p/' }).Rules ?? [];
    // How RGW echoes an And filter back.
    const echoed = [
      { ID: 'deep', Status: 'Enabled' as const, Filter: { Prefix: 'p/', Tag: { Key: 'backup', Value: 'deep-archive' } }, Transitions: [{ Days: 1, StorageClass: 'GLACIER' as const }] },
      { ID: 'someone-elses', Status: 'Enabled' as const, Filter: { Prefix: 'logs/' }, Expiration: { Days: 90 } },
    ];
    assert.deepEqual(diffLifecycleRules(echoed, mine), { added: [ABORT_MULTIPART_RULE_ID], removed: ['someone-elses'], changed: [], unchanged: ['deep'] });
    const later = lifecycleConfiguration([{ tag: { key: 'backup', value: 'deep-archive' }, storageClass: 'GLACIER', days: 2, id: 'deep' }], { prefix: 'p/' }).Rules ?? [];
    assert.deepEqual(diffLifecycleRules(mine, later).changed, ['deep']);
  });
});

describe('applyLifecycle on Ceph RGW', () => {
  // RGW here has GLACIER and DEEP_ARCHIVE only (no GLACIER_IR), so not the full default set.
  const rules: TagRule[] = [
    { tag: { key: 'backup', value: 'deep-archive' }, storageClass: 'DEEP_ARCHIVE', days: 0 },
    { tag: { key: 'archive', value: 'delayed' }, storageClass: 'GLACIER', days: 30 },
  ];

  it('puts the rules under the storage prefix, returns what it replaced, and a dry run changes nothing', async () => {
    const bucket = await createTestBucket('lifecycle-apply');
    const storage = openTestS3(bucket, { prefix: 'backups/' });
    const client = adminClient();
    try {
      const first = await applyLifecycle(storage, rules);
      assert.equal(first.bucket, bucket);
      assert.deepEqual(first.previous, [], 'a new bucket has no rules');
      assert.deepEqual(first.diff.added, ['offsite-backup-deep-archive-DEEP_ARCHIVE-0d', 'offsite-archive-delayed-GLACIER-30d', ABORT_MULTIPART_RULE_ID]);

      const onServer = (await client.send(new GetBucketLifecycleConfigurationCommand({ Bucket: bucket }))).Rules ?? [];
      assert.deepEqual(onServer.map((r) => r.ID).sort(), [...first.diff.added].sort());
      const deep = onServer.find((r) => r.ID === 'offsite-backup-deep-archive-DEEP_ARCHIVE-0d');
      assert.equal(deep?.Filter?.And?.Prefix ?? deep?.Filter?.Prefix, 'backups/', 'the storage prefix is the default');
      assert.deepEqual(deep?.Transitions, [{ Days: 0, StorageClass: 'DEEP_ARCHIVE' }]);

      const again = await applyLifecycle(storage, rules);
      assert.equal(again.previous.length, 3);
      assert.deepEqual(again.diff, { added: [], removed: [], changed: [], unchanged: first.diff.added });

      const dry = await applyLifecycle(storage, [{ ...rules[0]!, storageClass: 'GLACIER', days: 3 }], { dryRun: true });
      assert.deepEqual(dry.diff.removed.sort(), ['offsite-archive-delayed-GLACIER-30d', 'offsite-backup-deep-archive-DEEP_ARCHIVE-0d'].sort());
      assert.deepEqual(dry.diff.added, ['offsite-backup-deep-archive-GLACIER-3d']);
      const still = (await client.send(new GetBucketLifecycleConfigurationCommand({ Bucket: bucket }))).Rules ?? [];
      assert.equal(still.length, 3, 'the dry run put nothing');

      const whole = await applyLifecycle(storage, rules.slice(0, 1), { prefix: '' });
      assert.deepEqual(whole.diff.changed.sort(), [ABORT_MULTIPART_RULE_ID, 'offsite-backup-deep-archive-DEEP_ARCHIVE-0d'].sort(), 'same IDs, wider filters');
      assert.deepEqual(whole.diff.removed, ['offsite-archive-delayed-GLACIER-30d']);
    } finally {
      client.destroy();
      await storage.close();
    }
  });

  it('refuses a storage that is not S3', async () => {
    const local = new LocalStorage(await tempDir());
    await assert.rejects(applyLifecycle(local, rules), (e: unknown) => isStorageError(e, 'Unsupported') && /S3 bucket feature/.test(e.message));
  });

  it('a missing bucket is NoSuchBucket', async () => {
    const storage = openTestS3('no-such-bucket-offsite-lifecycle');
    await assert.rejects(applyLifecycle(storage, rules), (e: unknown) => isStorageError(e, 'NoSuchBucket'));
    await storage.close();
  });
});
