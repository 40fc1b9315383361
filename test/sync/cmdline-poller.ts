// Watches every process's argv while a test runs, as another user of the machine could
// (/proc/PID/cmdline is readable by all):
//   node --import tsx cmdline-poller.ts   with NEEDLE (text that must never appear) and WATCH
//   (text whose processes are counted) in the environment, so neither is in its own argv.
// Prints "ready" once it scanned /proc, scans until stdin closes, then prints one JSON line:
// { scans, hits: [cmdline containing NEEDLE], watched: [distinct pids whose cmdline has WATCH] }.
import { readdirSync, readFileSync } from 'node:fs';

const needle = process.env.NEEDLE ?? '';
const watch = process.env.WATCH ?? '';
const hits = new Set<string>();
const watched = new Set<string>();
let scans = 0;
let done = false;

function scan(): void {
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || pid === String(process.pid)) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
    } catch {
      continue; // exited meanwhile
    }
    if (needle && cmdline.includes(needle)) hits.add(`${pid}: ${cmdline}`);
    if (watch && cmdline.includes(watch)) watched.add(pid);
  }
  scans++;
}

scan();
process.stdout.write('ready\n');
process.stdin.resume();
process.stdin.on('end', () => {
  done = true;
});
const loop = (): void => {
  if (done) {
    process.stdout.write(`${JSON.stringify({ scans, hits: [...hits], watched: [...watched] })}\n`);
    return;
  }
  scan();
  setImmediate(loop);
};
loop();
