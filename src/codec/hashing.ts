import { createHash, type Hash } from 'node:crypto';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { Transform, type TransformCallback } from 'node:stream';

export interface Digest {
  sha256: string;
  /**
   * Hex MD5: equals the ETag S3 gives a single-part upload, so a stored object can be checked
   * cheaply. Undefined when the stream was made with `{ md5: false }`.
   */
  md5: string | undefined;
  bytes: number;
}

/** A pass-through that hashes what flows through it (SHA-256 and MD5, in one pass). */
export class HashingStream extends Transform {
  readonly #sha256: Hash = createHash('sha256');
  readonly #md5: Hash | undefined;
  #bytes = 0;

  constructor(opts: { md5?: boolean } = {}) {
    super();
    // MD5 costs more CPU than SHA-256 here; multipart uploads (whose ETag is not an MD5) skip it.
    this.#md5 = opts.md5 === false ? undefined : createHash('md5');
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.observe(chunk);
    callback(null, chunk);
  }

  /** Hashes bytes that do not flow through the stream (a producer that reports what it wrote). */
  observe(chunk: Buffer): void {
    this.#sha256.update(chunk);
    this.#md5?.update(chunk);
    this.#bytes += chunk.length;
  }

  /** The digest of the bytes seen so far; final once the stream has finished. */
  digest(): Digest {
    // copy(): digest() may be called before the end without spoiling the running hash.
    return { sha256: this.#sha256.copy().digest('hex'), md5: this.#md5?.copy().digest('hex'), bytes: this.#bytes };
  }
}

export function hashingStream(opts: { md5?: boolean } = {}): HashingStream {
  return new HashingStream(opts);
}

/** Bytes per read of hashFile: as fast as 4 MiB here, a quarter of the memory. */
const HASH_READ_BYTES = 1024 * 1024;

/**
 * The SHA-256 and size of a file, read in 1 MiB chunks with the next read in flight while the
 * last one is hashed. For a file that is only hashed, not sent anywhere: a read stream piped
 * through a hashing Transform took 1.8 s of wall time for 1 GiB here, this takes 0.8 s.
 * Never follows a link at `file`. `onBytes` gets the running count.
 */
export async function hashFile(file: string, opts: { signal?: AbortSignal; onBytes?: (bytes: number) => void } = {}): Promise<Digest> {
  const fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const hash = createHash('sha256');
    const buffers = [Buffer.allocUnsafe(HASH_READ_BYTES), Buffer.allocUnsafe(HASH_READ_BYTES)];
    let which = 0;
    let position = 0;
    let pending = fh.read(buffers[0]!, 0, HASH_READ_BYTES, 0);
    for (;;) {
      const { bytesRead } = await pending;
      if (bytesRead === 0) break;
      opts.signal?.throwIfAborted();
      const current = buffers[which]!;
      position += bytesRead;
      which ^= 1;
      pending = fh.read(buffers[which]!, 0, HASH_READ_BYTES, position);
      hash.update(bytesRead === HASH_READ_BYTES ? current : current.subarray(0, bytesRead));
      opts.onBytes?.(position);
    }
    return { sha256: hash.digest('hex'), md5: undefined, bytes: position };
  } finally {
    await fh.close();
  }
}
