// A separate process for the cross-process catalog tests (run with --import tsx).
//   writer FILE LABEL COUNT: waits for a line on stdin (so all writers start together), then
//     opens the catalog (racing the others to migrate a fresh file) and runs COUNT archive
//     lifecycles, an operation and a throughput sample; prints "done" or "error <code> <message>".
//   hold FILE: starts an operation, prints its id, then waits to be killed.
import { createInterface } from 'node:readline';
import { openCatalog, isCatalogError } from '../../src/catalog/index.js';

const [mode, file, label, countText] = process.argv.slice(2);

if (mode === 'hold') {
  const catalog = openCatalog(file!);
  const id = catalog.startOperation('upload', { note: 'killed mid-way' });
  process.stdout.write(`${id}\n`);
  setInterval(() => undefined, 60_000);
} else if (mode === 'writer') {
  const rl = createInterface({ input: process.stdin });
  process.stdout.write('ready\n');
  await new Promise<void>((resolve) => rl.once('line', () => resolve()));
  rl.close();
  try {
    const catalog = openCatalog(file!);
    const op = catalog.startOperation('upload', { writer: label });
    for (let i = 0; i < Number(countText); i++) {
      const key = `${label}/${i}.tar`;
      const row = catalog.beginArchive({
        sessionId: `${label}-${i}`,
        year: 2020 + (i % 3),
        key,
        manifestKey: `${key}.manifest.json`,
        destination: 's3://shared/bucket',
        compression: 'none',
        encrypted: false,
        storageClass: 'GLACIER',
      });
      catalog.setUploadId(row.id, `upload-${label}-${i}`);
      catalog.completeArchive(row.id, { size: 100, sha256: 'ab'.repeat(32), etag: `etag-${i}`, fileCount: 1, sourceBytes: 90 });
    }
    catalog.recordThroughput({ kind: 'upload', bytes: 1000, seconds: 1 });
    catalog.finishOperation(op, { status: 'ok', bytes: 100 * Number(countText), seconds: 1 });
    catalog.close();
    process.stdout.write('done\n');
  } catch (e) {
    process.stdout.write(`error ${isCatalogError(e) ? e.code : 'other'} ${(e as Error).message}\n`);
  }
} else {
  process.stderr.write(`unknown mode ${mode}\n`);
  process.exit(2);
}
