import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { ArchivedObjectError, NoSuchBucketError, StorageError, UnsupportedError } from '../errors.js';
import { assertValidKey, normaliseMetadata, unquoteEtag } from '../keys.js';
import { StatsCounter, type RequestStats } from '../stats.js';
import type {
  Capabilities,
  GetOptions,
  GetResult,
  ListEntry,
  ListOptions,
  ObjectInfo,
  PresignOptions,
  PutBody,
  PutOptions,
  PutResult,
  RestoreOptions,
  SignalOption,
  Storage,
} from '../types.js';
import { classifyS3Error, sdkErrorCode, type ClassifyContext } from './classify.js';
import { abortMultipartUploadsUnder } from './multipart.js';
import { createS3Client, type S3ClientOptions } from './client.js';
import { resumingBody } from './download.js';
import { presigner, S3 } from './sdk.js';
import { PartBufferPool, uploadPooled } from './upload.js';

export interface S3StorageOptions extends S3ClientOptions {
  bucket: string;
  /** Key prefix this storage is confined to ("backups/" -> every key is stored under it). */
  prefix?: string;
  /**
   * Part size of multipart uploads (min 5 MiB). Larger parts: fewer requests, more memory, and
   * larger streams (S3 allows 10,000 parts: 78 GiB at the default 8 MiB; a put with a
   * `sizeHint` grows its parts past that, see multipartPlan).
   */
  partSize?: number;
  /** Parts uploaded in parallel. Memory in flight is about partSize x concurrency. */
  concurrency?: number;
  /** Largest body a conditional put may buffer (conditional puts cannot be multipart). */
  maxConditionalPutBytes?: number;
}

// 8 MiB x 4 (aws-cli's part size): 32 MiB per upload. 16 MiB parts took a 1 GiB upload in the
// bench to ~200 MB peak RSS for no measured gain in speed (docs/bench.md).
export const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
export const DEFAULT_CONCURRENCY = 4;
const MIN_PART_SIZE = 5 * 1024 * 1024;
const MAX_PART_SIZE = 5 * 1024 * 1024 * 1024;
/** S3's limit is 10,000 parts; aiming at 9,000 leaves room for an estimate that fell short. */
const TARGET_MAX_PARTS = 9_000;
const DELETE_BATCH = 1000;

/**
 * Part size and parts in flight for a stream of about `sizeHint` bytes: the configured part size
 * unless the stream would need more than 9,000 parts, then whole MiB large enough. Bigger parts
 * mean fewer in flight, so memory stays near the configured partSize x concurrency (and at
 * least one part).
 */
export function multipartPlan(sizeHint: number | undefined, partSize: number, concurrency: number): { partSize: number; queueSize: number } {
  if (sizeHint === undefined || !(sizeHint > partSize * TARGET_MAX_PARTS)) return { partSize, queueSize: concurrency };
  const MiB = 1024 * 1024;
  const grown = Math.min(MAX_PART_SIZE, Math.ceil(sizeHint / TARGET_MAX_PARTS / MiB) * MiB);
  return { partSize: grown, queueSize: Math.max(1, Math.floor((partSize * concurrency) / grown)) };
}

/**
 * S3 and S3-compatible stores through the AWS SDK v3. Uploads go through a pool of part buffers
 * (upload.ts: one PutObject below partSize, multipart above, bounded memory); downloads stream and resume
 * with a Range request after a dropped connection (download.ts).
 */
export class S3Storage implements Storage {
  readonly url: string;
  readonly capabilities: Capabilities;
  readonly bucket: string;
  readonly prefix: string;
  readonly client: S3Client;
  readonly credentialSource: () => string;
  private readonly endpointLabel: string;
  private readonly counter = new StatsCounter();
  private readonly partSize: number;
  private readonly concurrency: number;
  private readonly maxConditionalPutBytes: number;
  private readonly maxAttempts: number;
  private readonly partBuffers: PartBufferPool;
  private bucketChecked = false;

