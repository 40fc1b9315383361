// The manifest key of an archive configuration (encryption.manifest_key_file, else the key
// every Offsite feature shares): created by the first upload, only read by everything else.
import { loadManifestKey, type ManifestKey } from '../../codec/index.js';
import type { ArchiveConfig } from './config.js';

/** The key, or undefined when its file does not exist (nothing can be authenticated then). */
export async function loadArchiveManifestKey(config: Pick<ArchiveConfig, 'manifestKeyFile'>): Promise<ManifestKey | undefined> {
  return (await loadManifestKey({ file: config.manifestKeyFile }))?.key;
}

/** The key for signing, made (0600) when missing; `created` says the user must be told to keep a copy. */
export async function ensureArchiveManifestKey(config: Pick<ArchiveConfig, 'manifestKeyFile'>): Promise<{ key: ManifestKey; created: boolean }> {
  return (await loadManifestKey({ file: config.manifestKeyFile, create: true }))!;
}
