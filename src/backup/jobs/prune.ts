/**
 * Retention: which backups to keep, on both sides (local directory and bucket). The rules are
 * restic's: keep the newest N (keep_last), and the newest backup of each of the last N days,
 * ISO weeks and months that have one (UTC). A backup kept by any rule is kept. The newest
 * backup in the bucket and the newest overall are always kept, whatever the rules say, so a
 * misconfigured policy can never leave a job with nothing to restore. No rules: nothing is
 * deleted.
 */
import { rm } from 'node:fs/promises';
import type { Catalog } from '../../catalog/index.js';
import type { Storage } from '../../storage/index.js';
import type { BackupJob, Retention } from './config.js';
import { listBackups, type BackupEntry } from './list.js';

export interface PruneDecision {
  entry: BackupEntry;
  keep: boolean;
  /** Which rules keep it ("last", "daily", "weekly", "monthly", "newest"), or why it goes. */
  reasons: string[];
}

export interface PruneResult {
  decisions: PruneDecision[];
  deletedLocal: string[];
  deletedRemote: string[];
  dryRun: boolean;
}

function isoWeek(d: Date): string {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const day = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - day);
  const yearStart = new Date(Date.UTC(t.getUTCFullYear(), 0, 1));
  const week = Math.ceil(((t.getTime() - yearStart.getTime()) / 86_400_000 + 1) / 7);
  return `${t.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}

/** Decisions for backups sorted newest first. */
export function applyRetention(entries: BackupEntry[], retention: Retention): PruneDecision[] {
  const decisions = entries.map((entry) => ({ entry, keep: false, reasons: [] as string[] }));
  const noRules = Object.values(retention).every((v) => v === undefined);
  if (noRules) return decisions.map((d) => ({ ...d, keep: true, reasons: ['no retention rules'] }));
  const keep = (i: number, why: string) => {
    decisions[i]!.keep = true;
    decisions[i]!.reasons.push(why);
  };
  if (retention.keepLast) for (let i = 0; i < Math.min(retention.keepLast, decisions.length); i++) keep(i, 'last');
  const periods: Array<[number | undefined, string, (d: Date) => string]> = [
    [retention.keepDaily, 'daily', (d) => d.toISOString().slice(0, 10)],
    [retention.keepWeekly, 'weekly', isoWeek],
    [retention.keepMonthly, 'monthly', (d) => d.toISOString().slice(0, 7)],
  ];
  for (const [count, label, periodOf] of periods) {
    if (!count) continue;
    const seen = new Set<string>();
    decisions.forEach((d, i) => {
      const p = periodOf(d.entry.takenAt);
      if (seen.has(p) || seen.size >= count) return;
      seen.add(p);
      keep(i, label);
    });
  }
  if (decisions.length) keep(0, 'newest');
  const newestRemote = decisions.findIndex((d) => d.entry.where !== 'local');
  if (newestRemote >= 0) keep(newestRemote, 'newest in the bucket');
  return decisions;
}

/** `catalog`: where the job's backups are recorded; the records of deleted backups go too. */
export async function pruneBackups(job: BackupJob, opts: { storage?: Storage; catalog?: Catalog; dryRun?: boolean; signal?: AbortSignal } = {}): Promise<PruneResult> {
  const entries = await listBackups(job, opts.storage, opts.signal ? { signal: opts.signal } : {});
  const decisions = applyRetention(entries, job.retention);
  const result: PruneResult = { decisions, deletedLocal: [], deletedRemote: [], dryRun: opts.dryRun ?? false };
  if (opts.dryRun) return result;
  const remote: string[] = [];
  for (const d of decisions) {
    if (d.keep) continue;
    if (d.entry.localPath) {
      await rm(d.entry.localPath, { force: true });
      await rm(`${d.entry.localPath}.sha256`, { force: true });
      result.deletedLocal.push(d.entry.name);
    }
    if (d.entry.where !== 'local') remote.push(d.entry.name);
  }
  if (remote.length && opts.storage) {
    await opts.storage.deleteMany(remote);
    result.deletedRemote.push(...remote);
  }
  for (const d of decisions) if (!d.keep) opts.catalog?.forgetBackup(job.name, d.entry.name);
  return result;
}
