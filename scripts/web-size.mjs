// Prints the size of the console's page (dist/web) as a browser first loads it: every file,
// gzipped. The target is < 250 KB; `--max KB` makes it fail above a limit.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist/web');

function files(d) {
  return readdirSync(d).flatMap((n) => {
    const p = path.join(d, n);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

let raw = 0;
let gz = 0;
for (const f of files(dir)) {
  const b = readFileSync(f);
  raw += b.length;
  gz += gzipSync(b, { level: 9 }).length;
}
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
console.error(`web: dist/web is ${kb(raw)}, ${kb(gz)} gzip (first load; target < 250 KB)`);
const i = process.argv.indexOf('--max');
if (i > 0 && gz > Number(process.argv[i + 1]) * 1024) {
  console.error(`web: over the ${process.argv[i + 1]} KB limit`);
  process.exit(1);
}
