import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isCatalogError, manifestKeyFor, parseManifest } from '../../src/catalog/index.js';
import { manifest } from './fixtures.js';

function rejects(value: unknown, field: string, why?: RegExp): void {
  assert.throws(
    () => parseManifest(value, 'm.json'),
    (e: unknown) => {
      assert.ok(isCatalogError(e, 'InvalidManifest'), String(e));
      assert.ok(e.message.includes(`m.json: ${field}:`), `message names ${field}: ${e.message}`);
      if (why) assert.match(e.message, why);
      return true;
    },
  );
}

describe('archive manifests', () => {
  it('accepts a valid manifest, as a value or as JSON text, and drops unknown fields', () => {
    const m = manifest();
    assert.deepEqual(parseManifest(m), m);
    assert.deepEqual(parseManifest(JSON.stringify(m, null, 1)), m);
    assert.deepEqual(parseManifest(Buffer.from(JSON.stringify(m))), m);
    assert.deepEqual(parseManifest({ ...m, addedLater: { x: 1 } }), m);
    assert.deepEqual(parseManifest({ ...m, encryption: null }).encryption, null);
    assert.deepEqual(parseManifest({ ...m, encryption: { type: 'age', recipients: [], passphrase: true } }).encryption?.passphrase, true);
    assert.equal(manifestKeyFor('2024/s.tar.gz'), '2024/s.tar.gz.manifest.json');
  });

  it('rejects bad manifests, naming the field', () => {
    const m = manifest();
    rejects({ ...m, format: 'something-else' }, 'format');
    rejects({ ...m, year: '2024' }, 'year');
    rejects({ ...m, year: 2024.5 }, 'year');
    rejects({ ...m, createdAt: 'yesterday' }, 'createdAt');
    rejects({ ...m, compression: 'zstd' }, 'compression');
    rejects({ ...m, tool: { name: 'offsite' } }, 'tool.version');
    rejects({ ...m, object: { ...m.object, sha256: 'ABC' } }, 'object.sha256', /64 lower-case hex/);
    rejects({ ...m, object: { ...m.object, size: -1 } }, 'object.size');
    rejects({ ...m, source: { ...m.source, files: undefined } }, 'source.files');
    rejects({ ...m, files: [m.files[0], { ...m.files[1], sha256: 'nope' }] }, 'files[1].sha256');
    rejects({ ...m, files: [{ ...m.files[0], type: 'fifo' }] }, 'files[0].type');
    rejects({ ...m, files: [{ ...m.files[2], linkTarget: undefined }] }, 'files[0].linkTarget', /symlink/);
    rejects({ ...m, encryption: { type: 'age', recipients: [], passphrase: false } }, 'encryption.recipients');
    rejects(
      { ...m, encryption: { type: 'age', recipients: ['AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ'], passphrase: false } },
      'encryption.recipients[0]',
      /secret key/,
    );
    const { sessionId: _drop, ...noSession } = m;
    rejects(noSession, 'sessionId');
    rejects(null, '(root)');
    rejects([], '(root)');
  });

  it('says a newer version needs a newer Offsite, and names broken JSON', () => {
    rejects({ ...manifest(), version: 2 }, 'version', /upgrade Offsite/);
    assert.throws(() => parseManifest('{"format": ', 'm.json'), (e: unknown) => isCatalogError(e, 'InvalidManifest') && /m\.json is not valid JSON/.test(e.message));
  });
});
