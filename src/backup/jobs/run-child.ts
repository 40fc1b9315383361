/**
 * The child side of runBackupJobIsolated (run-isolated.ts): one backup run, then exit. Started by
 * fork() only; it reads one request from the IPC channel and answers once.
 */
import { openCatalog, type Catalog } from '../../catalog/index.js';
import { openStorage, type Storage } from '../../storage/index.js';
import type { IsolatedRunReply, IsolatedRunRequest } from './run-isolated.js';
import { runBackupJob } from './run.js';

const abort = new AbortController();

process.on('message', (m: { type: 'run'; request: IsolatedRunRequest } | { type: 'abort' }) => {
  if (m.type === 'abort') abort.abort();
  else void run(m.request);
});
// The host is gone (or closed the channel): the run goes with it, the upload aborted, as in process.
process.on('disconnect', () => abort.abort());

async function run({ job, catalogPath }: IsolatedRunRequest): Promise<void> {
  let catalog: Catalog | undefined;
  let storage: Storage | undefined;
  let reply: IsolatedRunReply;
  try {
    catalog = catalogPath ? openCatalog(catalogPath) : undefined;
    storage = job.destinationUrl ? openStorage(job.destinationUrl) : undefined;
    const result = await runBackupJob(job, { ...(catalog ? { catalog } : {}), ...(storage ? { storage } : {}), signal: abort.signal });
    reply = { ok: true, result };
  } catch (e) {
    const err = e as { name?: unknown; code?: unknown; message?: unknown };
    reply = { ok: false, error: { name: String(err.name ?? 'Error'), code: typeof err.code === 'string' ? err.code : undefined, message: String(err.message ?? e) } };
  } finally {
    await storage?.close().catch(() => undefined);
    catalog?.close();
  }
  if (process.connected) process.send!(reply, () => process.disconnect());
}
