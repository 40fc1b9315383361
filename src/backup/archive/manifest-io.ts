// Archive manifests in storage: written signed with the manifest key, read back with what it
// takes to check them (the bytes' SHA-256, the record the MAC covers), and a byte counter for
// progress.
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { parseManifest, type ArchiveManifest } from '../../catalog/index.js';
import type { ManifestKey } from '../../codec/index.js';
import type { Storage } from '../../storage/index.js';

export interface StoredManifest {
  manifest: ArchiveManifest;
  /** The manifest as stored, without its `mac`: what the MAC covers (unknown fields included). */
  record: Record<string, unknown>;
  mac: string | undefined;
  /** SHA-256 of the stored bytes. */
  sha256: string;
}

/** The manifest's JSON text, with `mac` over everything else in it. */
export function signedManifestText(manifest: ArchiveManifest, key: ManifestKey): string {
  const { mac: _unsigned, ...record } = manifest;
  return `${JSON.stringify({ ...record, mac: key.mac(record) }, null, 1)}\n`;
}

export async function readStoredManifest(storage: Storage, manifestKey: string): Promise<StoredManifest> {
  const got = await storage.get(manifestKey);
  const chunks: Buffer[] = [];
  for await (const c of got.body as AsyncIterable<Buffer>) chunks.push(c);
  const bytes = Buffer.concat(chunks);
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new Error(`manifest ${manifestKey} is not valid JSON (${(e as Error).message})`);
  }
  const manifest = parseManifest(json, manifestKey);
  const { mac, ...record } = json as Record<string, unknown>;
  return { manifest, record, mac: typeof mac === 'string' ? mac : undefined, sha256: createHash('sha256').update(bytes).digest('hex') };
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
