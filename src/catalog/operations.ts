// The operation log: one row per run (upload, verify, restore, rebuild), so `status` can say
// what happened last and a run killed mid-way is visible instead of silently "running".
import type { Database } from 'better-sqlite3';
import { hostname } from 'node:os';
import { nowIso } from './checks.js';
import { CatalogError } from './errors.js';
import type { Catalog, OperationRow } from './types.js';

const OPERATION_COLUMNS = `id, kind, detail, status, started_at AS startedAt, finished_at AS finishedAt, bytes, seconds, error, requests, pid, host`;

type StoredOperationRow = Omit<OperationRow, 'detail' | 'requests'> & { detail: string; requests: string | null };

/** Signal 0 checks that a process exists without touching it; EPERM means it exists but is not ours. */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function operationMethods(db: Database): Pick<Catalog, 'startOperation' | 'finishOperation' | 'recentOperations' | 'markStaleOperations'> {
  const host = hostname();
  const start = db.prepare<[string, string, string, number, string]>(
    `INSERT INTO operations (kind, detail, status, started_at, pid, host) VALUES (?, ?, 'running', ?, ?, ?)`,
  );
  const finish = db.prepare<[Record<string, unknown>]>(
    `UPDATE operations SET status = @status, finished_at = @now, bytes = @bytes, seconds = @seconds, error = @error, requests = @requests WHERE id = @id`,
  );
  const recent = db.prepare<[number], StoredOperationRow>(`SELECT ${OPERATION_COLUMNS} FROM operations ORDER BY id DESC LIMIT ?`);
  const recentOfKind = db.prepare<[string, number], StoredOperationRow>(`SELECT ${OPERATION_COLUMNS} FROM operations WHERE kind = ? ORDER BY id DESC LIMIT ?`);
  const running = db.prepare<[string], { id: number; pid: number }>(`SELECT id, pid FROM operations WHERE status = 'running' AND host = ?`);
  // Guarded by status, so a run that finished between our SELECT and this UPDATE keeps its result.
  const interrupt = db.prepare<[string, string, number]>(
    `UPDATE operations SET status = 'interrupted', finished_at = ?, error = ? WHERE id = ? AND status = 'running'`,
  );

  return {
    startOperation(kind, detail) {
      return Number(start.run(kind, JSON.stringify(detail), nowIso(), process.pid, host).lastInsertRowid);
    },

    finishOperation(opId, result) {
      const changes = finish.run({ id: opId, status: result.status, bytes: result.bytes, seconds: result.seconds, error: result.error ?? null, requests: result.requests ? JSON.stringify(result.requests) : null, now: nowIso() }).changes;
      if (changes === 0) throw new CatalogError('NotFound', `no operation with id ${opId} in the catalog`);
    },

    recentOperations(limit, kind) {
      const rows = kind === undefined ? recent.all(limit) : recentOfKind.all(kind, limit);
      return rows.map((r) => ({ ...r, detail: JSON.parse(r.detail) as unknown, requests: r.requests === null ? null : (JSON.parse(r.requests) as Record<string, number>) }));
    },

    markStaleOperations() {
      const now = nowIso();
      let marked = 0;
      for (const op of running.all(host)) {
        if (op.pid === process.pid || processAlive(op.pid)) continue;
        marked += interrupt.run(now, `the process (pid ${op.pid}) ended before the operation finished`, op.id).changes;
      }
      return marked;
    },
  };
}
