// Real data for the read-only screens, made by the real CLI: an archive catalog (three
// sessions uploaded to a local-directory bucket) and a sync account with two devices.
import { mkdir, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { runCli } from '../support/cli.js';

async function cli(args: string[], opts: { cwd: string; env?: Record<string, string>; input?: string }): Promise<string> {
  const r = await runCli(args, opts);
  if (r.code !== 0) throw new Error(`offsite ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

export const ARCHIVE_SESSIONS = [
  ['2025', 'night-2025-04-12'],
  ['2026', 'night-2026-01-07'],
  ['2026', 'night-2026-02-15'],
] as const;

/** `offsite archive upload` of three sessions into DIR/archive-bucket; returns the catalog file. */
export async function makeArchiveCatalog(dir: string): Promise<string> {
  for (const [year, session] of ARCHIVE_SESSIONS) {
    const d = path.join(dir, 'sessions', year, session);
    await mkdir(d, { recursive: true });
    await writeFile(path.join(d, 'frame-001.fits'), randomBytes(200_000));
    await writeFile(path.join(d, 'notes.txt'), `session ${session}\n`);
  }
  const catalog = path.join(dir, 'archive.db');
  await cli(['archive', 'upload'], {
    cwd: dir,
    env: { OFFSITE_ARCHIVE_URL: path.join(dir, 'archive-bucket'), OFFSITE_ARCHIVE_ROOT: path.join(dir, 'sessions'), OFFSITE_ARCHIVE_CATALOG: catalog },
  });
  return catalog;
}

/** A sync account in DIR/sync-bucket: this device "laptop" (DIR/sync.toml) and "desktop". */
export async function makeSyncAccount(dir: string): Promise<string> {
  const config = path.join(dir, 'sync.toml');
  const bucket = path.join(dir, 'sync-bucket');
  await writeFile(config, `url = ${JSON.stringify(bucket)}\nstate_dir = ${JSON.stringify(path.join(dir, 'sync-laptop'))}\n`);
  const out = await cli(['sync', '--config', config, 'init', '--name', 'laptop'], { cwd: dir });
  const secret = /([0-9A-Z]{4}-){3,}[0-9A-Z]{4}/.exec(out)?.[0];
  if (!secret) throw new Error(`no secret in: ${out.slice(0, 40)}…`);
  await cli(['sync', '--storage', bucket, '--dir', path.join(dir, 'sync-desktop'), 'join', '--name', 'desktop', '-'], { cwd: dir, input: `${secret}\n` });
  await cli(['sync', '--config', config, 'push', '-'], { cwd: dir, input: '{"id":"a1","command":"make test"}\n{"id":"a2","command":"ls -l"}\n' });
  return config;
}
