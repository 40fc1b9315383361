// Uploads through a fixed pool of part buffers. lib-storage concatenates a new buffer for every
// part (each 8 MiB part allocated, copied and collected again: a third of an upload's CPU went to
// garbage collection, docs/bench.md); here each part in flight owns one reused buffer, a file is
// read into it with positioned reads (no stream chunks at all), and a stream is copied into it
// once. The SDK still builds, signs and retries every request.
import { ReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { FilledReadable } from '../../files/index.js';
import { UnsupportedError } from '../errors.js';
import { S3 } from './sdk.js';

/** S3's limit on the parts of one multipart upload. */
export const MAX_PARTS = 10_000;
/** How long an idle pool keeps its free buffers (then they are left to the garbage collector). */
const POOL_IDLE_MS = 2_000;

/**
 * Part buffers of one size, reused across parts and uploads. Buffers of another size (a grown
 * part plan) are allocated and dropped. Free buffers are kept only while uploads are running,
 * plus a moment, so an idle process does not hold partSize x concurrency for nothing.
 */
export class PartBufferPool {
  private free: Buffer[] = [];
  private inUse = 0;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly partSize: number,
    private readonly keep: number,
  ) {}

  acquire(size: number): Buffer {
    this.inUse++;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    // Every byte sent is written first (parts are sent as subarray(0, filled)), so the
    // uninitialised memory of allocUnsafe never leaves the process.
    return (size === this.partSize ? this.free.pop() : undefined) ?? Buffer.allocUnsafe(size);
  }

  release(buf: Buffer): void {
    this.inUse--;
    if (buf.length === this.partSize && this.free.length < this.keep) this.free.push(buf);
    if (this.inUse === 0 && this.free.length) {
      this.idleTimer = setTimeout(() => (this.free = []), POOL_IDLE_MS);
      this.idleTimer.unref();
    }
  }

  /** Buffers held for reuse now (for tests). */
  get freeCount(): number {
    return this.free.length;
  }
}

/** Where parts come from: fill() copies the next bytes into buf and returns how many (0 at the end). */
interface PartSource {
  fill(buf: Buffer): Promise<number>;
  close(): Promise<void>;
}

/**
 * A file's own ReadStream (made by createReadStream(path), not yet read, no start or end) is
 * read with positioned reads of the file instead; a FilledReadable (a tar of a directory) fills
 * the part buffers itself; any other stream is copied chunk by chunk.
 */
async function partSourceFor(body: Readable): Promise<PartSource> {
  const filler = body instanceof FilledReadable ? body.takeFiller() : undefined;
  if (filler) {
    let ended = false;
    return {
      async fill(buf) {
        const n = await filler.fill(buf);
        if (n < buf.length) ended = true;
        return n;
      },
      close: () => filler.finish(ended ? undefined : new Error('the upload stopped before the end of its body')),
    };
  }
  if (
    body instanceof ReadStream &&
    typeof body.path === 'string' &&
    (body as ReadStream & { start?: number }).start === undefined &&
    (body as ReadStream & { end?: number }).end === Infinity &&
    body.bytesRead === 0 &&
    body.listenerCount('data') === 0
  ) {
    const handle = await open(body.path, 'r');
    body.destroy();
    return fileSource(handle);
  }
  return streamSource(body);
}

function fileSource(handle: FileHandle): PartSource {
  let position = 0;
  return {
    async fill(buf) {
      let filled = 0;
      while (filled < buf.length) {
        const { bytesRead } = await handle.read(buf, filled, buf.length - filled, position);
        if (bytesRead === 0) break;
        filled += bytesRead;
        position += bytesRead;
      }
      return filled;
    },
    close: () => handle.close(),
  };
}

