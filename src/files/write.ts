import type { FileHandle } from 'node:fs/promises';

/**
 * Every byte of `buffers` written with writev, at `position` (or at the file's current offset
 * when it is null), however short the kernel's writes are. One call for many chunks: fewer
 * trips through libuv's thread pool than a write per chunk.
 */
async function writeBuffers(fh: FileHandle, buffers: Buffer[], position: number | null = null): Promise<void> {
  let rest = buffers;
  let at = position;
  while (rest.length) {
    const { bytesWritten } = await fh.writev(rest, at ?? undefined);
    if (at !== null) at += bytesWritten;
    let skip = bytesWritten;
    while (rest.length && skip >= rest[0]!.length) {
      skip -= rest[0]!.length;
      rest = rest.slice(1);
    }
    if (skip > 0) rest = [rest[0]!.subarray(skip), ...rest.slice(1)];
  }
}

/** How many bytes of chunks to gather before one writev (about sixteen 64 KiB socket reads). */
export const WRITE_BATCH_BYTES = 1024 * 1024;

/**
 * Every chunk of `chunks` written to `fh` in arrival order, gathered into one writev per
 * WRITE_BATCH_BYTES (a body that arrives in 64 KiB socket reads: a write each made the caller
 * wait on the thread pool for every one). From `position` on, or at the file's current offset
 * when it is null; `onChunk` sees each chunk as it arrives (to hash it), `onWritten` gets the
 * bytes of each write once it is done. Returns the bytes written.
 */
export async function writeGathered(
  fh: FileHandle,
  chunks: AsyncIterable<Buffer>,
  opts: { position?: number | null; onChunk?: (chunk: Buffer) => void; onWritten?: (bytes: number) => void } = {},
): Promise<number> {
  let at = opts.position ?? null;
  let total = 0;
  let batch: Buffer[] = [];
  let batched = 0;
  const flush = async () => {
    await writeBuffers(fh, batch, at);
    if (at !== null) at += batched;
    total += batched;
    opts.onWritten?.(batched);
    batch = [];
    batched = 0;
  };
  for await (const chunk of chunks) {
    opts.onChunk?.(chunk);
    batch.push(chunk);
    batched += chunk.length;
    if (batched >= WRITE_BATCH_BYTES) await flush();
  }
  if (batched) await flush();
  return total;
}
