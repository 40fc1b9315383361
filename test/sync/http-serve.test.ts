// A real `offsite serve` process: the request log it writes with --log (one JSON line per
// request, never a token), and the bounds on what one client can make it hold in memory (body
// limits per endpoint, value counts, requests in flight), read from the process's own VmRSS.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { scratchDir } from './helpers.js';
import { rawPost, startServeProcess, type ServeProcess } from './serve-process.js';

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

/**
 * A request body {userId, deviceId, ...fields, [name]: {id: seq, ...}} with a map of about
 * `bytes` bytes (ids of 12 characters: 22 bytes an entry), built as text.
 */
function bodyWithMap(name: string, bytes: number, fields: Record<string, unknown> = {}): Buffer {
  const head = JSON.stringify({ userId: USER, deviceId: DEVICE, ...fields }).slice(0, -1);
  const parts: string[] = [`${head},"${name}":{`];
  for (let i = 0, size = 0; size < bytes; i++) {
    const entry = `${i === 0 ? '' : ','}"${i.toString(36).padStart(12, '0')}":${i % 1000}`;
    parts.push(entry);
    size += entry.length;
  }
  parts.push('}}');
  return Buffer.from(parts.join(''));
}

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

describe('offsite serve: what one client can make the server hold', () => {
  it('refuses bodies over an endpoint’s limit and maps over their size at once (413/400), and its memory stays bounded', async (t) => {
    const server = await serve('serve-limits');
    const base = await server.rssMiB();
    // The reported attack: a `known` map of 62 MB on query.
    const huge = await rawPost(server.url, '/api/v1/query', auth(), bodyWithMap('known', 62e6));
    const afterHuge = await server.rssMiB();
    assert.ok(afterHuge - base < 120, `RSS grew from ${base.toFixed(0)} to ${afterHuge.toFixed(0)} MiB on a 62 MB map`);
    assert.equal(huge.status, 413, `a 62 MB query body: ${huge.status} ${huge.text.slice(0, 300)}`);
    assert.ok(huge.ms < 3000, `refused at once: ${huge.ms} ms`);
    // Within the body limit of the largest endpoint (a snapshot), but a map of ~300,000 devices.
    const many = await rawPost(server.url, '/api/v1/snapshot', auth(), bodyWithMap('covers', 7e6, { generation: 1, data: 'AAAA' }));
    assert.equal(many.status, 400, `~300,000 values in a snapshot request: ${many.status} ${many.text.slice(0, 300)}`);
    assert.match(many.text, /"code":"BadRequest"/, many.text.slice(0, 300));
    // A smaller map, under the body limit but over the number of devices an account may have.
    const query = await rawPost(server.url, '/api/v1/query', auth(), bodyWithMap('known', 20_001 * 22));
    assert.equal(query.status, 400, `20,000 devices in known: ${query.status} ${query.text.slice(0, 300)}`);
    const peak = await server.rssMiB();
    t.diagnostic(`RSS ${base.toFixed(0)} MiB at start, ${afterHuge.toFixed(0)} after the 62 MB map (${huge.status} in ${huge.ms} ms), ${peak.toFixed(0)} after the 7 MB snapshot map (${many.status} in ${many.ms} ms) and the 20,001 devices (${query.status})`);
    assert.ok(peak - base < 120, `RSS grew from ${base.toFixed(0)} to ${peak.toFixed(0)} MiB`);
    // Still serving.
    assert.equal((await rawPost(server.url, '/api/v1/ping', auth(), '{}')).status, 200);
  });

  it('answers 503 with Retry-After beyond its requests in flight, and serves again once they end', async () => {
    const server = await serve('serve-busy');
    // Requests whose bodies never finish arriving (a slow or hostile client): each is in flight.
    const held: ReturnType<typeof request>[] = [];
    const heldStatus: number[] = [];
    try {
      for (let i = 0; i < 40; i++) {
        const req = request(`${server.url}/api/v1/ping`, { method: 'POST', headers: { ...auth(), 'content-type': 'application/json', 'content-length': '1000' } }, (res) => {
          heldStatus.push(res.statusCode ?? 0);
          res.resume();
        });
        req.on('error', () => undefined);
        req.write('{"');
        held.push(req);
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
      const busy = await rawPost(server.url, '/api/v1/ping', auth(), '{}');
      assert.equal(busy.status, 503, `a request beyond those in flight: ${busy.status} ${busy.text}`);
      assert.match(String(busy.headers['retry-after']), /^\d+$/, `with Retry-After: ${JSON.stringify(busy.headers)}`);
      assert.match(busy.text, /"code":"Busy"/, busy.text);
      assert.ok(heldStatus.filter((s) => s === 503).length > 0, `some of the 40 held requests were turned away too: ${heldStatus.join(',')}`);
    } finally {
      for (const req of held) req.destroy();
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal((await rawPost(server.url, '/api/v1/ping', auth(), '{}')).status, 200, 'served again once the others are gone');
  });
});
