/**
 * Finding sessions: directories under the configured root, with their year from the path
 * (ROOT/2024/SESSION/) or from the session id (ROOT/SESSION/ and year_pattern), their size and
 * file count, and their notes files.
 */
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import type { ArchiveConfig } from './config.js';

export interface Session {
  id: string;
  year: number;
  /** Absolute path of the session directory. */
  dir: string;
  /** Notes files found for it (absolute paths). */
  notes: string[];
}

export interface SessionStats {
  files: number;
  bytes: number;
}

export class SessionError extends Error {
  override name = 'SessionError';
  readonly code = 'SessionNotFound';
}

export async function findSessions(config: Pick<ArchiveConfig, 'sessionsRoot' | 'layout' | 'yearPattern' | 'notesPatterns'>): Promise<Session[]> {
  const root = config.sessionsRoot;
  const rootStat = await lstat(root).catch(() => undefined);
  if (!rootStat?.isDirectory()) throw new SessionError(`sessions root ${root} is not a directory: set sessions.root in the config (or OFFSITE_ARCHIVE_ROOT)`);
  const sessions: Session[] = [];
  if (config.layout === 'year/session') {
    for (const yearDir of await subdirectories(root)) {
      if (!/^\d{4}$/.test(yearDir)) continue;
      for (const id of await subdirectories(path.join(root, yearDir))) {
        const dir = path.join(root, yearDir, id);
        sessions.push({ id, year: Number(yearDir), dir, notes: await findNotes(dir, id, config.notesPatterns) });
      }
    }
  } else {
    for (const id of await subdirectories(root)) {
      const match = config.yearPattern.exec(id);
      if (!match) continue;
      const dir = path.join(root, id);
      sessions.push({ id, year: Number(match[0]), dir, notes: await findNotes(dir, id, config.notesPatterns) });
    }
  }
  const seen = new Map<string, Session>();
  for (const s of sessions) {
    const other = seen.get(s.id);
    if (other) throw new SessionError(`session id ${s.id} appears twice (${other.dir} and ${s.dir}); session ids must be unique`);
    seen.set(s.id, s);
  }
  return sessions.sort((a, b) => a.year - b.year || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

async function subdirectories(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort();
}

/** Notes: files matching a pattern ({session} substituted, * wildcard) in the session dir or beside it. */
async function findNotes(dir: string, id: string, patterns: string[]): Promise<string[]> {
  const found = new Set<string>();
  for (const pattern of patterns) {
    const re = globToRegExp(pattern.replaceAll('{session}', id));
    for (const where of [dir, path.dirname(dir)]) {
      const entries = await readdir(where, { withFileTypes: true }).catch(() => []);
      for (const e of entries) if (e.isFile() && re.test(e.name)) found.add(path.join(where, e.name));
    }
  }
  return [...found].sort();
}

function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`);
}

/** Files and bytes of a session directory (symlinks counted, not followed). */
export async function sessionStats(dir: string): Promise<SessionStats> {
  let files = 0;
  let bytes = 0;
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else {
        files++;
        if (e.isFile()) bytes += (await lstat(p)).size;
      }
    }
  };
  await walk(dir);
  return { files, bytes };
}

/** "backups/raw/{year}/{session}.tar" → the key of one session's archive. */
export function archiveKey(template: string, s: Pick<Session, 'id' | 'year'>, opts: { compress: 'none' | 'gzip'; encrypted: boolean }): string {
  const key = template.replaceAll('{year}', String(s.year)).replaceAll('{session}', s.id);
  return `${key}${opts.compress === 'gzip' ? '.gz' : ''}${opts.encrypted ? '.age' : ''}`;
}

export function notesKey(template: string, s: Pick<Session, 'id' | 'year'>, file: string): string {
  return template.replaceAll('{year}', String(s.year)).replaceAll('{session}', s.id).replaceAll('{file}', path.basename(file));
}
