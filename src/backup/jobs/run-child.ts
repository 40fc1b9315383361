/**
 * The child side of runBackupJobIsolated (run-isolated.ts): one backup run, then exit. Started by
 * fork() only; it reads one request from the IPC channel and answers once.
 */
import { openCatalog, type Catalog } from '../../catalog/index.js';
import { openStorage, parseStorageUrl, type Storage } from '../../storage/index.js';
import { pruneBackups } from './prune.js';
import { HOST_UPLOAD_CONCURRENCY, type IsolatedPruneOutcome, type IsolatedRunReply, type IsolatedRunRequest } from './run-isolated.js';
import { runBackupJob } from './run.js';

/** The job's URL, unless it says `concurrency=N`: at HOST_UPLOAD_CONCURRENCY parts in flight. */
function gentleUploads(url: string): { concurrency?: number } {
  const loc = parseStorageUrl(url);
  return loc.kind === 's3' && loc.concurrency === undefined ? { concurrency: HOST_UPLOAD_CONCURRENCY } : {};
}

// The SDK's notice that its 2027 releases will need Node 22 (Offsite pins its SDK version) would
// reach the host's stderr on every run: the host did not make this client, so it stays quiet,
// as the CLI does. A host that sets the variable itself keeps its own choice.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const abort = new AbortController();

process.on('message', (m: { type: 'run'; request: IsolatedRunRequest } | { type: 'abort' }) => {
  if (m.type === 'abort') abort.abort();
  else void run(m.request);
});
// The host is gone (or closed the channel): the run goes with it, the upload aborted, as in process.
process.on('disconnect', () => abort.abort());

async function run({ job, catalogPath, prune, snapshotFile }: IsolatedRunRequest): Promise<void> {
  let catalog: Catalog | undefined;
  let storage: Storage | undefined;
  let reply: IsolatedRunReply;
  try {
    catalog = catalogPath ? openCatalog(catalogPath) : undefined;
    storage = job.destinationUrl ? openStorage(job.destinationUrl, gentleUploads(job.destinationUrl)) : undefined;
    const result = await runBackupJob(job, { ...(catalog ? { catalog } : {}), ...(storage ? { storage } : {}), ...(snapshotFile ? { snapshotFile } : {}), signal: abort.signal });
    // Retention after a run that reached the bucket (as the loop does in process).
    let pruned: IsolatedPruneOutcome | undefined;
    if (prune && !result.uploadError && !abort.signal.aborted) {
      pruned = await pruneBackups(job, { ...(storage ? { storage } : {}), ...(catalog ? { catalog } : {}), dryRun: false, signal: abort.signal }).then(
        (p) => ({ ok: true as const, deletedLocal: p.deletedLocal, deletedRemote: p.deletedRemote }),
        (e: unknown) => ({ ok: false as const, error: String((e as Error).message ?? e) }),
      );
    }
    reply = { ok: true, result, ...(pruned ? { prune: pruned } : {}) };
  } catch (e) {
    const err = e as { name?: unknown; code?: unknown; message?: unknown };
    reply = { ok: false, error: { name: String(err.name ?? 'Error'), code: typeof err.code === 'string' ? err.code : undefined, message: String(err.message ?? e) } };
  } finally {
    await storage?.close().catch(() => undefined);
    catalog?.close();
  }
  if (process.connected) process.send!(reply, () => process.disconnect());
}
