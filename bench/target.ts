// The harness's own access to the bench bucket (create it, delete what a round left behind),
// through the SDK directly so it never depends on the code being measured.
import { CreateBucketCommand, DeleteObjectCommand, S3Client } from '@aws-sdk/client-s3';
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

  close(): void {
    this.client.destroy();
  }
}
