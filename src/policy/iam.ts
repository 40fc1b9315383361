/**
 * The least-privilege IAM policy for the credentials Offsite runs with: each feature adds the
 * S3 actions it calls, object actions only under the prefix, listing only of the prefix.
 */
import { PolicyError } from './rules.js';

/**
 * - archive: upload (single and multipart, with tags and storage class), verify, prune;
 * - restore: read, and ask for restores of archived objects (no write, no delete);
 * - lifecycle: read and replace the bucket's lifecycle rules (applyLifecycle);
 * - doctor: the read/write/delete probe under the prefix, and the bucket settings it reports.
 */
export type PolicyFeature = 'archive' | 'restore' | 'lifecycle' | 'doctor';
export const POLICY_FEATURES: readonly PolicyFeature[] = ['archive', 'restore', 'lifecycle', 'doctor'];

export interface IamPolicyOptions {
  bucket: string;
  /** Key prefix the credentials are confined to; "" or absent = the whole bucket. */
  prefix?: string;
  features: readonly PolicyFeature[];
  /** ARN partition: "aws", "aws-cn", "aws-us-gov". Default "aws". */
  partition?: string;
  /**
   * Allow s3:ListBucket on the whole bucket instead of only under the prefix. Key names outside
   * the prefix become listable (not their data), and in exchange a read of a missing key under
   * the prefix answers 404 NotFound instead of 403 AccessDenied (see iamPolicy).
   */
  listWholeBucket?: boolean;
}

export interface IamStatement {
  Sid: string;
  Effect: 'Allow';
  Action: string[];
  Resource: string[];
  Condition?: Record<string, Record<string, string[]>>;
}

export interface IamPolicyDocument {
  Version: '2012-10-17';
  Statement: IamStatement[];
}

/** Object-level actions (resource: the prefix's objects), by feature. */
const OBJECT_ACTIONS: Record<PolicyFeature, string[]> = {
  // PutObject with x-amz-tagging needs PutObjectTagging too; multipart parts of failed uploads
  // are aborted and listed (AbortMultipartUpload, ListMultipartUploadParts).
  archive: ['s3:PutObject', 's3:GetObject', 's3:DeleteObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts', 's3:PutObjectTagging', 's3:GetObjectTagging'],
  restore: ['s3:GetObject', 's3:GetObjectTagging', 's3:RestoreObject'],
  lifecycle: [],
  doctor: ['s3:PutObject', 's3:GetObject', 's3:DeleteObject'],
};

/** Bucket-level actions other than listing (resource: the bucket), by feature. */
const BUCKET_ACTIONS: Record<PolicyFeature, string[]> = {
  // A rerun after a killed upload finds and aborts its abandoned multipart uploads.
  archive: ['s3:ListBucketMultipartUploads'],
  restore: [],
  // applyLifecycle reads the rules it is about to replace.
  lifecycle: ['s3:GetLifecycleConfiguration', 's3:PutLifecycleConfiguration'],
  doctor: ['s3:GetBucketVersioning', 's3:GetBucketObjectLockConfiguration', 's3:GetLifecycleConfiguration'],
};

const LISTS: Record<PolicyFeature, boolean> = { archive: true, restore: true, lifecycle: false, doctor: true };

/**
 * The policy document for `features`, scoped to arn:aws:s3:::BUCKET (bucket actions) and
 * arn:aws:s3:::BUCKET/PREFIX* (object actions); s3:ListBucket is allowed only for listings
 * under the prefix (condition s3:prefix). No statement has a "*" resource.
 *
 * Trade-off of the listing condition: S3 answers a HEAD or GET of a missing key with 404 only
 * to a caller that may list the bucket, and such a request carries no s3:prefix, so under this
 * policy a missing key answers 403 AccessDenied (measured on Ceph RGW; AWS documents the same
 * rule). Offsite reads "no such object" from those 404s (doctor's reachability probe, existence
 * checks), so listWholeBucket trades the listing scope for them. Without a prefix the whole
 * bucket is listable anyway.
 */
export function iamPolicy(opts: IamPolicyOptions): IamPolicyDocument {
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(opts.bucket)) {
    throw new PolicyError(`iam policy: "${opts.bucket}" is not an S3 bucket name (3-63 characters: lower-case letters, digits, dots, hyphens)`);
  }
  const unknown = opts.features.filter((f) => !POLICY_FEATURES.includes(f));
  if (unknown.length) throw new PolicyError(`iam policy: unknown feature ${unknown.join(', ')}; choose from ${POLICY_FEATURES.join(', ')}`);
  if (opts.features.length === 0) throw new PolicyError(`iam policy: name at least one feature (${POLICY_FEATURES.join(', ')})`);

  const partition = opts.partition ?? 'aws';
  const prefix = (opts.prefix ?? '').replace(/^\/+/, '');
  const bucketArn = `arn:${partition}:s3:::${opts.bucket}`;
  const objectArn = `${bucketArn}/${arnLiteral(prefix)}*`;
  const features = POLICY_FEATURES.filter((f) => opts.features.includes(f));
  const union = (table: Record<PolicyFeature, string[]>) => [...new Set(features.flatMap((f) => table[f]))].sort();

  const statements: IamStatement[] = [];
  if (features.some((f) => LISTS[f])) {
    statements.push({
      Sid: 'OffsiteList',
      Effect: 'Allow',
      Action: ['s3:ListBucket'],
      Resource: [bucketArn],
      ...(prefix && !opts.listWholeBucket ? { Condition: { StringLike: { 's3:prefix': [`${arnLiteral(prefix)}*`] } } } : {}),
    });
  }
  const objectActions = union(OBJECT_ACTIONS);
  if (objectActions.length) statements.push({ Sid: 'OffsiteObjects', Effect: 'Allow', Action: objectActions, Resource: [objectArn] });
  const bucketActions = union(BUCKET_ACTIONS);
  if (bucketActions.length) statements.push({ Sid: 'OffsiteBucketSettings', Effect: 'Allow', Action: bucketActions, Resource: [bucketArn] });
  return { Version: '2012-10-17', Statement: statements };
}

/**
 * A prefix as literal text in an ARN or StringLike pattern: "*" and "?" would be wildcards
 * there, so they become the policy variables ${*} and ${?} (and "$" becomes ${$}).
 */
function arnLiteral(s: string): string {
  return s.replace(/[*?$]/g, (c) => `\${${c}}`);
}
