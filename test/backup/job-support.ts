// Backup-job tests sign their uploads with a manifest key of their own, never the user's
// ~/.config/offsite/manifest.key: children (the CLI) inherit it through the environment.
import path from 'node:path';
import { MANIFEST_KEY_ENV } from '../../src/codec/index.js';
import { tempDir } from '../support/env.js';

/** Points $OFFSITE_MANIFEST_KEY_FILE at a fresh file (created by the first upload); returns its path. */
export async function useTestManifestKey(): Promise<string> {
  const file = path.join(await tempDir('offsite-key-'), 'manifest.key');
  process.env[MANIFEST_KEY_ENV] = file;
  return file;
}
