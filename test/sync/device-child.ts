// One device in its own process, for the concurrency test (run with --import tsx):
//   device-child.ts URL SECRET STATE_DIR LABEL COUNT TOTAL
// Joins the account, prints "ready", waits for a line on stdin (so every device starts
// together), pushes COUNT entries in batches of 10 with pulls in between, then pulls until it
// holds TOTAL entries (or 30 s pass), pulls once more, and prints one JSON line: what it holds
// and every id its pulls returned.
import { createInterface } from 'node:readline';
import { SyncClient, type PullResult } from '../../src/sync/index.js';
import { historyEntries } from './helpers.js';

const [url, secret, stateDir, label, countText, totalText] = process.argv.slice(2) as [string, string, string, string, string, string];
const count = Number(countText);
const total = Number(totalText);

const { client } = await SyncClient.join(secret, { stateDir, storageUrl: url });
const lines = createInterface({ input: process.stdin });
process.stdout.write('ready\n');
await new Promise<void>((resolve) => lines.once('line', () => resolve()));
lines.close();

const pulled: string[] = [];
const problems: string[] = [];
let pulls = 0;
const collect = (r: PullResult) => {
  pulls++;
  pulled.push(...r.entries.map((e) => e.id));
  problems.push(...r.problems.map((p) => `${p.code}: ${p.message}`));
};
const mine = historyEntries(label, count);
for (let i = 0; i < count; i += 10) {
  await client.push(mine.slice(i, i + 10));
  if (i % 50 === 0) collect(await client.pull());
}
const deadline = Date.now() + 30_000;
while (client.entryCount() < total && Date.now() < deadline) {
  collect(await client.pull());
  await new Promise((resolve) => setTimeout(resolve, 50));
}
collect(await client.pull());
const held = client.entries().map((e) => e.id);
await client.close();
process.stdout.write(`${JSON.stringify({ label, held, pulled, problems, pulls })}\n`);
