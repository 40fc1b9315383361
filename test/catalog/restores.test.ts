import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isCatalogError } from '../../src/catalog/index.js';
import { DEST, OTHER_DEST, freshCatalog } from './fixtures.js';

describe('restore requests', () => {
  it('goes requested → ready → done, one open request per object', async () => {
    const catalog = await freshCatalog();
    const req = catalog.recordRestoreRequest({ sessionId: 's1', key: 'a.tar', destination: DEST, tier: 'Bulk', days: 3 });
    assert.equal(req.status, 'requested');
    const other = catalog.recordRestoreRequest({ sessionId: 's2', key: 'b.tar', destination: OTHER_DEST, tier: 'Standard', days: 1 });

    // Asking again (e.g. to upgrade the tier) updates the open request instead of adding one.
    const again = catalog.recordRestoreRequest({ sessionId: 's1', key: 'a.tar', destination: DEST, tier: 'Expedited', days: 7 });
    assert.equal(again.id, req.id);
    assert.equal(again.tier, 'Expedited');
    assert.equal(again.days, 7);
    assert.equal(again.requestedAt, req.requestedAt);

    assert.deepEqual(catalog.pendingRestores().map((r) => r.id), [req.id, other.id]);
    assert.deepEqual(catalog.pendingRestores(DEST).map((r) => r.id), [req.id]);

    catalog.markRestoreReady(req.id);
    catalog.markRestoreReady(req.id);
    const ready = catalog.pendingRestores(DEST)[0]!;
    assert.equal(ready.status, 'ready');
    assert.ok(ready.readyAt);

    catalog.markRestoreDone(req.id);
    catalog.markRestoreDone(req.id);
    assert.deepEqual(catalog.pendingRestores(DEST), []);
    assert.throws(() => catalog.markRestoreReady(req.id), (e: unknown) => isCatalogError(e, 'InvalidState'));

    // Once done, the object can be requested anew.
    const next = catalog.recordRestoreRequest({ sessionId: 's1', key: 'a.tar', destination: DEST, tier: 'Bulk', days: 1 });
    assert.notEqual(next.id, req.id);

    assert.throws(() => catalog.markRestoreDone(999), (e: unknown) => isCatalogError(e, 'NotFound'));
    assert.throws(() => catalog.markRestoreReady(999), (e: unknown) => isCatalogError(e, 'NotFound'));
    assert.throws(() => catalog.recordRestoreRequest({ sessionId: 's', key: 'k', destination: DEST, tier: 'Bulk', days: 0 }), (e: unknown) => isCatalogError(e, 'InvalidInput'));
    catalog.close();
  });
});
