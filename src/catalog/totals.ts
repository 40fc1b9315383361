// `archive status`: what is stored where, by year and storage class (the two things a bill
// is sorted by).
import type { Database } from 'better-sqlite3';
import type { Catalog, TotalsRow } from './types.js';

export function totalsMethods(db: Database): Pick<Catalog, 'totals'> {
  const totals = db.prepare<[{ destination: string | null }], TotalsRow>(`
    SELECT year, storage_class AS storageClass, COUNT(*) AS archives,
      COALESCE(SUM(CASE WHEN status = 'done' THEN size END), 0) AS bytes,
      SUM(status = 'done') AS done, SUM(status = 'failed') AS failed
    FROM archives
    WHERE @destination IS NULL OR destination = @destination
    GROUP BY year, storage_class
    ORDER BY year, storage_class`);
  return {
    totals(destination) {
      return totals.all({ destination: destination ?? null });
    },
  };
}
