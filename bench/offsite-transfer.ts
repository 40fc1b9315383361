// One Offsite transfer in its own process, so the bench measures its wall time and peak RSS
// exactly like a peer tool's. Prints one JSON line (in-process seconds, request counts).
//   offsite-transfer up FILE KEY | down KEY FILE | down-raw KEY FILE | down-ranged KEY FILE
// Target from the environment: BENCH_S3_ENDPOINT, BENCH_S3_REGION, BENCH_S3_BUCKET,
// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (the default credential chain, as a user would run it);
// BENCH_PART_SIZE_MIB and BENCH_CONCURRENCY set S3Storage's options (unset: its defaults).
//   down        S3Storage.get() piped to the file: what Offsite does today.
//   down-raw    diagnostic: the SDK's GetObject body piped directly (no resuming wrapper).
//   down-ranged diagnostic: part-sized ranged S3Storage.get()s, `concurrency` at a time,
//               written at their offsets (what aws-cli and rclone do).
import { createReadStream, createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { DEFAULT_CONCURRENCY, DEFAULT_PART_SIZE, S3Storage } from '../src/storage/index.js';

const MIB = 1024 * 1024;

function envNumber(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, not "${v}"`);
  return n;
}

function required(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

async function main(): Promise<void> {
  const [op, a, b] = process.argv.slice(2);
  if (!op || !a || !b) throw new Error('usage: offsite-transfer up FILE KEY | down KEY FILE | down-raw KEY FILE | down-ranged KEY FILE');
  const partSizeMiB = envNumber('BENCH_PART_SIZE_MIB');
  const concurrency = envNumber('BENCH_CONCURRENCY');
  const storage = new S3Storage({
    bucket: required('BENCH_S3_BUCKET'),
    endpoint: required('BENCH_S3_ENDPOINT'),
    region: process.env.BENCH_S3_REGION ?? 'us-east-1',
    forcePathStyle: true,
    ...(partSizeMiB ? { partSize: partSizeMiB * MIB } : {}),
    ...(concurrency ? { concurrency } : {}),
  });
  const t0 = process.hrtime.bigint();
  let bytes = 0;
  switch (op) {
    case 'up': {
      const res = await storage.put(b, createReadStream(a));
      bytes = res.size;
      break;
    }
    case 'down': {
      const { body, info } = await storage.get(a);
      await pipeline(body, createWriteStream(b));
      bytes = info.size;
      break;
    }
    case 'down-raw': {
      const res = await storage.client.send(new GetObjectCommand({ Bucket: storage.bucket, Key: storage.prefix + a }));
      await pipeline(res.Body as Readable, createWriteStream(b));
      bytes = res.ContentLength ?? 0;
      break;
    }
    case 'down-ranged':
      bytes = await rangedDownload(storage, a, b, (partSizeMiB ?? DEFAULT_PART_SIZE / MIB) * MIB, concurrency ?? DEFAULT_CONCURRENCY);
      break;
    default:
      throw new Error(`unknown operation "${op}"`);
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const stats = storage.stats();
  await storage.close();
  process.stdout.write(`${JSON.stringify({ op, bytes, seconds, requests: stats.requests })}\n`);
}

async function rangedDownload(storage: S3Storage, key: string, file: string, partSize: number, concurrency: number): Promise<number> {
  const { size, etag } = await storage.head(key);
  const fh = await open(file, 'w');
  try {
    let next = 0;
    const worker = async () => {
      while (next < size) {
        const start = next;
        const end = Math.min(size, start + partSize) - 1;
        next = end + 1;
        const { body } = await storage.get(key, { range: { start, end }, ifMatch: etag });
        let pos = start;
        for await (const chunk of body) {
          const buf = chunk as Buffer;
          await fh.write(buf, 0, buf.length, pos);
          pos += buf.length;
        }
        if (pos !== end + 1) throw new Error(`range ${start}-${end}: got ${pos - start} bytes`);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  } finally {
    await fh.close();
  }
  return size;
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
  process.exit(1);
});
