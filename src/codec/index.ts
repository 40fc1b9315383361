// The codec layer's public face: streaming transforms, each usable alone, memory bounded
// whatever the size of the data. Other layers import from here only.
export type { FileEntry, UnpackReport } from './types.js';
export { CodecError, isCodecError, type CodecErrorCode } from './errors.js';
export { packDirectory, type PackOptions, type PackResult } from './pack.js';
export { unpackTar, type UnpackOptions } from './unpack.js';
export { listTar, type TarListing } from './list.js';
export { gzipStream, gunzipStream } from './compress.js';
export { encryptStream, decryptStream, generateAgeIdentity, type EncryptOptions, type DecryptOptions } from './age.js';
export { throttle, TokenBucket } from './throttle.js';
export { parseRate } from './rate.js';
export { hashFile, hashingStream, HashingStream, type Digest } from './hashing.js';
export {
  ManifestKey,
  MANIFEST_KEY_ENV,
  canonicalJson,
  checkManifestMac,
  defaultManifestKeyFile,
  describeMacCheck,
  loadManifestKey,
  type LoadManifestKeyOptions,
  type ManifestMacCheck,
} from './manifest-key.js';
