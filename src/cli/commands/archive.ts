// offsite archive …: session directories as tar archives by year, tracked in a SQLite catalog.
// The engine (SQLite, tar, age) is loaded when an archive command runs, not when `offsite` starts.
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import type { ArchiveConfig, ConfigOverrides } from '../../backup/archive/index.js';
import type { Catalog } from '../../catalog/index.js';
import type { Storage } from '../../storage/index.js';
import { archiveReporter } from '../archive-progress.js';
import { EXIT } from '../exit-codes.js';
import { formatBytes, formatDuration, note, parsePairs, printJson, printJsonLine, printLine, UsageError, type GlobalOptions } from '../output.js';

interface ArchiveGroupOptions extends GlobalOptions {
  config?: string;
  url?: string;
  root?: string;
  catalog?: string;
}

const archiveLib = () => import('../../backup/archive/index.js');
/** Also in src/backup/archive/config.ts; repeated here so `--help` does not load the engine. */
export const DEFAULT_CONFIG_FILE = 'offsite-archive.toml';
const collect = (v: string, prev: string[] = []) => [...prev, v];
const MIB = 1024 * 1024;

function positiveInt(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${flag} must be a positive whole number, not "${v}"`);
  return n;
}

/** Loads the config (flags over environment over file), opens storage and catalog, runs `fn`. */
async function withArchive<T>(g: ArchiveGroupOptions, extra: ConfigOverrides, fn: (c: ArchiveConfig, s: Storage, cat: Catalog) => Promise<T>): Promise<T> {
  const overrides: ConfigOverrides = {
    ...(g.url ? { 'destination.url': g.url } : {}),
    ...(g.root ? { 'sessions.root': g.root } : {}),
    ...(g.catalog ? { 'catalog.path': g.catalog } : {}),
    ...extra,
  };
  const { loadArchiveConfig } = await archiveLib();
  const { openCatalog } = await import('../../catalog/index.js');
  const { openStorage } = await import('../../storage/index.js');
  const config = await loadArchiveConfig(g.config, overrides);
  const storage = openStorage(config.destinationUrl, { partSize: config.partSizeMiB * MIB, concurrency: config.concurrency });
  const catalog = openCatalog(config.catalogPath);
  try {
    return await fn(config, storage, catalog);
  } finally {
    catalog.close();
    await storage.close();
  }
}

function reporterFor(g: GlobalOptions) {
  return archiveReporter(g.json ? 'json' : g.progress !== false && process.stderr.isTTY ? 'tty' : 'lines');
}

export function registerArchiveCommands(program: Command): void {
  const archive = program
    .command('archive')
    .description('archive session directories as one tar per session, by year, tracked in a SQLite catalog')
    .option('--config <file>', `config file (default: $OFFSITE_ARCHIVE_CONFIG, else ./${DEFAULT_CONFIG_FILE} if present)`)
    .option('--url <url>', 'destination storage URL (overrides destination.url)')
    .option('--root <dir>', 'sessions root directory (overrides sessions.root)')
    .option('--catalog <file>', 'SQLite catalog file (overrides catalog.path)');

  archive
    .command('init-config')
    .description('write a commented config file to start from')
    .argument('[file]', 'where to write it', DEFAULT_CONFIG_FILE)
    .option('--force', 'overwrite an existing file')
    .action(async (file: string, o: { force?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<ArchiveGroupOptions>();
      if (existsSync(file) && !o.force) throw new UsageError(`${file} exists: pass --force to overwrite it`);
      await writeFile(file, (await archiveLib()).exampleConfig({ ...(g.url ? { url: g.url } : {}), ...(g.root ? { root: g.root } : {}) }));
      if (g.json) printJson({ ok: true, file });
      else note(`wrote ${file}: edit destination.url and sessions.root, then run "offsite archive analyze"`);
    });

  archive
    .command('analyze')
    .description('per year: sessions, files, bytes, what is not archived yet, and an upload time estimate')
    .option('--no-probe', 'no probe upload when no earlier run measured the rate')
    .action(async (o: { probe?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<ArchiveGroupOptions>();
      await withArchive(g, {}, async (config, storage, catalog) => {
        const a = await (await archiveLib()).analyzeSessions(config, catalog, storage, { probe: o.probe !== false });
        if (g.json) return printJson(a);
        printLine(`year  sessions     files         size   to upload`);
        for (const y of a.years) printLine(`${y.year}  ${String(y.sessions).padStart(8)}  ${String(y.files).padStart(8)}  ${formatBytes(y.bytes).padStart(11)}  ${formatBytes(y.pendingBytes).padStart(10)} (${y.pendingSessions} sessions)`);
        printLine(`total ${String(a.total.sessions).padStart(8)}  ${String(a.total.files).padStart(8)}  ${formatBytes(a.total.bytes).padStart(11)}  ${formatBytes(a.total.pendingBytes).padStart(10)} (${a.total.pendingSessions} sessions)`);
        if (a.throughput && a.estimateSeconds !== undefined) {
          printLine(`estimate: ${formatDuration(a.estimateSeconds)} at ${formatBytes(a.throughput.bytesPerSecond)}/s (${a.throughput.source === 'measured' ? 'measured on earlier runs' : 'from a 16 MiB probe upload'})`);
        }
      });
    });

  archive
    .command('upload')
    .description('upload sessions not archived yet (resumes after an interrupted run)')
    .option('--session-id <id>', 'only this session')
    .option('--year <year>', 'only sessions of this year')
    .option('--limit <n>', 'at most this many sessions')
    .option('--not-backed-up', 'only sessions without a finished archive (the default unless --no-skip-existing)')
    .option('--no-skip-existing', 'upload sessions again even when their archive is done')
    .option('--no-cleanup', 'leave abandoned multipart uploads of interrupted runs in place')
    .option('--bwlimit <rate>', 'bandwidth limit, e.g. 20M (MiB/s) or 500K')
    .option('--concurrency <n>', 'multipart parts in parallel')
    .option('--storage-class <class>', 'e.g. GLACIER, DEEP_ARCHIVE, STANDARD_IA')
    .option('--tag <name=value>', 'tag on each archive (repeatable)', collect)
    .option('--compress <none|gzip>', 'compression')
    .option('--recipient <age1…>', 'encrypt to this age recipient (repeatable)', collect)
    .option('--dry-run', 'show what would be uploaded')
    .action(async (o: Record<string, string | string[] | boolean | undefined>, cmd: Command) => {
      const g = cmd.optsWithGlobals<ArchiveGroupOptions>();
      const tags = parsePairs(o.tag as string[] | undefined, '--tag');
      const extra: ConfigOverrides = {
        ...(o.bwlimit ? { 'upload.bwlimit': String(o.bwlimit) } : {}),
        ...(o.concurrency ? { 'upload.concurrency': positiveInt(String(o.concurrency), '--concurrency')! } : {}),
        ...(o.storageClass ? { 'upload.storage_class': String(o.storageClass) } : {}),
        ...(o.compress ? { 'upload.compress': String(o.compress) } : {}),
        ...(o.recipient ? { 'encryption.recipients': o.recipient as string[] } : {}),
      };
      await withArchive(g, extra, async (config, storage, catalog) => {
        const ac = new AbortController();
        const stop = () => ac.abort(new Error('interrupted'));
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        try {
          const r = await (await archiveLib()).uploadSessions(config, storage, catalog, {
            ...(o.sessionId ? { sessionId: String(o.sessionId) } : {}),
            ...(o.year ? { year: positiveInt(String(o.year), '--year')! } : {}),
            ...(o.limit ? { limit: positiveInt(String(o.limit), '--limit')! } : {}),
            skipExisting: o.skipExisting !== false,
            cleanup: o.cleanup !== false,
            ...(tags ? { tags } : {}),
            dryRun: Boolean(o.dryRun),
            signal: ac.signal,
            onEvent: o.dryRun ? () => undefined : reporterFor(g),
          });
          if (o.dryRun) {
            if (g.json) printJson(r.plan);
            else for (const p of r.plan) printLine(`${p.action === 'upload' ? 'upload' : 'skip  '}  ${p.sessionId} (${p.year}) ${formatBytes(p.bytes)} -> ${p.key}${p.reason ? `  [${p.reason}]` : ''}`);
            return;
          }
          if (g.json) printJsonLine({ type: 'result', ok: r.failed.length === 0, uploaded: r.uploaded, skipped: r.skipped, failed: r.failed, bytes: r.bytes, seconds: r.seconds });
          if (r.failed.length) process.exitCode = EXIT.failure;
        } finally {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
        }
      });
    });

  archive
    .command('verify')
    .description('check archives: HEAD size and ETag (cheap, safe on Glacier), or --full re-download and re-hash')
    .option('--all', 'every archive (the default)')
    .option('--session-id <id>', 'only this session')
    .option('--full', 'download, decrypt, re-hash the object against the catalog and every file against the manifest')
    .option('--trust-unsigned-manifests', 'accept archives the catalog knows only from manifests without a MAC (older Offsite, or anyone with write access to the bucket)')
    .action(async (o: { sessionId?: string; full?: boolean; trustUnsignedManifests?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<ArchiveGroupOptions>();
      await withArchive(g, {}, async (config, storage, catalog) => {
        const r = await (await archiveLib()).verifyArchives(config, storage, catalog, {
          ...(o.sessionId ? { sessionId: o.sessionId } : {}),
          full: Boolean(o.full),
          trustUnsignedManifests: Boolean(o.trustUnsignedManifests),
          onEvent: reporterFor(g),
        });
        if (g.json) printJsonLine({ type: 'result', ...r });
        else for (const f of r.failed) printLine(`FAIL ${f.sessionId} (${f.key}): ${f.problems.join('; ')}`);
        if (!g.json) printLine(r.ok ? `all ${r.checked} archive(s) verified (${o.full ? 'full' : 'HEAD'})` : `${r.failed.length} of ${r.checked} archive(s) failed verification`);
        if (!r.ok) process.exitCode = EXIT.corrupted;
      });
    });

  archive
    .command('status')
    .description('totals by year and storage class, recent runs, failures')
    .action(async (_o: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<ArchiveGroupOptions>();
      await withArchive(g, {}, async (_config, storage, catalog) => {
        const totals = catalog.totals(storage.url);
        const runs = catalog.recentOperations(10);
        const failures = catalog.listArchives({ destination: storage.url, status: 'failed' });
        const pending = catalog.pendingRestores(storage.url);
        // Rows a rebuild read off manifests the manifest key did not authenticate: restore refuses them.
        const unauthenticated = catalog
          .listArchives({ destination: storage.url, status: 'done' })
          .filter((r) => r.manifestAuth !== 'local' && r.manifestAuth !== 'authentic')
          .map((r) => ({ sessionId: r.sessionId, key: r.key, manifest: r.manifestAuth }));
        if (g.json) return printJson({ destination: storage.url, totals, runs, failures, pendingRestores: pending, unauthenticated });
        printLine(`destination ${storage.url}`);
        printLine(`year  class            archives         size  failed`);
        for (const t of totals) printLine(`${t.year}  ${(t.storageClass ?? '-').padEnd(14)} ${String(t.done).padStart(9)}  ${formatBytes(t.bytes).padStart(11)}  ${t.failed}`);
        if (failures.length) for (const f of failures) printLine(`failed: ${f.sessionId} (${f.key}): ${f.error ?? ''}`);
        if (pending.length) for (const p of pending) printLine(`restore pending: ${p.sessionId} (${p.key}) since ${p.requestedAt}`);
        const needs = { unsigned: 'restore and verify need --trust-unsigned-manifests', forged: 'restore and verify refuse it', 'no-key': 'restore and verify need the manifest key that signed it', 'other-key': 'restore and verify need the manifest key that signed it' } as Record<string, string>;
        for (const u of unauthenticated) printLine(`manifest not authenticated (${u.manifest}): ${u.sessionId} (${u.key}); ${needs[u.manifest ?? 'unsigned']}`);
        printLine('recent runs:');
        for (const r of runs) printLine(`  ${r.startedAt}  ${r.kind.padEnd(7)} ${r.status.padEnd(11)} ${formatBytes(r.bytes ?? 0)}${r.error ? `  ${r.error}` : ''}`);
      });
    });

  archive
    .command('list-sessions')
    .description('the sessions on disk and whether each is archived')
    .option('--year <year>', 'only this year')
    .option('--not-backed-up', 'only sessions without a finished archive')
    .action(async (o: { year?: string; notBackedUp?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<ArchiveGroupOptions>();
      await withArchive(g, {}, async (config, storage, catalog) => {
        const list = await (await archiveLib()).listSessions(config, catalog, storage.url, { ...(o.year ? { year: positiveInt(o.year, '--year')! } : {}), notBackedUp: Boolean(o.notBackedUp) });
        if (g.json) return printJson(list);
        for (const s of list) printLine(`${s.year}  ${s.sessionId.padEnd(24)} ${String(s.files).padStart(7)} files ${formatBytes(s.bytes).padStart(11)}  ${s.archived ? `archived (${s.storageClass ?? ''})` : s.status}`);
      });
    });

  archive
    .command('restore')
    .description('restore a session: fetch (after a Glacier restore if needed), decrypt, untar safely, check every file')
    .requiredOption('--session-id <id>', 'the session to restore')
    .option('--to <dir>', 'target directory (the session lands in DIR/SESSION_ID)', 'restored')
    .option('--tier <tier>', 'Glacier retrieval tier: Standard, Bulk or Expedited', 'Standard')
    .option('--days <n>', 'days the restored copy stays readable', '7')
    .option('--wait', 'wait for a Glacier restore to finish, then fetch')
    .option('--poll-seconds <n>', 'seconds between checks with --wait', '60')
    .option('--trust-unsigned-manifests', 'accept an archive the catalog knows only from a manifest without a MAC (older Offsite, or anyone with write access to the bucket)')
    .action(async (o: { sessionId: string; to: string; tier: string; days: string; wait?: boolean; pollSeconds: string; trustUnsignedManifests?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<ArchiveGroupOptions>();
      if (!['Standard', 'Bulk', 'Expedited'].includes(o.tier)) throw new UsageError(`--tier must be Standard, Bulk or Expedited, not "${o.tier}"`);
      await withArchive(g, {}, async (config, storage, catalog) => {
        // Stopped, a restore removes what it extracted so far.
        const ac = new AbortController();
        const stop = () => ac.abort(new Error('interrupted'));
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        try {
          const r = await (await archiveLib()).restoreSession(config, storage, catalog, {
            sessionId: o.sessionId,
            to: o.to,
            tier: o.tier as 'Standard',
            days: positiveInt(o.days, '--days')!,
            wait: Boolean(o.wait),
            pollSeconds: positiveInt(o.pollSeconds, '--poll-seconds')!,
            trustUnsignedManifests: Boolean(o.trustUnsignedManifests),
            signal: ac.signal,
            onEvent: reporterFor(g),
          });
          if (g.json) return printJsonLine({ type: 'result', ...r });
          if (r.status === 'pending') return printLine(`${r.sessionId}: ${r.detail}`);
          const checked =
            r.checked === 'manifest'
              ? 'every file checked against the manifest'
              : 'the archive matched the SHA-256 recorded in the catalog (the manifest was not usable, see above)';
          const basis = r.manifest === 'unsigned' ? '; UNAUTHENTICATED: its manifest carries no MAC, accepted because of --trust-unsigned-manifests' : '';
          printLine(`restored ${r.sessionId} to ${r.to}: ${r.files} files, ${formatBytes(r.bytes)}, ${checked}${basis}`);
        } finally {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
        }
      });
    });

  archive
    .command('catalog')
    .description('catalog maintenance')
    .command('rebuild')
    .description('recreate the catalog from the manifests in the bucket, checking each with the manifest key')
    .action(async (_o: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<ArchiveGroupOptions>();
      await withArchive(g, {}, async (config, storage, catalog) => {
        const r = await (await archiveLib()).rebuildCatalog(config, storage, catalog);
        // A manifest altered under the user's own key is tampering, whatever else was fine.
        const forged = r.unauthenticated.filter((u) => u.status === 'forged').length;
        if (forged) process.exitCode = EXIT.corrupted;
        if (g.json) return printJson({ ok: forged === 0, ...r });
        printLine(`catalog rebuilt from ${r.archives} manifest(s) in ${storage.url}: ${r.authenticated} authenticated by the manifest key ${config.manifestKeyFile}`);
        for (const u of r.unauthenticated) printLine(`not authenticated: ${u.message}`);
        for (const s of r.skipped) printLine(`skipped ${s}`);
        if (r.unauthenticated.length) printLine(`restore and verify refuse the archives whose manifest is not authenticated (see "offsite archive restore --help")`);
      });
    });
}
