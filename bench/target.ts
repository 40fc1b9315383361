// The harness's own access to the bench bucket (create it, delete what a round left behind),
// through the SDK directly so it never depends on the code being measured.
import { CreateBucketCommand, DeleteObjectCommand, DeleteObjectsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import type { S3Target } from './types.js';

export class BenchBucket {
  private readonly client: S3Client;

  constructor(readonly target: S3Target) {
    this.client = new S3Client({
      endpoint: target.endpoint,
      region: target.region,
      forcePathStyle: true,
      credentials: { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  async create(): Promise<void> {
    try {
      await this.client.send(new CreateBucketCommand({ Bucket: this.target.bucket }));
    } catch (e) {
      if ((e as { name?: string }).name !== 'BucketAlreadyOwnedByYou') throw e;
    }
  }

  /** Deleting each object after its round keeps the bluestore file (10 GiB) from filling up. */
  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.target.bucket, Key: key }));
  }

  /** Deletes every object under `prefix` (a tree scenario's round), 1000 keys per request. */
  async deletePrefix(prefix: string): Promise<number> {
    let deleted = 0;
    let token: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.target.bucket, Prefix: prefix, ContinuationToken: token }));
      const keys = (page.Contents ?? []).map((o) => o.Key!).filter(Boolean);
      if (keys.length) {
        const res = await this.client.send(new DeleteObjectsCommand({ Bucket: this.target.bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }));
        const failed = (res.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
        if (failed.length) throw new Error(`deleting ${prefix}: ${failed.length} object(s) failed, first ${failed[0]!.Key}: ${failed[0]!.Code}`);
        deleted += keys.length;
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return deleted;
  }

  close(): void {
    this.client.destroy();
  }
}
