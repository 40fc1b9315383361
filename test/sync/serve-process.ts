// A real `offsite serve` process for the tests that must see what the server itself does: its
// log lines on stderr, its memory (VmRSS of that process), how it answers raw HTTP.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { createInterface } from 'node:readline';
import { OFFSITE_BIN } from '../support/cli.js';

export interface ServeProcess {
  url: string;
  child: ChildProcess;
  /** Everything the process wrote on stderr so far. */
  stderr(): string;
  /** Resident memory of the server process, in MiB (VmRSS of /proc/PID/status). */
  rssMiB(): Promise<number>;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

/** Starts `offsite serve --port 0 ARGS...` and waits for its address line. */
export async function startServeProcess(args: string[], env: Record<string, string>): Promise<ServeProcess> {
  const child = spawn(process.execPath, [OFFSITE_BIN, 'serve', '--port', '0', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const line = await Promise.race([
    new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve)),
    exited.then((code) => assert.fail(`offsite serve exited with ${code}: ${stderr}`)),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no address printed in 20 s: ${stderr}`)), 20_000)),
  ]);
  const m = /^listening on (http:\/\/127\.0\.0\.1:\d+) /.exec(line);
  assert.ok(m, `the first line gives the address: ${line}`);
  return {
    url: m[1]!,
    child,
    stderr: () => stderr,
    rssMiB: async () => {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
      const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status);
      assert.ok(kb, `no VmRSS in /proc/${child.pid}/status`);
      return Number(kb[1]) / 1024;
    },
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

export interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** Milliseconds from the first byte sent to the answer's end (or the connection's). */
  ms: number;
}

/**
 * A POST with node:http, so the body can be far larger than the server accepts: the server may
 * answer before the body is sent and close the connection; whatever status came back is returned.
 */
export function rawPost(url: string, path: string, headers: Record<string, string>, body: Buffer | string): Promise<RawAnswer> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    let answered: RawAnswer | undefined;
    const req = request(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        answered = { status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8'), ms: Date.now() - started };
        resolve(answered);
      });
      res.on('error', () => (answered ? resolve(answered) : undefined));
    });
    req.on('error', (e) => {
      // The server answered early and closed while the body was still being sent.
      setTimeout(() => (answered ? resolve(answered) : reject(e)), 200);
    });
    req.end(body);
  });
}
