import { Duplex } from 'node:stream';

type Chunk = Uint8Array;

/**
 * A web-streams transform (typage encrypts and decrypts ReadableStreams) run as a Node Duplex.
 * Each side holds about one chunk: a write completes only once the transform has taken the
 * chunk, and the output is read only when the consumer wants more. Every error, from whichever
 * side fails first, goes through `mapError`, so callers see one error type.
 */
export class WebTransformDuplex extends Duplex {
  readonly #writer: WritableStreamDefaultWriter<Chunk>;
  readonly #output: Promise<ReadableStreamDefaultReader<Chunk>>;
  readonly #mapError: (e: unknown) => Error;
  #pumping = false;

  constructor(start: (input: ReadableStream<Chunk>) => Promise<ReadableStream<Chunk>>, mapError: (e: unknown) => Error) {
    super();
    this.#mapError = mapError;
    const pipe = new TransformStream<Chunk, Chunk>();
    this.#writer = pipe.writable.getWriter();
    this.#output = start(pipe.readable).then((s) => s.getReader());
    // Reported by the read side (#pump); this only keeps the rejection from counting as unhandled.
    this.#output.catch(() => undefined);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#writer.write(chunk).then(
      () => callback(),
      (e: unknown) => callback(this.#mapError(e)),
    );
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#writer.close().then(
      () => callback(),
      (e: unknown) => callback(this.#mapError(e)),
    );
  }

  override _read(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    void this.#pump();
  }

  async #pump(): Promise<void> {
    try {
      const reader = await this.#output;
      while (!this.destroyed) {
        const { done, value } = await reader.read();
        if (done) {
          this.push(null);
          return;
        }
        if (!this.push(value)) return;
      }
    } catch (e) {
      this.destroy(this.#mapError(e));
    } finally {
      this.#pumping = false;
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const reason = error ?? new Error('stream destroyed');
    this.#writer.abort(reason).catch(() => undefined);
    this.#output.then((r) => r.cancel(reason)).catch(() => undefined);
    callback(error);
  }
}
