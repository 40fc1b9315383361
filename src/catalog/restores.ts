// Restore requests for archives in cold storage classes: a request takes hours to be served,
// so it outlives the process that made it; the next run finds it here and polls for it.
import type { Database } from 'better-sqlite3';
import { checkCount, checkDestination, nowIso } from './checks.js';
import { CatalogError } from './errors.js';
import type { Catalog, RestoreRow } from './types.js';

const RESTORE_COLUMNS = `id, session_id AS sessionId, key, destination, tier, days, status, requested_at AS requestedAt, ready_at AS readyAt, done_at AS doneAt`;

export function restoreMethods(db: Database): Pick<Catalog, 'recordRestoreRequest' | 'pendingRestores' | 'markRestoreReady' | 'markRestoreDone'> {
  // The conflict target names the partial unique index: one open request per object.
  const upsert = db.prepare<[Record<string, unknown>], RestoreRow>(`
    INSERT INTO restores (session_id, key, destination, tier, days, status, requested_at)
    VALUES (@sessionId, @key, @destination, @tier, @days, 'requested', @now)
    ON CONFLICT (destination, key) WHERE status <> 'done' DO UPDATE SET
      session_id = excluded.session_id, tier = excluded.tier, days = excluded.days
    RETURNING ${RESTORE_COLUMNS}`);
  const pendingAll = db.prepare<[], RestoreRow>(`SELECT ${RESTORE_COLUMNS} FROM restores WHERE status <> 'done' ORDER BY requested_at, id`);
  const pendingAt = db.prepare<[string], RestoreRow>(
    `SELECT ${RESTORE_COLUMNS} FROM restores WHERE status <> 'done' AND destination = ? ORDER BY requested_at, id`,
  );
  const byId = db.prepare<[number], RestoreRow>(`SELECT ${RESTORE_COLUMNS} FROM restores WHERE id = ?`);
  const ready = db.prepare<[string, number]>(`UPDATE restores SET status = 'ready', ready_at = ? WHERE id = ? AND status = 'requested'`);
  const done = db.prepare<[string, number]>(`UPDATE restores SET status = 'done', done_at = ? WHERE id = ? AND status <> 'done'`);

  function existing(id: number): RestoreRow {
    const row = byId.get(id);
    if (!row) throw new CatalogError('NotFound', `no restore request with id ${id} in the catalog`);
    return row;
  }

  return {
    recordRestoreRequest(input) {
      checkDestination(input.destination);
      checkCount('days', input.days);
      if (input.days < 1) throw new CatalogError('InvalidInput', 'a restore must be kept for at least 1 day');
      return upsert.get({ ...input, now: nowIso() })!;
    },

    pendingRestores(destination) {
      return destination === undefined ? pendingAll.all() : pendingAt.all(destination);
    },

    markRestoreReady(id) {
      if (ready.run(nowIso(), id).changes > 0) return;
      const row = existing(id);
      if (row.status === 'done') throw new CatalogError('InvalidState', `restore request ${id} for ${row.key} is already done`);
    },

    markRestoreDone(id) {
      if (done.run(nowIso(), id).changes === 0) existing(id);
    },
  };
}
