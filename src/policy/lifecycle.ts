/**
 * Tag rules as an S3 bucket lifecycle configuration, and putting it on a bucket.
 */
import type {
  BucketLifecycleConfiguration,
  LifecycleRule,
  TransitionStorageClass as SdkTransitionStorageClass,
} from '@aws-sdk/client-s3';
import { AccessDeniedError, classifyS3Error, S3Sdk, S3Storage, sdkErrorCode, UnsupportedError, type ClassifyContext, type Storage, type StorageError } from '../storage/index.js';
// The S3 adapter's one error classifier: this module talks to the same client, so its errors get
// the same typed errors and messages.
import { ABORT_MULTIPART_RULE_ID, DEFAULT_TAG_RULES, ruleId, validateTagRules, type TagRule } from './rules.js';

/** Abandoned multipart uploads keep their parts, and their parts are billed, until aborted. */
export const ABORT_INCOMPLETE_MULTIPART_DAYS = 7;

export interface LifecycleOptions {
  /** Only objects under this key prefix; default: the whole bucket. */
  prefix?: string;
}

/**
 * The S3 LifecycleConfiguration for `rules`: one rule per tag rule (filter: the tag, and the
 * prefix when there is one), plus one that aborts multipart uploads left incomplete for
 * ABORT_INCOMPLETE_MULTIPART_DAYS days under the prefix (S3 does not allow that action in a
 * rule that filters on tags, hence a rule of its own). Throws PolicyError for invalid rules.
 */
export function lifecycleConfiguration(rules: readonly TagRule[], opts: LifecycleOptions = {}): BucketLifecycleConfiguration {
  validateTagRules(rules);
  const prefix = normalisePrefix(opts.prefix);
  const tagRules = rules.map(
    (rule): LifecycleRule => ({
      ID: ruleId(rule),
      Status: 'Enabled',
      Filter: prefix ? { And: { Prefix: prefix, Tags: [{ Key: rule.tag.key, Value: rule.tag.value }] } } : { Tag: { Key: rule.tag.key, Value: rule.tag.value } },
      Transitions: [{ Days: rule.days, StorageClass: rule.storageClass as SdkTransitionStorageClass }],
    }),
  );
  const abort: LifecycleRule = {
    ID: ABORT_MULTIPART_RULE_ID,
    Status: 'Enabled',
    Filter: { Prefix: prefix },
    AbortIncompleteMultipartUpload: { DaysAfterInitiation: ABORT_INCOMPLETE_MULTIPART_DAYS },
  };
  return { Rules: [...tagRules, abort] };
}

export interface ApplyLifecycleOptions {
  /** Key prefix the rules apply to; default the storage's own prefix ("" = the whole bucket). */
  prefix?: string;
  /** Read the current rules and build the new ones, but do not put them. */
  dryRun?: boolean;
  signal?: AbortSignal;
}

export interface ApplyLifecycleResult {
  bucket: string;
  /** The bucket's rules before (empty when it had none): everything that was replaced. */
  previous: LifecycleRule[];
  /** The configuration put on the bucket (or that would be, with dryRun). */
  applied: BucketLifecycleConfiguration;
  diff: LifecycleDiff;
}

/**
 * Puts the lifecycle configuration for `rules` on the storage's bucket.
 *
 * S3 has one lifecycle configuration per bucket, and a put REPLACES it whole: rules that anyone
 * else set on the bucket (expirations, other prefixes) are gone afterwards. So the current rules
 * are read first and returned as `previous`, with a diff by rule ID, for the caller to show (or,
 * with dryRun, to ask before changing anything).
 *
 * On AWS, since September 2024 lifecycle transitions skip objects smaller than 128 KiB by default
 * (TransitionDefaultMinimumObjectSize); tar archives are far larger, small notes stay where they are.
 *
 * Needs s3:GetLifecycleConfiguration and s3:PutLifecycleConfiguration (iamPolicy with the
 * 'lifecycle' feature). Throws UnsupportedError for storage that is not S3, PolicyError for
 * invalid rules, and the S3 adapter's typed errors (AccessDenied, NoSuchBucket, ...).
 */
