/**
 * Read-only views for the console: the archive catalog (totals by year and storage class,
 * sessions, recent runs) and the sync device of a sync config (devices, last seen, pending work).
 */
import { openExistingCatalog, type Catalog, type OperationRow } from '../catalog/index.js';

export interface ArchivesView {
  configured: boolean;
  totals: Array<{ year: number; storage_class: string | null; archives: number; bytes: number }>;
  sessions: Array<{ session: string; year: number; status: string; size: number | null; storage_class: string | null; uploaded_at: string | null }>;
  last_runs: Array<{ kind: string; status: string; started_at: string; finished_at: string | null; bytes: number | null; error: string | null }>;
}

export interface SyncView {
  configured: boolean;
  devices: Array<{ device_id: string; name: string | null; host: string | null; self: boolean; last_seen_at: string | null; stale: boolean }>;
  pending: { entries: number; deletions: number; unsent_batches: number };
  snapshot_generation: number;
  problems: Array<{ device_id: string; code: string; message: string }>;
}

const MAX_SESSIONS = 500;
const MAX_RUNS = 20;

function runRow(r: OperationRow): ArchivesView['last_runs'][number] {
  return { kind: r.kind, status: r.status, started_at: r.startedAt, finished_at: r.finishedAt, bytes: r.bytes, error: r.error };
}

/** From `archiveCatalog` when given (opened read-mostly, never created), else the console's own catalog. */
export function archivesView(archiveCatalog: string | undefined, own: Catalog): ArchivesView {
  const other = archiveCatalog ? openExistingCatalog(archiveCatalog) : undefined;
  if (archiveCatalog && !other) return { configured: false, totals: [], sessions: [], last_runs: [] };
  const catalog = other ?? own;
  try {
    const totals = catalog.totals();
    const sessions = catalog.listArchives().slice(-MAX_SESSIONS).reverse();
    return {
      configured: other !== undefined || sessions.length > 0,
      totals: totals.map((t) => ({ year: t.year, storage_class: t.storageClass, archives: t.archives, bytes: t.bytes })),
      sessions: sessions.map((a) => ({ session: a.sessionId, year: a.year, status: a.status, size: a.size, storage_class: a.storageClass, uploaded_at: a.completedAt })),
      last_runs: catalog.recentOperations(5 * MAX_RUNS).filter((r) => r.kind !== 'backup').slice(0, MAX_RUNS).map(runRow),
    };
  } finally {
    other?.close();
  }
}

const NOT_CONFIGURED: SyncView = { configured: false, devices: [], pending: { entries: 0, deletions: 0, unsent_batches: 0 }, snapshot_generation: 0, problems: [] };

/**
 * The sync client's status() for the device a sync config describes (the same resolution as
 * `offsite sync status --config FILE`); not configured without a config, or before the device
 * is set up. Each call asks the sync backend (the devices' records): only on request.
 */
export async function syncView(configFile: string | undefined, env: NodeJS.ProcessEnv): Promise<SyncView> {
  if (!configFile) return NOT_CONFIGURED;
  const sync = await import('../sync/index.js');
  const config = sync.mergeSyncConfigs(sync.readSyncConfigFile(configFile, env).config, sync.syncConfigFromEnv(env));
  const backend = sync.resolveSyncBackend(config);
  const stateDir = config.stateDir ?? sync.defaultSyncStateDir(env);
  if (!sync.syncDeviceExists(stateDir)) return NOT_CONFIGURED;
  const client = await sync.SyncClient.open({
    stateDir,
    ...(backend ? { storageUrl: backend.url } : {}),
    ...(backend?.credentials ? { credentials: backend.credentials } : {}),
    ...(backend?.token ? { token: backend.token } : {}),
  });
  try {
    const s = await client.status();
    return {
      configured: true,
      devices: s.devices.map((d) => ({ device_id: d.deviceId, name: d.name, host: d.host, self: d.self, last_seen_at: d.lastSeenAt, stale: d.stale })),
      pending: { entries: s.pendingEntries, deletions: s.pendingDeletions, unsent_batches: s.unsentBatches },
      snapshot_generation: s.snapshotGeneration,
      problems: s.problems.map((p) => ({ device_id: p.deviceId, code: p.code, message: p.message })),
    };
  } finally {
    await client.close();
  }
}
