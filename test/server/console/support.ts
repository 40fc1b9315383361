// A real `offsite console` process for the console's tests: spawned from bin/offsite on a free
// port with a temp data directory, its stdout and stderr kept (the tests search them for
// secrets), and a small HTTP client that can send any Host header and cookie.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import path from 'node:path';
import { OFFSITE_BIN } from '../../support/cli.js';
import { tempDir } from '../../support/env.js';

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export interface ConsoleProcess {
  url: string;
  port: number;
  token: string;
  dir: string;
  dataDir: string;
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Every answer body seen by call(), for the secret search. */
  answers: string[];
  call(method: string, route: string, opts?: CallOptions): Promise<HttpAnswer>;
  /** With the admin token as bearer. */
  api(method: string, route: string, body?: unknown): Promise<HttpAnswer>;
  /** SIGTERM, and the exit code. */
  stop(): Promise<number>;
}

export interface CallOptions {
  body?: unknown;
  token?: string;
  headers?: Record<string, string>;
  host?: string;
}

/** Environment of the console: nothing of the test server's keys (settings must carry them), a private manifest key. */
export async function consoleEnv(dir: string, extra: Record<string, string> = {}): Promise<NodeJS.ProcessEnv> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('AWS_') || k.startsWith('OFFSITE_TEST_') || k.startsWith('OFFSITE_CONSOLE')) delete env[k];
  env.OFFSITE_MANIFEST_KEY_FILE = path.join(dir, 'manifest.key');
  // A command that misses its --data-dir must not reach the user's real console directory.
  env.OFFSITE_CONSOLE_DIR = path.join(dir, 'default-data');
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  return { ...env, ...extra };
}

export function httpCall(port: number, method: string, route: string, opts: CallOptions = {}): Promise<HttpAnswer> {
  const body = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
  const headers: Record<string, string> = { host: opts.host ?? `127.0.0.1:${port}`, ...(opts.headers ?? {}) };
  if (body) headers['content-type'] = 'application/json';
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path: route, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Writes offsite.toml in a temp dir from `jobs` (TOML text with DIR replaced) and starts the console. */
export async function startConsole(opts: { jobsToml?: (dir: string) => string; args?: string[]; env?: Record<string, string>; dir?: string } = {}): Promise<ConsoleProcess> {
  const dir = opts.dir ?? (await tempDir('offsite-console-'));
  const dataDir = path.join(dir, 'data');
  const config = path.join(dir, 'offsite.toml');
  if (!opts.dir) await writeFile(config, opts.jobsToml ? opts.jobsToml(dir) : '');
  const tokenFile = path.join(dir, 'token');
  const child = spawn(process.execPath, [OFFSITE_BIN, 'console', '--config', config, '--data-dir', dataDir, '--port', '0', '--token-file', tokenFile, ...(opts.args ?? [])], {
    env: await consoleEnv(dir, opts.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (c: Buffer) => out.push(c));
  child.stderr!.on('data', (c: Buffer) => err.push(c));
  const stdout = () => Buffer.concat(out).toString('utf8');
  const stderr = () => Buffer.concat(err).toString('utf8');
  const exited = new Promise<number>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the console did not start in 20 s; stderr: ${stderr()}`)), 20_000);
    const look = () => {
      const m = /console listening on (http:\/\/\S+)/.exec(stdout());
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', look);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the console exited (${code}) before listening; stderr: ${stderr()}`));
    });
  });
  const port = Number(new URL(url).port);
  const token = (await readFile(tokenFile, 'utf8')).trim();
  const answers: string[] = [];
  const call = async (method: string, route: string, o: CallOptions = {}) => {
    const a = await httpCall(port, method, route, o);
    answers.push(a.text, JSON.stringify(a.headers));
    return a;
  };
  return {
    url,
    port,
    token,
    dir,
    dataDir,
    child,
    stdout,
    stderr,
    answers,
    call,
    api: (method, route, body) => call(method, route, { token, ...(body !== undefined ? { body } : {}) }),
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Polls GET /api/runs/ID until the run has finished. */
export async function waitForRun(c: ConsoleProcess, id: string, timeoutMs = 60_000): Promise<HttpAnswer> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await c.api('GET', `/api/runs/${id}`);
    if (r.status !== 200) throw new Error(`GET /api/runs/${id}: ${r.status} ${r.text}`);
    if (r.json.status !== 'running') return r;
    if (Date.now() > until) throw new Error(`run ${id} still running after ${timeoutMs} ms`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

/** Logs in; returns the cookie header value and the CSRF token. */
export async function login(c: ConsoleProcess): Promise<{ cookie: string; csrf: string; setCookie: string }> {
  const r = await c.call('POST', '/api/login', { body: { token: c.token } });
  if (r.status !== 200) throw new Error(`login: ${r.status} ${r.text}`);
  const setCookie = ([] as string[]).concat(r.headers['set-cookie'] ?? [])[0] ?? '';
  return { cookie: setCookie.split(';')[0]!, csrf: r.json.csrf as string, setCookie };
}
