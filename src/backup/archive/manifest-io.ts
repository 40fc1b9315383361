// Reading an archive's manifest object back from storage, and counting bytes for progress.
import { Transform } from 'node:stream';
import { parseManifest, type ArchiveManifest } from '../../catalog/index.js';
import type { Storage } from '../../storage/index.js';

export async function readManifest(storage: Storage, manifestKey: string): Promise<ArchiveManifest> {
  const got = await storage.get(manifestKey);
  const chunks: Buffer[] = [];
  for await (const c of got.body as AsyncIterable<Buffer>) chunks.push(c);
  let json: unknown;
  try {
    json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (e) {
    throw new Error(`manifest ${manifestKey} is not valid JSON (${(e as Error).message})`);
  }
  return parseManifest(json);
}

/** Passes bytes through, reporting the running total (a stage, so it never changes flow mode). */
export function progressCounter(onBytes: (done: number) => void): Transform {
  let done = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      done += chunk.length;
      onBytes(done);
      cb(null, chunk);
    },
  });
}
