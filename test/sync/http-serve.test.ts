// A real `offsite serve` process: the request log it writes with --log (one JSON line per
// request, never a token).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { scratchDir } from './helpers.js';
import { startServeProcess, type ServeProcess } from './serve-process.js';

const TOKEN = randomBytes(32).toString('base64url');
const USER = 'a'.repeat(32);
const DEVICE = 'b'.repeat(32);
const running: ServeProcess[] = [];
after(async () => {
  await Promise.all(running.map((s) => s.stop()));
});

async function serve(label: string, extra: string[] = []): Promise<ServeProcess> {
  const dir = await scratchDir(`${label}-`);
  const s = await startServeProcess(['--storage', path.join(dir, 'bucket'), ...extra], { OFFSITE_SERVE_TOKEN: TOKEN });
  running.push(s);
  return s;
}

const auth = (token = TOKEN) => ({ authorization: `Bearer ${token}` });

interface LogLine {
  reqId?: string;
  method?: string;
  url?: string;
  statusCode?: number;
  responseTime?: number;
  msg?: string;
  [k: string]: unknown;
}

describe('offsite serve --log', () => {
  it('writes one JSON line per request with method, URL (no query), status, time and request id; never a token', async () => {
    const server = await serve('serve-log', ['--log']);
    const wrong = randomBytes(32).toString('base64url');
    const querySecret = `qs-${randomBytes(12).toString('hex')}`;
    const sent: { method: string; path: string; headers: Record<string, string>; body?: string; status: number }[] = [
      { method: 'POST', path: '/api/v1/ping', headers: auth(), body: '{}', status: 200 },
      { method: 'POST', path: '/api/v1/ping', headers: auth(wrong), body: '{}', status: 401 },
      { method: 'GET', path: `/api/v1/ping?token=${querySecret}`, headers: auth(), status: 200 },
      { method: 'POST', path: '/api/v1/no-such-endpoint', headers: auth(), body: '{}', status: 404 },
      { method: 'POST', path: '/api/v1/query', headers: auth(), body: JSON.stringify({ userId: USER, deviceId: DEVICE }), status: 400 },
    ];
    const ids: (string | null)[] = [];
    for (const r of sent) {
      const res = await fetch(`${server.url}${r.path}`, { method: r.method, headers: { ...r.headers, ...(r.body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(r.body === undefined ? {} : { body: r.body }) });
      await res.text();
      assert.equal(res.status, r.status, `${r.method} ${r.path}`);
      ids.push(res.headers.get('x-request-id'));
    }
    assert.equal(await server.stop(), 0, server.stderr());

    const stderr = server.stderr();
    const lines = stderr.split('\n').filter((l) => l.startsWith('{'));
    const requestLines = lines.map((l) => JSON.parse(l) as LogLine).filter((l) => l.reqId !== undefined);
    assert.equal(requestLines.length, sent.length, `one line per request, not more:\n${lines.join('\n')}`);
    assert.equal(new Set(ids).size, sent.length, `each answer names its request id: ${ids.join(' ')}`);
    sent.forEach((r, i) => {
      const line = requestLines.find((l) => l.reqId === ids[i]);
      assert.ok(line, `a line for request ${ids[i]} (${r.method} ${r.path}):\n${lines.join('\n')}`);
      assert.equal(line.method, r.method, JSON.stringify(line));
      assert.equal(line.url, r.path.split('?')[0], `the URL without its query: ${JSON.stringify(line)}`);
      assert.equal(line.statusCode, r.status, JSON.stringify(line));
      assert.equal(typeof line.responseTime, 'number', `the time it took: ${JSON.stringify(line)}`);
      assert.equal(typeof line.time, 'number', `when: ${JSON.stringify(line)}`);
    });
    for (const s of [TOKEN, wrong, querySecret]) assert.ok(!stderr.includes(s), `the log shows a secret: ${stderr}`);
    assert.ok(!/authorization|bearer/i.test(stderr), `the log shows a header: ${stderr}`);
  });
});
