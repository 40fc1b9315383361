/**
 * `catalog rebuild`: recreates the catalog from the manifests in the bucket, for a machine that
 * has lost it (or never had it). Each manifest's MAC is checked with the user's manifest key
 * and the outcome recorded with its row: restore and verify believe a rebuilt row only when
 * its manifest was authentic (trust.ts). Manifests that are not are still listed, so
 * `status` shows them, and reported here, one line each.
 */
import type { Catalog, LocatedManifest, ManifestAuth } from '../../catalog/index.js';
import { checkManifestMac, describeMacCheck } from '../../codec/index.js';
import type { Storage } from '../../storage/index.js';
import type { ArchiveConfig } from './config.js';
import { loadArchiveManifestKey } from './keys.js';
import { readStoredManifest } from './manifest-io.js';

export interface RebuildOutcome {
  /** Rows written from manifests. */
  archives: number;
  /** Of those, authenticated by the manifest key. */
  authenticated: number;
  /** Manifests not authenticated: what their check said, one line each (their rows refuse to restore). */
  unauthenticated: Array<{ manifestKey: string; status: Exclude<ManifestAuth, 'local' | 'authentic'>; message: string }>;
  /** Objects that look like manifests but could not be read as one, with why. */
  skipped: string[];
}

export async function rebuildCatalog(config: Pick<ArchiveConfig, 'manifestKeyFile'>, storage: Storage, catalog: Catalog): Promise<RebuildOutcome> {
  const key = await loadArchiveManifestKey(config);
  const manifests: LocatedManifest[] = [];
  const outcome: RebuildOutcome = { archives: 0, authenticated: 0, unauthenticated: [], skipped: [] };
  for await (const e of storage.list()) {
    if (e.type !== 'object' || !e.key.endsWith('.manifest.json')) continue;
    try {
      const stored = await readStoredManifest(storage, e.key);
      // A manifest copied to another archive's place would describe that one's neighbour.
      if (`${stored.manifest.key}.manifest.json` !== e.key) {
        outcome.skipped.push(`${e.key}: describes ${stored.manifest.key}, whose manifest lives elsewhere`);
        continue;
      }
      const check = checkManifestMac(key, stored.record, stored.mac);
      manifests.push({ manifest: stored.manifest, manifestKey: e.key, manifestSha256: stored.sha256, auth: check.status });
      if (check.status === 'authentic') outcome.authenticated++;
      else outcome.unauthenticated.push({ manifestKey: e.key, status: check.status, message: describeMacCheck(check, `manifest ${e.key}`) });
    } catch (err) {
      outcome.skipped.push(`${e.key}: ${(err as Error).message}`);
    }
  }
  outcome.archives = catalog.rebuildFromManifests(storage.url, manifests).archives;
  return outcome;
}
