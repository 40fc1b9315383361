import type { Transform } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import { CodecError } from './errors.js';

// gzip only: Node 20's zlib has no zstd (it arrives, experimental, in Node 22.15), and a native
// zstd addon would be the only dependency here that needs a compiler. Backups of already
// compressed data (FITS.fz, JPEG, video) should skip compression altogether.

/** gzip, level 1 (fastest) to 9 (smallest); 6 is zlib's default. */
export function gzipStream(level = 6): Transform {
  if (!Number.isInteger(level) || level < 0 || level > 9) {
    throw new CodecError('InvalidArgument', `gzip level must be an integer from 0 to 9, got ${level}`);
  }
  return createGzip({ level });
}

/** gunzip; also reads concatenated gzip members, as `gzip -d` does. */
export function gunzipStream(): Transform {
  return createGunzip();
}
