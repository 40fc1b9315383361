// What this test process has running and open: its run-child processes (startBackupLoop's
// isolated runs) and its own TCP connections to a port (to show that a host holds none).
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** The pids of this process's children whose command line names run-child (the isolated run). */
export function runChildren(): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        return ppid === process.pid && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('run-child');
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** This process's own TCP connections to `port` on any host (sockets among its fds, from /proc/net/tcp*). */
export function ownConnectionsTo(port: number): number {
  const inodes = new Set(
    readdirSync('/proc/self/fd').flatMap((fd) => {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
        return m ? [m[1]!] : [];
      } catch {
        return [];
      }
    }),
  );
  let n = 0;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const row of readFileSync(table, 'utf8').trim().split('\n').slice(1)) {
      const cols = row.trim().split(/\s+/);
      const remotePort = parseInt(cols[2]!.split(':')[1]!, 16);
      if (remotePort === port && inodes.has(cols[9]!)) n++;
    }
  }
  return n;
}