function streamSource(body: Readable): PartSource {
  const chunks = body[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  let rest: Buffer | undefined;
  let ended = false;
  return {
    async fill(buf) {
      let filled = 0;
      while (filled < buf.length) {
        if (!rest) {
          if (ended) break;
          const next = await chunks.next();
          if (next.done) {
            ended = true;
            break;
          }
          rest = typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
        }
        const copied = rest.copy(buf, filled);
        filled += copied;
        rest = copied < rest.length ? rest.subarray(copied) : undefined;
      }
      return filled;
    },
    async close() {
      if (!ended) await chunks.return?.();
    },
  };
}

export interface PooledUploadInput {
  client: S3Client;
  pool: PartBufferPool;
  /** Bucket, Key and the object's settings (Metadata, Tagging, StorageClass, ContentType). */
  params: { Bucket: string; Key: string } & Record<string, unknown>;
  body: Readable;
  partSize: number;
  /** Parts in flight (each holds one buffer of partSize). */
  queueSize: number;
  signal?: AbortSignal;
  onProgress?: (bytesSent: number) => void;
  onMultipartStart?: (uploadId: string) => void;
  /** Bytes that the store accepted, part by part. */
  onBytesSent?: (bytes: number) => void;
}

export interface PooledUploadResult {
  size: number;
  etag: string | undefined;
  versionId: string | undefined;
  multipart: boolean;
}

interface ReadPart {
  buf: Buffer;
  filled: number;
  partNumber: number;
}

/**
 * One PutObject when the body fits in one part, a multipart upload otherwise. Parts are read in
 * order, one read at a time, and sent `queueSize` at a time. On any failure (or abort) the
 * multipart upload is aborted, so no parts are left to be billed.
 */
export async function uploadPooled(input: PooledUploadInput): Promise<PooledUploadResult> {
  const { client, pool, params, partSize, signal } = input;
  const sendOptions = signal ? { abortSignal: signal } : {};
  const source = await partSourceFor(input.body);
  const held = new Set<Buffer>();
  const acquire = () => {
    const buf = pool.acquire(partSize);
    held.add(buf);
    return buf;
  };
  const release = (buf: Buffer) => {
    if (held.delete(buf)) pool.release(buf);
  };
  let sent = 0;
  const accepted = (bytes: number) => {
    sent += bytes;
    input.onBytesSent?.(bytes);
    input.onProgress?.(sent);
  };
  try {
    signal?.throwIfAborted();
    const first = acquire();
    const firstFilled = await source.fill(first);
    const second = firstFilled === partSize ? acquire() : undefined;
    const secondFilled = second ? await source.fill(second) : 0;
    if (!second || secondFilled === 0) {
      const res = await client.send(new S3.PutObjectCommand({ ...params, Body: first.subarray(0, firstFilled), ContentLength: firstFilled }), sendOptions);
      accepted(firstFilled);
      return { size: firstFilled, etag: res.ETag, versionId: res.VersionId, multipart: false };
    }
    const created = await client.send(new S3.CreateMultipartUploadCommand(params), sendOptions);
    const uploadId = created.UploadId;
    if (!uploadId) throw new Error(`the store started no multipart upload for ${params.Key} (no UploadId in its answer)`);
    input.onMultipartStart?.(uploadId);
    try {
      const etags = await sendParts(input, source, uploadId, [
        { buf: first, filled: firstFilled, partNumber: 1 },
        { buf: second, filled: secondFilled, partNumber: 2 },
      ], { acquire, release, accepted, ended: secondFilled < partSize });
      const done = await client.send(
        new S3.CompleteMultipartUploadCommand({
          Bucket: params.Bucket,
          Key: params.Key,
          UploadId: uploadId,
          MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
        }),
        sendOptions,
      );
      return { size: sent, etag: done.ETag, versionId: done.VersionId, multipart: true };
    } catch (e) {
      // Not under the caller's signal: an aborted upload must still be cleaned up.
      await client.send(new S3.AbortMultipartUploadCommand({ Bucket: params.Bucket, Key: params.Key, UploadId: uploadId })).catch(() => undefined);
      throw e;
    }
  } finally {
    for (const buf of held) release(buf);
    await source.close().catch(() => undefined);
  }
}

async function sendParts(
  input: PooledUploadInput,
  source: PartSource,
  uploadId: string,
  ready: ReadPart[],
  io: { acquire: () => Buffer; release: (buf: Buffer) => void; accepted: (bytes: number) => void; ended: boolean },
): Promise<string[]> {
  const { client, params, partSize, signal } = input;
  const etags: string[] = [];
  let nextPartNumber = ready.length + 1;
  let ended = io.ended;
  let failure: unknown;
  // Reads are chained so parts are taken from the source in order, one at a time.
  let reading: Promise<unknown> = Promise.resolve();
  const readNext = (buf: Buffer): Promise<ReadPart | undefined> => {
    const next = reading.then(async (): Promise<ReadPart | undefined> => {
      if (ended || failure !== undefined) return undefined;
      signal?.throwIfAborted();
      const filled = await source.fill(buf);
      if (filled < partSize) ended = true;
      if (filled === 0) return undefined;
      if (nextPartNumber > MAX_PARTS) {
        throw new UnsupportedError(`s3: ${params.Key} needs more than ${MAX_PARTS} parts of ${partSize} bytes; give the upload a size hint so its parts grow`);
      }
      return { buf, filled, partNumber: nextPartNumber++ };
    });
    reading = next.catch(() => undefined);
    return next;
  };
  const worker = async () => {
    let own: Buffer | undefined;
    try {
      for (;;) {
        if (failure !== undefined) return;
        let part = ready.shift();
        if (part) {
          if (own) io.release(own);
          own = part.buf;
        } else {
          own ??= io.acquire();
          part = await readNext(own);
          if (!part) return;
        }
        const res = await client.send(
          new S3.UploadPartCommand({
            Bucket: params.Bucket,
            Key: params.Key,
            UploadId: uploadId,
            PartNumber: part.partNumber,
            Body: part.buf.subarray(0, part.filled),
            ContentLength: part.filled,
          }),
          signal ? { abortSignal: signal } : {},
        );
        if (!res.ETag) throw new Error(`the store gave no ETag for part ${part.partNumber} of ${params.Key}`);
        etags[part.partNumber - 1] = res.ETag;
        io.accepted(part.filled);
      }
    } catch (e) {
      failure ??= e;
    } finally {
      if (own) io.release(own);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, input.queueSize) }, worker));
  if (failure !== undefined) throw signal?.aborted ? signal.reason : failure;
  return etags;
}
