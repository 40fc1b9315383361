// Streams into new private files: how a run writes its local copy and a restore its temporary
// files. 0600 whatever the umask, never through a planted symlink (the files layer), fsynced
// before anyone renames them into place.
import { rm } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fsyncFile, openNewPrivateFile } from '../../files/index.js';

/** Pipes `streams` (a readable, then transforms) into a new private file `file`, fsynced; removed on failure. */
export async function pipeToNewPrivateFile(file: string, streams: Array<NodeJS.ReadableStream | NodeJS.ReadWriteStream>, signal?: AbortSignal): Promise<void> {
  const fh = await openNewPrivateFile(file);
  try {
    // The write stream closes the handle when it ends or fails (a handle with a stream of its
    // own would wait for that stream to close it).
    const all: Array<NodeJS.ReadableStream | NodeJS.WritableStream | NodeJS.ReadWriteStream> = [...streams, fh.createWriteStream()];
    await pipeline(all, signal ? { signal } : {});
    await fsyncFile(file);
  } catch (e) {
    await fh.close().catch(() => undefined);
    await rm(file, { force: true });
    throw e;
  }
}

/**
 * Passes at most `max` bytes and fails with `tooLong()` on the first byte past them: a download
 * whose size is known in advance never grows past it, whatever the server sends.
 */
export function byteLimit(max: number, tooLong: () => Error): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      if (seen > max) callback(tooLong());
      else callback(null, chunk);
    },
  });
}