export async function applyLifecycle(storage: Storage, rules: readonly TagRule[] = DEFAULT_TAG_RULES, opts: ApplyLifecycleOptions = {}): Promise<ApplyLifecycleResult> {
  if (!(storage instanceof S3Storage)) {
    throw new UnsupportedError(`lifecycle rules are an S3 bucket feature; ${storage.url} is not an S3 bucket (use an s3:// URL)`);
  }
  const applied = lifecycleConfiguration(rules, { prefix: opts.prefix ?? storage.prefix });
  const bucket = storage.bucket;
  const sendOpts = opts.signal ? { abortSignal: opts.signal } : {};

  let previous: LifecycleRule[];
  try {
    previous = (await storage.client.send(new S3Sdk.GetBucketLifecycleConfigurationCommand({ Bucket: bucket }), sendOpts)).Rules ?? [];
  } catch (e) {
    if (sdkErrorCode(e) !== 'NoSuchLifecycleConfiguration') throw await lifecycleError(storage, e, 'read the lifecycle configuration of', 's3:GetLifecycleConfiguration');
    previous = [];
  }
  if (!opts.dryRun) {
    try {
      await storage.client.send(new S3Sdk.PutBucketLifecycleConfigurationCommand({ Bucket: bucket, LifecycleConfiguration: applied }), sendOpts);
    } catch (e) {
      throw await lifecycleError(storage, e, 'put the lifecycle configuration on', 's3:PutLifecycleConfiguration');
    }
  }
  return { bucket, previous, applied, diff: diffLifecycleRules(previous, applied.Rules ?? []) };
}

export interface LifecycleDiff {
  /** Rule IDs only in the new configuration. */
  added: string[];
  /** Rule IDs that were on the bucket and are not in the new configuration (they are deleted). */
  removed: string[];
  /** Rule IDs in both, with a different filter, status or action. */
  changed: string[];
  unchanged: string[];
}

/**
 * Compares two rule lists by ID. Servers echo rules back in their own shape (RGW returns an
 * And filter as Prefix plus Tag), so filters are compared by what they select, not by form.
 */
export function diffLifecycleRules(before: readonly LifecycleRule[], after: readonly LifecycleRule[]): LifecycleDiff {
  const key = (r: LifecycleRule, i: number) => r.ID ?? `(rule ${i + 1} without ID)`;
  const old = new Map(before.map((r, i) => [key(r, i), canonicalRule(r)]));
  const diff: LifecycleDiff = { added: [], removed: [], changed: [], unchanged: [] };
  const seen = new Set<string>();
  after.forEach((r, i) => {
    const id = key(r, i);
    seen.add(id);
    const was = old.get(id);
    if (was === undefined) diff.added.push(id);
    else (was === canonicalRule(r) ? diff.unchanged : diff.changed).push(id);
  });
  for (const id of old.keys()) if (!seen.has(id)) diff.removed.push(id);
  return diff;
}

function canonicalRule(r: LifecycleRule): string {
  const f = r.Filter ?? {};
  const tags = [...(f.And?.Tags ?? []), ...(f.Tag ? [f.Tag] : [])].map((t) => `${t.Key}=${t.Value}`).sort();
  return JSON.stringify({
    status: r.Status,
    prefix: f.And?.Prefix ?? f.Prefix ?? r.Prefix ?? '',
    tags,
    sizeGt: f.And?.ObjectSizeGreaterThan ?? f.ObjectSizeGreaterThan,
    sizeLt: f.And?.ObjectSizeLessThan ?? f.ObjectSizeLessThan,
    transitions: (r.Transitions ?? []).map((t) => `${t.Days ?? t.Date?.toISOString()}:${t.StorageClass}`).sort(),
    expiration: r.Expiration,
    abort: r.AbortIncompleteMultipartUpload?.DaysAfterInitiation,
    noncurrent: [r.NoncurrentVersionTransitions, r.NoncurrentVersionExpiration],
  });
}

function normalisePrefix(prefix: string | undefined): string {
  return (prefix ?? '').replace(/^\/+/, '');
}

async function lifecycleError(storage: S3Storage, e: unknown, what: string, permission: string): Promise<StorageError> {
  const ctx: ClassifyContext = { op: `${what} bucket`, bucket: storage.bucket, endpoint: await endpointLabel(storage), credentialSource: storage.credentialSource };
  const err = classifyS3Error(e, ctx);
  if (err.code !== 'AccessDenied') return err;
  // The classifier's hint lists object permissions; this one needs a bucket permission.
  return new AccessDeniedError(
    `s3: access denied when trying to ${what} bucket "${storage.bucket}" at ${ctx.endpoint}: the credentials (from ${storage.credentialSource()}) need ${permission} on arn:aws:s3:::${storage.bucket}; add it to the IAM policy of these credentials`,
    { cause: e },
  );
}

async function endpointLabel(storage: S3Storage): Promise<string> {
  const ep = await storage.client.config.endpoint?.();
  if (ep) return `${ep.protocol}//${ep.hostname}${ep.port ? `:${ep.port}` : ''}`;
  return `AWS S3 (${await storage.client.config.region()})`;
}
