import { createHash, type Hash } from 'node:crypto';
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
