// A separate process for the cross-process conditional-write test: opens the storage at
// STORAGE_URL, prints "ready", waits for a line on stdin (so all writers start together), then
// tries put(KEY, VALUE, ifNoneMatch '*') and prints "won" or "lost <code>".
import { createInterface } from 'node:readline';
import { openStorage, isStorageError } from '../../src/storage/index.js';

const storage = openStorage(process.env.STORAGE_URL!);
const rl = createInterface({ input: process.stdin });
process.stdout.write('ready\n');
await new Promise<void>((resolve) => rl.once('line', () => resolve()));
rl.close();
try {
  await storage.put(process.env.KEY!, process.env.VALUE!, { ifNoneMatch: '*' });
  process.stdout.write('won\n');
} catch (e) {
  process.stdout.write(`lost ${isStorageError(e) ? e.code : String(e)}\n`);
}
await storage.close();