  constructor(opts: S3StorageOptions) {
    if (!opts.bucket) throw new StorageError('InvalidUrl', 's3: a bucket name is required (s3://BUCKET/prefix)');
    this.bucket = opts.bucket;
    this.prefix = opts.prefix ? opts.prefix.replace(/^\/+/, '') : '';
    this.partSize = Math.max(opts.partSize ?? DEFAULT_PART_SIZE, MIN_PART_SIZE);
    this.concurrency = Math.max(1, opts.concurrency ?? DEFAULT_CONCURRENCY);
    this.maxConditionalPutBytes = opts.maxConditionalPutBytes ?? 64 * 1024 * 1024;
    this.maxAttempts = opts.maxAttempts ?? 5;
    this.partBuffers = new PartBufferPool(this.partSize, this.concurrency);
    const { client, credentialSource } = createS3Client({ ...opts, maxSockets: Math.max(opts.maxSockets ?? 0, this.concurrency * 2, 16) }, this.counter);
    this.client = client;
    this.credentialSource = credentialSource;
    this.endpointLabel = opts.endpoint ?? `AWS S3 (${opts.region ?? process.env.AWS_REGION ?? 'us-east-1'})`;
    this.url = `s3://${this.bucket}/${this.prefix}`;
    this.capabilities = { restoreArchived: true, presign: true, storageClasses: true, connections: this.concurrency };
  }

  async put(key: string, body: PutBody, opts: PutOptions = {}): Promise<PutResult> {
    const fullKey = this.fullKey(key);
    const conditional = opts.ifNoneMatch !== undefined || opts.ifMatch !== undefined;
    const ctx = this.ctx('put', fullKey, conditional);
    const common = {
      Bucket: this.bucket,
      Key: fullKey,
      ...(opts.metadata ? { Metadata: normaliseMetadata(opts.metadata) } : {}),
      ...(opts.tags && Object.keys(opts.tags).length ? { Tagging: new URLSearchParams(opts.tags).toString() } : {}),
      ...(opts.storageClass ? { StorageClass: opts.storageClass as never } : {}),
      ...(opts.contentType ? { ContentType: opts.contentType } : {}),
    };
    try {
      if (conditional || typeof body === 'string' || body instanceof Uint8Array) {
        // Conditions apply to a single PutObject (a multipart upload cannot carry them on every
        // server), so the body is buffered, bounded by maxConditionalPutBytes.
        const bytes = typeof body === 'string' || body instanceof Uint8Array ? Buffer.from(body) : await this.bufferBounded(body, key, opts.signal);
        const res = await this.client.send(
          new S3.PutObjectCommand({
            ...common,
            Body: bytes,
            ContentLength: bytes.length,
            // RGW (and DigitalOcean Spaces) match If-Match only against the bare ETag.
            ...(opts.ifMatch !== undefined ? { IfMatch: unquoteEtag(opts.ifMatch) } : {}),
            ...(opts.ifNoneMatch !== undefined ? { IfNoneMatch: opts.ifNoneMatch } : {}),
          }),
          opts.signal ? { abortSignal: opts.signal } : {},
        );
        this.counter.up(bytes.length);
        opts.onProgress?.(bytes.length);
        return { key, etag: unquoteEtag(res.ETag), size: bytes.length, ...(res.VersionId ? { versionId: res.VersionId } : {}) };
      }
      return await this.putStream(key, fullKey, body, common, opts);
    } catch (e) {
      throw classifyS3Error(e, ctx);
    }
  }

  private async putStream(key: string, fullKey: string, body: Readable, params: Record<string, unknown>, opts: PutOptions): Promise<PutResult> {
    const plan = multipartPlan(opts.sizeHint, this.partSize, this.concurrency);
    const res = await uploadPooled({
      client: this.client,
      pool: this.partBuffers,
      params: params as { Bucket: string; Key: string },
      body,
      partSize: plan.partSize,
      queueSize: plan.queueSize,
      onBytesSent: (n) => this.counter.up(n),
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
      ...(opts.onMultipartStart ? { onMultipartStart: opts.onMultipartStart } : {}),
    });
    let etag = unquoteEtag(res.etag);
    // RGW returns an empty ETag for a completed multipart upload: ask for it.
    if (!etag) etag = (await this.headFull(fullKey, opts.signal)).etag;
    // Some servers (RGW 16.2) ignore Tagging on CreateMultipartUpload: set the tags after.
    if (params.Tagging && res.multipart) {
      await this.client.send(
        new S3.PutObjectTaggingCommand({ Bucket: this.bucket, Key: fullKey, Tagging: { TagSet: Object.entries(opts.tags ?? {}).map(([Key, Value]) => ({ Key, Value })) } }),
        opts.signal ? { abortSignal: opts.signal } : {},
      );
    }
    return { key, etag, size: res.size, ...(res.versionId ? { versionId: res.versionId } : {}) };
  }

