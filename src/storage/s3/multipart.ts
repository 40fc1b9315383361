// Finding and aborting multipart uploads that a killed process left behind: S3 keeps (and bills)
// their parts until someone aborts them.
import type { S3Client } from '@aws-sdk/client-s3';
import { S3 } from './sdk.js';

export async function abortMultipartUploadsUnder(client: S3Client, bucket: string, keyPrefix: string, signal?: AbortSignal): Promise<string[]> {
  const aborted: string[] = [];
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  const opts = signal ? { abortSignal: signal } : {};
  for (;;) {
    const page = await client.send(new S3.ListMultipartUploadsCommand({ Bucket: bucket, Prefix: keyPrefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }), opts);
    for (const u of page.Uploads ?? []) {
      if (!u.Key || !u.UploadId) continue;
      await client.send(new S3.AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }), opts);
      aborted.push(u.UploadId);
    }
    if (!page.IsTruncated) return aborted;
    keyMarker = page.NextKeyMarker;
    uploadIdMarker = page.NextUploadIdMarker;
  }
}
