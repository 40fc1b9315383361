// Session notes: the small text files (observing logs, READMEs) uploaded beside a session's
// archive in STANDARD storage, so they stay readable without a Glacier restore.
import type { Database } from 'better-sqlite3';
import { checkCount, checkDestination, checkSha256, nowIso } from './checks.js';
import type { Catalog, NoteRow } from './types.js';

const NOTE_COLUMNS = `id, session_id AS sessionId, year, key, destination, sha256, size, recorded_at AS recordedAt`;

export function noteMethods(db: Database): Pick<Catalog, 'recordNote' | 'listNotes'> {
  const upsert = db.prepare<[Record<string, unknown>], NoteRow>(`
    INSERT INTO session_notes (session_id, year, key, destination, sha256, size, recorded_at)
    VALUES (@sessionId, @year, @key, @destination, @sha256, @size, @now)
    ON CONFLICT (destination, key) DO UPDATE SET
      session_id = excluded.session_id, year = excluded.year, sha256 = excluded.sha256,
      size = excluded.size, recorded_at = excluded.recorded_at
    RETURNING ${NOTE_COLUMNS}`);
  const all = db.prepare<[], NoteRow>(`SELECT ${NOTE_COLUMNS} FROM session_notes ORDER BY year, session_id, key, destination`);
  const ofSession = db.prepare<[string], NoteRow>(`SELECT ${NOTE_COLUMNS} FROM session_notes WHERE session_id = ? ORDER BY key, destination`);

  return {
    recordNote(note) {
      checkDestination(note.destination);
      checkSha256(note.sha256);
      checkCount('size', note.size);
      return upsert.get({ ...note, now: nowIso() })!;
    },
    listNotes(sessionId) {
      return sessionId === undefined ? all.all() : ofSession.all(sessionId);
    },
  };
}
