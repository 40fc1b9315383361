// `catalog rebuild`: the catalog is an index; the manifests in the bucket are the truth.
import type { Catalog, ArchiveManifest } from '../../catalog/index.js';
import type { Storage } from '../../storage/index.js';
import { readManifest } from './manifest-io.js';

export async function rebuildCatalog(storage: Storage, catalog: Catalog): Promise<{ archives: number; skipped: string[] }> {
  const manifests: ArchiveManifest[] = [];
  const skipped: string[] = [];
  for await (const e of storage.list()) {
    if (e.type !== 'object' || !e.key.endsWith('.manifest.json')) continue;
    try {
      manifests.push(await readManifest(storage, e.key));
    } catch (err) {
      skipped.push(`${e.key}: ${(err as Error).message}`);
    }
  }
  catalog.rebuildFromManifests(storage.url, manifests);
  return { archives: manifests.length, skipped };
}
