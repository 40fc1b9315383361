import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isCatalogError } from '../../src/catalog/index.js';
import { DEST, OTHER_DEST, freshCatalog, sha } from './fixtures.js';

describe('session notes', () => {
  it('upserts by (destination, key) and lists by session', async () => {
    const catalog = await freshCatalog();
    const first = catalog.recordNote({ sessionId: 's1', year: 2024, key: 'notes/s1.md', destination: DEST, sha256: sha(1), size: 10 });
    const updated = catalog.recordNote({ sessionId: 's1', year: 2024, key: 'notes/s1.md', destination: DEST, sha256: sha(2), size: 12 });
    assert.equal(updated.id, first.id);
    assert.equal(updated.sha256, sha(2));
    assert.equal(updated.size, 12);
    catalog.recordNote({ sessionId: 's1', year: 2024, key: 'notes/s1.md', destination: OTHER_DEST, sha256: sha(2), size: 12 });
    catalog.recordNote({ sessionId: 's0', year: 2023, key: 'notes/s0.md', destination: DEST, sha256: sha(3), size: 3 });

    assert.deepEqual(
      catalog.listNotes('s1').map((n) => [n.key, n.destination, n.size]),
      [
        ['notes/s1.md', OTHER_DEST, 12],
        ['notes/s1.md', DEST, 12],
      ],
    );
    assert.deepEqual(
      catalog.listNotes().map((n) => n.sessionId),
      ['s0', 's1', 's1'],
    );
    assert.deepEqual(catalog.listNotes('nobody'), []);
    assert.throws(() => catalog.recordNote({ sessionId: 's', year: 2024, key: 'k', destination: DEST, sha256: 'nope', size: 1 }), (e: unknown) => isCatalogError(e, 'InvalidInput'));
    catalog.close();
  });
});
