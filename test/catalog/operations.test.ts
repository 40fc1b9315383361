import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isCatalogError, openCatalog } from '../../src/catalog/index.js';
import { catalogFile, freshCatalog } from './fixtures.js';

const childScript = fileURLToPath(new URL('./catalog-child.ts', import.meta.url));

describe('operation log', () => {
  it('records a run from start to finish, newest first', async () => {
    const catalog = await freshCatalog();
    const a = catalog.startOperation('upload', { destination: 's3://b', sessions: ['x', 'y'] });
    const b = catalog.startOperation('verify', { full: true });
    catalog.finishOperation(a, { status: 'ok', bytes: 2048, seconds: 1.5 });
    catalog.finishOperation(b, { status: 'failed', bytes: 0, seconds: 0.25, error: '1 archive(s) failed verification' });
    const c = catalog.startOperation('restore', {});

    const ops = catalog.recentOperations(10);
    assert.deepEqual(
      ops.map((o) => [o.id, o.kind, o.status, o.bytes, o.seconds, o.error]),
      [
        [c, 'restore', 'running', null, null, null],
        [b, 'verify', 'failed', 0, 0.25, '1 archive(s) failed verification'],
        [a, 'upload', 'ok', 2048, 1.5, null],
      ],
    );
    assert.deepEqual(ops[2]!.detail, { destination: 's3://b', sessions: ['x', 'y'] });
    assert.equal(ops[2]!.pid, process.pid);
    assert.ok(ops[2]!.finishedAt! >= ops[2]!.startedAt);
    assert.equal(ops[0]!.finishedAt, null);
    assert.equal(catalog.recentOperations(1).length, 1);
    assert.throws(() => catalog.finishOperation(999, { status: 'ok', bytes: 0, seconds: 0 }), (e: unknown) => isCatalogError(e, 'NotFound'));
    catalog.close();
  });

  it('marks the runs of a killed process interrupted, and leaves live runs alone', async () => {
    const file = await catalogFile();
    const catalog = openCatalog(file);
    const live = catalog.startOperation('upload', { mine: true });

    const child = spawn(process.execPath, ['--import', 'tsx', childScript, 'hold', file], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const line = await new Promise<string>((resolve) => createInterface({ input: child.stdout }).once('line', resolve));
    const orphan = Number(line);
    assert.ok(orphan > live);

    // While the child lives, its run is not stale either.
    assert.equal(catalog.markStaleOperations(), 0);
    child.kill('SIGKILL');
    await exited;

    assert.equal(catalog.markStaleOperations(), 1);
    assert.equal(catalog.markStaleOperations(), 0, 'marking is idempotent');
    const byId = new Map(catalog.recentOperations(10).map((o) => [o.id, o]));
    assert.equal(byId.get(orphan)?.status, 'interrupted');
    assert.match(byId.get(orphan)?.error ?? '', /ended before the operation finished/);
    assert.ok(byId.get(orphan)?.finishedAt);
    assert.equal(byId.get(live)?.status, 'running');

    // A run that was wrongly given up on still gets the last word.
    catalog.finishOperation(orphan, { status: 'ok', bytes: 1, seconds: 1 });
    assert.equal(catalog.recentOperations(10).find((o) => o.id === orphan)?.status, 'ok');
    catalog.close();
  });
});
