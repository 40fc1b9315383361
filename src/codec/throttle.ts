import { Transform, type TransformCallback } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { CodecError } from './errors.js';

/**
 * A token bucket that may be shared by several streams (parallel part uploads) so that their sum
 * keeps to one limit. Takers reserve bytes first and then wait off the debt, so concurrent
 * takers are served in the order they asked and none can starve.
 */
export class TokenBucket {
  readonly bytesPerSecond: number;
  /**
   * The most credit idle time can save up (half a second's worth). It lets a stream catch up
   * after a short stall, such as a busy CPU or a slow request, and never lifts the average
   * above the rate: credit only accrues with time, from an empty bucket.
   */
  readonly burst: number;
  /** The most one stream lets through at a time, so one big chunk cannot go out in a lump. */
  readonly piece: number;
  #tokens = 0;
  #last = performance.now();

  constructor(bytesPerSecond: number, opts: { burst?: number } = {}) {
    if (!Number.isFinite(bytesPerSecond) || bytesPerSecond <= 0) {
      throw new CodecError('InvalidRate', `rate must be a positive number of bytes per second, got ${bytesPerSecond}`);
    }
    this.bytesPerSecond = bytesPerSecond;
    this.burst = Math.max(1, Math.floor(opts.burst ?? bytesPerSecond / 2));
    // 50 ms worth: smooth, and big enough that timers do not dominate fast limits.
    this.piece = Math.max(1, Math.min(this.burst, 1024 * 1024, Math.ceil(bytesPerSecond / 20)));
  }

  /** Resolves when `bytes` may pass. Rejects with the signal's reason if aborted while waiting. */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    const now = performance.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) / 1000) * this.bytesPerSecond);
    this.#last = now;
    this.#tokens -= bytes;
    if (this.#tokens < 0) await sleep((-this.#tokens / this.bytesPerSecond) * 1000, undefined, { signal });
  }
}

class Throttle extends Transform {
  readonly #bucket: TokenBucket;
  readonly #stop = new AbortController();

  constructor(bucket: TokenBucket) {
    super();
    this.#bucket = bucket;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#pass(chunk).then(
      () => callback(),
      (e: unknown) => {
        if (!this.destroyed) callback(e as Error);
      },
    );
  }

  async #pass(chunk: Buffer): Promise<void> {
    for (let off = 0; off < chunk.length; off += this.#bucket.piece) {
      const piece = chunk.subarray(off, off + this.#bucket.piece);
      await this.#bucket.take(piece.length, this.#stop.signal);
      this.push(piece);
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#stop.abort();
    callback(error);
  }
}

/**
 * A pass-through limited to `rate` bytes per second (a number, or a TokenBucket shared with other
 * streams). Over a transfer of a few seconds the average holds to the rate within a few percent,
 * and never exceeds it.
 */
export function throttle(rate: number | TokenBucket): Transform {
  return new Throttle(typeof rate === 'number' ? new TokenBucket(rate) : rate);
}
