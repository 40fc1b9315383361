// Test data that can be checked: deterministic pseudo-random streams and SHA-256 of streams.
import { createCipheriv, createHash } from 'node:crypto';
import { Readable } from 'node:stream';

/**
 * `size` bytes of incompressible, reproducible data (AES-CTR keystream of a seed), produced in
 * 1 MiB chunks so tests can move hundreds of MB without holding them.
 */
export function pseudoRandomStream(size: number, seed = 'offsite'): Readable {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zero = Buffer.alloc(1024 * 1024);
  let left = size;
  return new Readable({
    read() {
      if (left <= 0) return void this.push(null);
      const n = Math.min(left, zero.length);
      left -= n;
      this.push(cipher.update(zero.subarray(0, n)));
    },
  });
}

export async function sha256OfStream(stream: AsyncIterable<Buffer | string>): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    h.update(b);
    size += b.length;
  }
  return { sha256: h.digest('hex'), size };
}

export async function readAll(stream: AsyncIterable<Buffer | string>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : c);
  return Buffer.concat(chunks);
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function md5(data: Buffer | string): string {
  return createHash('md5').update(data).digest('hex');
}
