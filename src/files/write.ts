import type { FileHandle } from 'node:fs/promises';

/**
 * Every byte of `buffers` written with writev, at `position` (or at the file's current offset
 * when it is null), however short the kernel's writes are. One call for many chunks: fewer
 * trips through libuv's thread pool than a write per chunk.
 */
export async function writeBuffers(fh: FileHandle, buffers: Buffer[], position: number | null = null): Promise<void> {
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
