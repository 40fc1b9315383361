// Shared catalog test data: a fresh catalog file per test, archive inputs and manifests.
import path from 'node:path';
import { openCatalog, type ArchiveManifest, type BeginArchiveInput, type Catalog } from '../../src/catalog/index.js';
import { tempDir } from '../support/env.js';

export const DEST = 's3://astro-archive/sessions?endpoint=http%3A%2F%2F127.0.0.1%3A7480&path_style=true';
export const OTHER_DEST = 'file:///mnt/backup-disk';

export async function catalogFile(): Promise<string> {
  return path.join(await tempDir('offsite-catalog-'), 'nested', 'dir', 'catalog.db');
}

export async function freshCatalog(): Promise<Catalog> {
  return openCatalog(await catalogFile());
}

export function sha(n: number): string {
  return n.toString(16).padStart(2, '0').repeat(32);
}

export function beginInput(over: Partial<BeginArchiveInput> = {}): BeginArchiveInput {
  const key = over.key ?? '2024/2024-03-14_M42.tar.gz.age';
  return {
    sessionId: '2024-03-14_M42',
    year: 2024,
    key,
    manifestKey: `${key}.manifest.json`,
    destination: DEST,
    compression: 'gzip',
    encrypted: true,
    storageClass: 'DEEP_ARCHIVE',
    ...over,
  };
}

export function manifest(over: Partial<ArchiveManifest> = {}): ArchiveManifest {
  return {
    format: 'offsite-archive-manifest',
    version: 1,
    tool: { name: 'offsite', version: '0.1.0' },
    sessionId: '2024-03-14_M42',
    year: 2024,
    key: '2024/2024-03-14_M42.tar.gz.age',
    createdAt: '2024-03-15T02:00:00.000Z',
    compression: 'gzip',
    encryption: { type: 'age', recipients: ['age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p'], passphrase: false },
    object: { size: 1234, sha256: sha(1), etag: 'abc-2', storageClass: 'DEEP_ARCHIVE' },
    source: { root: '/data/sessions/2024-03-14_M42', files: 2, bytes: 4000 },
    files: [
      { path: '2024-03-14_M42', type: 'directory', size: 0, mode: 0o755, mtime: '2024-03-14T23:00:00.000Z' },
      { path: '2024-03-14_M42/light_001.fits', type: 'file', size: 4000, sha256: sha(2), mode: 0o644, mtime: '2024-03-14T23:10:00.000Z' },
      { path: '2024-03-14_M42/latest', type: 'symlink', size: 0, mode: 0o777, mtime: '2024-03-14T23:10:00.000Z', linkTarget: 'light_001.fits' },
    ],
    ...over,
  };
}
