/**
 * Planning and reporting: per-year totals of the sessions on disk with a time estimate, the
 * catalog's status, and the list of sessions with whether each is archived.
 */
import type { Catalog } from '../../catalog/index.js';
import type { Storage } from '../../storage/index.js';
import { isEncrypted, type ArchiveConfig } from './config.js';
import { archiveKey, findSessions, sessionStats } from './sessions.js';

export interface YearAnalysis {
  year: number;
  sessions: number;
  files: number;
  bytes: number;
  /** Of those, not archived yet. */
  pendingSessions: number;
  pendingBytes: number;
}

export interface Analysis {
  years: YearAnalysis[];
  total: Omit<YearAnalysis, 'year'>;
  /** Upload rate used for the estimate, and where it came from. */
  throughput: { bytesPerSecond: number; source: 'measured' | 'probe' } | undefined;
  /** Seconds to upload what is pending, at that rate. */
  estimateSeconds: number | undefined;
}

export interface SessionListing {
  sessionId: string;
  year: number;
  files: number;
  bytes: number;
  /** Its archive's key when archived (whatever settings made it), else the key an upload would use now. */
  key: string;
  archived: boolean;
  status: string;
  storageClass: string | null;
}

export async function listSessions(config: ArchiveConfig, catalog: Catalog, destination: string, opts: { year?: number; notBackedUp?: boolean } = {}): Promise<SessionListing[]> {
  const encrypted = isEncrypted(config);
  const out: SessionListing[] = [];
  for (const s of await findSessions(config)) {
    if (opts.year !== undefined && s.year !== opts.year) continue;
    // Archived is a fact of the catalog (session + destination), not of the current settings.
    const done = catalog.findDoneArchive(destination, s.id);
    const key = done?.key ?? archiveKey(config.keyTemplate, s, { compress: config.compress, encrypted });
    const row = done ?? catalog.getArchive(destination, key);
    const archived = done !== undefined;
    if (opts.notBackedUp && archived) continue;
    out.push({ sessionId: s.id, year: s.year, ...(await sessionStats(s.dir)), key, archived, status: row?.status ?? 'not archived', storageClass: row?.storageClass ?? null });
  }
  return out;
}

export async function analyzeSessions(config: ArchiveConfig, catalog: Catalog, storage: Storage, opts: { probe?: boolean } = {}): Promise<Analysis> {
  const listing = await listSessions(config, catalog, storage.url);
  const years = new Map<number, YearAnalysis>();
  for (const s of listing) {
    const y = years.get(s.year) ?? { year: s.year, sessions: 0, files: 0, bytes: 0, pendingSessions: 0, pendingBytes: 0 };
    y.sessions++;
    y.files += s.files;
    y.bytes += s.bytes;
    if (!s.archived) {
      y.pendingSessions++;
      y.pendingBytes += s.bytes;
    }
    years.set(s.year, y);
  }
  const list = [...years.values()].sort((a, b) => a.year - b.year);
  const total = list.reduce(
    (t, y) => ({ sessions: t.sessions + y.sessions, files: t.files + y.files, bytes: t.bytes + y.bytes, pendingSessions: t.pendingSessions + y.pendingSessions, pendingBytes: t.pendingBytes + y.pendingBytes }),
    { sessions: 0, files: 0, bytes: 0, pendingSessions: 0, pendingBytes: 0 },
  );
  let throughput: Analysis['throughput'];
  const measured = catalog.measuredThroughput('upload');
  if (measured) throughput = { bytesPerSecond: measured, source: 'measured' };
  else if (opts.probe !== false && total.pendingBytes > 0) throughput = { bytesPerSecond: await probeUploadRate(storage), source: 'probe' };
  return { years: list, total, throughput, estimateSeconds: throughput ? total.pendingBytes / throughput.bytesPerSecond : undefined };
}

/** A short upload of 16 MiB to a temporary key, when no earlier run measured the rate. */
async function probeUploadRate(storage: Storage): Promise<number> {
  const size = 16 * 1024 * 1024;
  const key = `.offsite-probe/rate-${Date.now()}`;
  const { randomBytes } = await import('node:crypto');
  const body = randomBytes(size);
  const t0 = process.hrtime.bigint();
  await storage.put(key, body);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  await storage.delete(key);
  return size / Math.max(seconds, 1e-3);
}
