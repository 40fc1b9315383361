import { Readable } from 'node:stream';

/**
 * Something that writes the next bytes of a body into a buffer it is given: `fill` returns how
 * many it wrote, fewer than `buf.length` only at the end (0 once it is over). A producer that
 * reads files (a tar of a directory) reads them straight into the consumer's buffer this way,
 * with no chunk of its own to allocate, copy and collect.
 */
export interface Filler {
  fill(buf: Buffer): Promise<number>;
  /** Releases what the filler holds (open files); `error` when the body was abandoned. */
  close(error?: Error): Promise<void>;
}

/** A filler taken over by a consumer: it must call `finish` once, when done or failed. */
export interface TakenFiller {
  fill(buf: Buffer): Promise<number>;
  /** Ends the stream (as if it had been read to the end) or destroys it with `error`. */
  finish(error?: Error): Promise<void>;
}

/**
 * A Readable over a Filler, for every consumer of streams (it fills fresh chunks of
 * `chunkSize`). A consumer that owns its buffers (the S3 part pool) may instead take the filler
 * before anything is read and fill its own buffers: no chunk is allocated at all.
 */
export class FilledReadable extends Readable {
  private taken = false;
  private readonly chunkSize: number;

  constructor(
    private readonly filler: Filler,
    opts: { chunkSize?: number } = {},
  ) {
    super();
    this.chunkSize = opts.chunkSize ?? 1024 * 1024;
  }

  /** The filler itself, if nothing has been read yet (else undefined: read the stream). */
  takeFiller(): TakenFiller | undefined {
    if (this.taken || this.readableDidRead || this.destroyed || this.readableFlowing !== null) return undefined;
    this.taken = true;
    return {
      fill: (buf) => this.filler.fill(buf),
      finish: async (error) => {
        if (error) {
          this.destroy(error);
          return;
        }
        await this.filler.close();
        // Nothing was read through the stream: end it, so whoever waits for 'end' sees it.
        this.push(null);
        this.resume();
      },
    };
  }

  override _read(): void {
    const buf = Buffer.allocUnsafe(this.chunkSize);
    this.filler.fill(buf).then(
      (n) => {
        if (n > 0) this.push(n === buf.length ? buf : buf.subarray(0, n));
        if (n < buf.length) {
          this.filler.close().then(
            () => this.push(null),
            (e: unknown) => this.destroy(e as Error),
          );
        }
      },
      (e: unknown) => this.destroy(e as Error),
    );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.filler.close(error ?? undefined).then(
      () => callback(error),
      (e: unknown) => callback(error ?? (e as Error)),
    );
  }
}