  private async bufferBounded(body: Readable, key: string, signal?: AbortSignal): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of body) {
      signal?.throwIfAborted();
      total += (chunk as Buffer).length;
      if (total > this.maxConditionalPutBytes) {
        body.destroy();
        throw new UnsupportedError(`s3: conditional put of "${key}" is larger than ${this.maxConditionalPutBytes} bytes; conditional writes are single requests, so keep such objects small`);
      }
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks);
  }

  async get(key: string, opts: GetOptions = {}): Promise<GetResult> {
    const fullKey = this.fullKey(key);
    const ctx = this.ctx('get', fullKey);
    const open = async (start: number | undefined, ifMatch: string | undefined) => {
      const end = opts.range?.end;
      const range = start !== undefined ? `bytes=${start}-${end ?? ''}` : undefined;
      return this.client.send(
        new S3.GetObjectCommand({ Bucket: this.bucket, Key: fullKey, ...(range ? { Range: range } : {}), ...(ifMatch ? { IfMatch: ifMatch } : {}) }),
        opts.signal ? { abortSignal: opts.signal } : {},
      );
    };
    try {
      const res = await open(opts.range?.start, opts.ifMatch === undefined ? undefined : unquoteEtag(opts.ifMatch)).catch((e) => {
        // The store says "archived" as 403 InvalidObjectState: name the storage class if we can.
        if (sdkErrorCode(e) === 'InvalidObjectState') throw new ArchivedObjectError(fullKey, (e as { StorageClass?: string }).StorageClass, e);
        throw e;
      });
      const info = this.infoFromResponse(key, res);
      const expected = res.ContentLength ?? 0;
      const first = res.Body as Readable;
      const startOffset = opts.range?.start ?? 0;
      // Resume after a dropped connection: same ETag (never splice two versions), next byte.
      const body = resumingBody({
        first,
        expected,
        maxRetries: this.maxAttempts - 1,
        reopen: async (received) => (await open(startOffset + received, info.etag)).Body as Readable,
        classify: (e) => classifyS3Error(e, ctx),
        onBytes: (n) => this.counter.down(n),
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      return { body, info };
    } catch (e) {
      throw await this.classifyMaybeBucket(e, ctx);
    }
  }

  async head(key: string, opts: SignalOption = {}): Promise<ObjectInfo> {
    const info = await this.headFull(this.fullKey(key), opts.signal);
    return { ...info, key };
  }

  private async headFull(fullKey: string, signal?: AbortSignal): Promise<ObjectInfo> {
    const ctx = this.ctx('head', fullKey);
    try {
      const res = await this.client.send(new S3.HeadObjectCommand({ Bucket: this.bucket, Key: fullKey }), signal ? { abortSignal: signal } : {});
      return this.infoFromResponse(fullKey, res);
    } catch (e) {
      throw await this.classifyMaybeBucket(e, ctx);
    }
  }

  async *list(opts: ListOptions = {}): AsyncIterable<ListEntry> {
    const prefix = this.prefix + (opts.prefix ?? '');
    const ctx = this.ctx('list', prefix);
    let token: string | undefined;
    do {
      let res;
      try {
        res = await this.client.send(
          new S3.ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: prefix || undefined,
            Delimiter: opts.delimiter || undefined,
            StartAfter: token === undefined && opts.startAfter !== undefined ? this.prefix + opts.startAfter : undefined,
            ContinuationToken: token,
          }),
          opts.signal ? { abortSignal: opts.signal } : {},
        );
      } catch (e) {
        throw classifyS3Error(e, ctx);
      }
      // A page holds objects and common prefixes separately, each sorted: merge them.
      const entries: ListEntry[] = [
        ...(res.Contents ?? []).map(
          (o): ListEntry => ({
            type: 'object',
            key: (o.Key ?? '').slice(this.prefix.length),
            size: o.Size ?? 0,
            etag: unquoteEtag(o.ETag),
            lastModified: o.LastModified ?? new Date(0),
            storageClass: o.StorageClass ?? 'STANDARD',
          }),
        ),
        ...(res.CommonPrefixes ?? []).map((p): ListEntry => ({ type: 'prefix', prefix: (p.Prefix ?? '').slice(this.prefix.length) })),
      ];
      entries.sort((a, b) => Buffer.compare(Buffer.from(a.type === 'object' ? a.key : a.prefix), Buffer.from(b.type === 'object' ? b.key : b.prefix)));
      yield* entries;
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(key: string, opts: SignalOption = {}): Promise<void> {
    const fullKey = this.fullKey(key);
    try {
      await this.client.send(new S3.DeleteObjectCommand({ Bucket: this.bucket, Key: fullKey }), opts.signal ? { abortSignal: opts.signal } : {});
    } catch (e) {
      const err = classifyS3Error(e, this.ctx('delete', fullKey));
      if (err.code !== 'NotFound') throw err;
    }
  }

  async deleteMany(keys: Iterable<string> | AsyncIterable<string>, opts: SignalOption = {}): Promise<{ deleted: number }> {
    let deleted = 0;
    let batch: string[] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      const ctx = this.ctx('delete', batch[0]);
      let res;
      try {
        res = await this.client.send(
          new S3.DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
          opts.signal ? { abortSignal: opts.signal } : {},
        );
      } catch (e) {
        throw classifyS3Error(e, ctx);
      }
      const failures = (res.Errors ?? []).filter((f) => f.Code !== 'NoSuchKey');
      if (failures.length) {
        const f = failures[0]!;
        throw classifyS3Error({ name: f.Code, Code: f.Code, message: f.Message }, this.ctx('delete', f.Key));
      }
      deleted += batch.length;
      batch = [];
    };
    for await (const key of keys) {
      batch.push(this.fullKey(key));
      if (batch.length === DELETE_BATCH) await flush();
    }
    await flush();
    return { deleted };
  }

  async getTags(key: string, opts: SignalOption = {}): Promise<Record<string, string>> {
    const fullKey = this.fullKey(key);
    try {
      const res = await this.client.send(new S3.GetObjectTaggingCommand({ Bucket: this.bucket, Key: fullKey }), opts.signal ? { abortSignal: opts.signal } : {});
      return Object.fromEntries((res.TagSet ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
    } catch (e) {
      throw await this.classifyMaybeBucket(e, this.ctx('get tags of', fullKey));
    }
  }

  async restoreArchived(key: string, opts: RestoreOptions): Promise<'started' | 'in-progress' | 'already-restored'> {
    const fullKey = this.fullKey(key);
    try {
      const res = await this.client.send(
        new S3.RestoreObjectCommand({
          Bucket: this.bucket,
          Key: fullKey,
          RestoreRequest: { Days: opts.days, GlacierJobParameters: { Tier: opts.tier ?? 'Standard' } },
        }),
        opts.signal ? { abortSignal: opts.signal } : {},
      );
      return res.$metadata.httpStatusCode === 200 ? 'already-restored' : 'started';
    } catch (e) {
      if (sdkErrorCode(e) === 'RestoreAlreadyInProgress') return 'in-progress';
      // AWS refuses to restore an object that is not in an archive class (STANDARD, GLACIER_IR...):
      // its data can be read now, which is what the caller wants to know.
      if (sdkErrorCode(e) === 'InvalidObjectState' || sdkErrorCode(e) === 'ObjectAlreadyInActiveTierError') return 'already-restored';
      throw classifyS3Error(e, this.ctx('restore', fullKey));
    }
  }

  async abortMultipartUploads(keyPrefix: string, opts: SignalOption = {}): Promise<string[]> {
    const fullPrefix = this.prefix + keyPrefix;
    try {
      return await abortMultipartUploadsUnder(this.client, this.bucket, fullPrefix, opts.signal);
    } catch (e) {
      throw classifyS3Error(e, this.ctx('abort multipart uploads', fullPrefix));
    }
  }

  async presign(key: string, opts: PresignOptions): Promise<string> {
    const fullKey = this.fullKey(key);
    const command = opts.method === 'GET' ? new S3.GetObjectCommand({ Bucket: this.bucket, Key: fullKey }) : new S3.PutObjectCommand({ Bucket: this.bucket, Key: fullKey });
    try {
      return await presigner.getSignedUrl(this.client, command, { expiresIn: opts.expiresIn });
    } catch (e) {
      throw classifyS3Error(e, this.ctx('presign', fullKey));
    }
  }

  stats(): RequestStats {
    return this.counter.snapshot();
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  // --- helpers ----------------------------------------------------------------

  private fullKey(key: string): string {
    assertValidKey(key);
    return this.prefix + key;
  }

  private ctx(op: string, key: string | undefined, conditional = false): ClassifyContext {
    return {
      op,
      bucket: this.bucket,
      endpoint: this.endpointLabel,
      credentialSource: this.credentialSource,
      conditional,
      ...(key !== undefined ? { key } : {}),
    };
  }

  /**
   * A HEAD answers a missing bucket with a bare 404, like a missing key. The first time an
   * instance sees such a 404 it asks HeadBucket once, so a typo in the bucket name is reported
   * as such instead of as "no object".
   */
  /**
   * A HEAD answer has no body, so a 403 does not say whether the signature was wrong or the
   * permission missing. A one-byte GET of the same key (same permission) carries the error code.
   */
  private async explainBodylessDenial(err: StorageError, ctx: ClassifyContext): Promise<StorageError> {
    try {
      await this.client.send(new S3.GetObjectCommand({ Bucket: this.bucket, Key: ctx.key, Range: 'bytes=0-0' }));
    } catch (ge) {
      if (sdkErrorCode(ge)) return classifyS3Error(ge, ctx);
    }
    return err;
  }

  private async classifyMaybeBucket(e: unknown, ctx: ClassifyContext): Promise<StorageError> {
    const err = classifyS3Error(e, ctx);
    if (err.code === 'AccessDenied' && ['Unknown', 'Forbidden', '403'].includes(sdkErrorCode(e)) && ctx.key !== undefined) return this.explainBodylessDenial(err, ctx);
    if (err.code !== 'NotFound' || this.bucketChecked) return err;
    try {
      await this.client.send(new S3.HeadBucketCommand({ Bucket: this.bucket }));
      this.bucketChecked = true;
    } catch (be) {
      const status = (be as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 404 || sdkErrorCode(be) === 'NoSuchBucket' || sdkErrorCode(be) === 'NotFound') {
        return classifyS3Error({ name: 'NoSuchBucket', $metadata: { httpStatusCode: 404 } }, { ...ctx, key: undefined } as ClassifyContext) as NoSuchBucketError;
      }
    }
    return err;
  }

  private infoFromResponse(
    key: string,
    res: {
      ContentLength?: number;
      ContentRange?: string;
      ETag?: string;
      LastModified?: Date;
      StorageClass?: string;
      Metadata?: Record<string, string>;
      ContentType?: string;
      VersionId?: string;
      Restore?: string;
    },
  ): ObjectInfo {
    // For a ranged GET the object's size is after the "/" of Content-Range.
    const total = res.ContentRange ? Number(res.ContentRange.split('/')[1]) : undefined;
    const info: ObjectInfo = {
      key,
      size: total !== undefined && Number.isFinite(total) ? total : (res.ContentLength ?? 0),
      etag: unquoteEtag(res.ETag),
      lastModified: res.LastModified ?? new Date(0),
      storageClass: res.StorageClass ?? 'STANDARD',
      metadata: { ...(res.Metadata ?? {}) },
      ...(res.ContentType ? { contentType: res.ContentType } : {}),
      ...(res.VersionId ? { versionId: res.VersionId } : {}),
    };
    if (res.Restore) {
      const ongoing = /ongoing-request="true"/.test(res.Restore);
      const expiry = /expiry-date="([^"]+)"/.exec(res.Restore)?.[1];
      info.restore = { ongoing, ...(expiry ? { expiry: new Date(expiry) } : {}) };
    }
    return info;
  }
}
