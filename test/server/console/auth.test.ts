// The console's doors, against a real `offsite console` process: credentials on every route
// (enumerated from the OpenAPI document, so a new route cannot be forgotten), the session
// cookie and CSRF, the Host allowlist, 400s that name the field, the rate limit on failed
// logins, the OpenAPI document itself, /metrics, and the CLI's refusals.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Validator } from '@seriousme/openapi-schema-validator';
import { runCli } from '../../support/cli.js';
import { tempDir } from '../../support/env.js';
import { consoleEnv, login, startConsole, waitForRun, type ConsoleProcess } from './support.js';

const jobsToml = (dir: string) => `
[jobs.app]
source = "sqlite:${dir}/app.db"
schedule = "86400"
local_dir = "${dir}/backups/app"
`;

function makeDb(dir: string): void {
  const db = new Database(path.join(dir, 'app.db'));
  db.exec('CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2), (3);');
  db.close();
}

/** Every documented (method, path), the path's {params} filled in. */
function documentedRoutes(doc: { paths: Record<string, Record<string, unknown>> }): Array<{ method: string; path: string; template: string }> {
  const out: Array<{ method: string; path: string; template: string }> = [];
  for (const [template, ops] of Object.entries(doc.paths)) {
    for (const method of Object.keys(ops)) {
      if (!['get', 'put', 'post', 'delete', 'patch'].includes(method)) continue;
      out.push({ method: method.toUpperCase(), template, path: template.replace(/\{[^}]+\}/g, 'x') + (template.endsWith('/backups/{backup}') ? '?where=local' : '') });
    }
  }
  return out;
}

describe('console auth and API surface', () => {
  let c: ConsoleProcess;
  let doc: { openapi: string; paths: Record<string, Record<string, unknown>> };

  before(async () => {
    const dir = await tempDir('offsite-console-auth-');
    makeDb(dir);
    await writeFile(path.join(dir, 'offsite.toml'), jobsToml(dir));
    c = await startConsole({ dir });
    const r = await c.api('GET', '/api/openapi.json');
    assert.equal(r.status, 200, r.text);
    doc = r.json;
  });
  after(async () => {
    assert.equal(await c.stop(), 0, 'SIGTERM ends the console with exit 0');
  });

  it('the OpenAPI document validates and lists every route of the contract', async () => {
    const validator = new Validator();
    const result = await validator.validate(doc as never);
    assert.equal(result.valid, true, JSON.stringify(result.errors));
    const listed = new Set(documentedRoutes(doc).map((r) => `${r.method} ${r.template}`));
    const expected = [
      'GET /healthz',
      'GET /readyz',
      'GET /metrics',
      'GET /api/openapi.json',
      'POST /api/login',
      'POST /api/logout',
      'GET /api/session',
      'GET /api/settings/s3',
      'PUT /api/settings/s3',
      'DELETE /api/settings/s3',
      'POST /api/settings/s3/test',
      'GET /api/runs',
      'GET /api/runs/{id}',
      'GET /api/events',
      'GET /api/archives',
      'GET /api/sync',
    ];
    for (const base of ['/api/jobs', '/api/databases']) {
      expected.push(`GET ${base}`, `GET ${base}/{name}`, `POST ${base}/{name}/backup`, `GET ${base}/{name}/backups`, `DELETE ${base}/{name}/backups/{backup}`, `POST ${base}/{name}/restore`);
    }
    for (const e of expected) assert.ok(listed.has(e), `${e} is in the OpenAPI document`);
    // docs/console.md's API table lists every documented route (the aliases are named once, as a rule).
    const reference = await readFile(new URL('../../../docs/console.md', import.meta.url), 'utf8');
    for (const route of listed) {
      if (route.includes('/api/databases')) continue;
      assert.ok(reference.includes(`| \`${route}\` |`), `docs/console.md lists ${route}`);
    }
    assert.equal(listed.size, expected.length, `no route is undocumented or unexpected: ${[...listed].filter((l) => !expected.includes(l)).join(', ')}`);
  });

  it('answers 401 without credentials on every documented route but /healthz, and with a wrong token', async () => {
    const routes = documentedRoutes(doc);
    assert.ok(routes.length >= 20);
    for (const r of routes) {
      const body = r.method === 'GET' || r.method === 'DELETE' ? undefined : r.template === '/api/login' ? { token: 'not-the-token' } : {};
      const none = await c.call(r.method, r.path, body !== undefined ? { body } : {});
      if (r.template === '/healthz') {
        assert.equal(none.status, 200);
        assert.deepEqual(none.json, { ok: true });
        continue;
      }
      assert.equal(none.status, 401, `${r.method} ${r.path} without credentials: ${none.status} ${none.text}`);
      assert.equal(none.json?.error?.code, 'Unauthorized', `${r.method} ${r.path}`);
      if (r.template === '/api/login') continue;
      const wrong = await c.call(r.method, r.path, { token: `${c.token.slice(0, -2)}xx`, ...(body !== undefined ? { body } : {}) });
      assert.equal(wrong.status, 401, `${r.method} ${r.path} with a wrong token`);
    }
    // Unknown API paths too (no route to 404 before the door).
    assert.equal((await c.call('GET', '/api/no-such-thing')).status, 401);
    // The page itself is public and holds no data.
    const page = await c.call('GET', '/');
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-security-policy']), /default-src 'self'/);
  });

  it('login sets an HttpOnly, SameSite=Strict session cookie; a cookie POST needs X-CSRF-Token', async () => {
    const { cookie, csrf, setCookie } = await login(c);
    assert.match(setCookie, /^offsite_session=[^;]+;/);
    assert.match(setCookie, /HttpOnly/i);
    assert.match(setCookie, /SameSite=Strict/i);
    assert.match(setCookie, /Path=\//);
    assert.doesNotMatch(setCookie, /Secure/, 'plain http: no Secure flag');
    assert.ok(csrf.length >= 32);

    const got = await c.call('GET', '/api/jobs', { headers: { cookie } });
    assert.equal(got.status, 200);
    assert.equal(got.json.jobs[0].name, 'app');
    const session = await c.call('GET', '/api/session', { headers: { cookie } });
    assert.deepEqual(session.json, { csrf });

    const noCsrf = await c.call('POST', '/api/jobs/app/backup', { headers: { cookie }, body: { upload_to_s3: false } });
    assert.equal(noCsrf.status, 403);
    assert.equal(noCsrf.json.error.code, 'Forbidden');
    const badCsrf = await c.call('PUT', '/api/settings/s3', { headers: { cookie, 'x-csrf-token': `${csrf}x` }, body: { bucket: 'b-123', access_key_id: 'k', secret_access_key: 's' } });
    assert.equal(badCsrf.status, 403);
    assert.equal((await c.api('GET', '/api/settings/s3')).json.configured, false, 'the refused PUT changed nothing');

    const ok = await c.call('POST', '/api/jobs/app/backup', { headers: { cookie, 'x-csrf-token': csrf }, body: { upload_to_s3: false } });
    assert.equal(ok.status, 202, ok.text);
    const run = await waitForRun(c, ok.json.run_id);
    assert.equal(run.json.status, 'ok', run.text);

    const out = await c.call('POST', '/api/logout', { headers: { cookie, 'x-csrf-token': csrf } });
    assert.equal(out.status, 200);
    assert.equal((await c.call('GET', '/api/jobs', { headers: { cookie } })).status, 401, 'the session ended');
  });

  it('refuses a Host header outside the allowlist before anything else, and accepts localhost', async () => {
    for (const host of ['evil.example', `evil.example:${c.port}`, `127.0.0.1:${c.port + 1}`, `127.0.0.1.evil.example:${c.port}`]) {
      const r = await c.call('GET', '/api/jobs', { token: c.token, host });
      assert.equal(r.status, 403, `Host "${host}"`);
      assert.equal(r.json.error.code, 'Forbidden');
      assert.equal((await c.call('GET', '/healthz', { host })).status, 403, `healthz with Host "${host}"`);
    }
    assert.equal((await c.call('GET', '/api/jobs', { token: c.token, host: `localhost:${c.port}` })).status, 200);
  });

  it('a malformed body is a 400 that names the field', async () => {
    const missing = await c.api('PUT', '/api/settings/s3', { access_key_id: 'k', secret_access_key: 's' });
    assert.equal(missing.status, 400);
    assert.equal(missing.json.error.code, 'BadRequest');
    assert.match(missing.json.error.message, /^body\.bucket: /);
    const wrongType = await c.api('PUT', '/api/settings/s3', { bucket: 'b-123', access_key_id: 'k', secret_access_key: 's', path_style: 'yes' });
    assert.equal(wrongType.status, 400);
    assert.match(wrongType.json.error.message, /^body\.path_style: /);
    const badEndpoint = await c.api('PUT', '/api/settings/s3', { bucket: 'b-123', access_key_id: 'k', secret_access_key: 's', endpoint: 'ftp://x' });
    assert.equal(badEndpoint.status, 400);
    assert.match(badEndpoint.json.error.message, /^body\.endpoint: /);
    const noSecret = await c.api('PUT', '/api/settings/s3', { bucket: 'b-123', access_key_id: 'k' });
    assert.equal(noSecret.status, 400);
    assert.match(noSecret.json.error.message, /^body\.secret_access_key: /);
    const where = await c.api('DELETE', '/api/jobs/app/backups/app-x.sqlite?where=nowhere');
    assert.equal(where.status, 400);
    assert.match(where.json.error.message, /^querystring\.where: /);
    const notJson = await c.call('PUT', '/api/settings/s3', { token: c.token, headers: { 'content-type': 'application/json' }, body: undefined });
    assert.ok(notJson.status === 400 || notJson.status === 415, `${notJson.status}`);
    const unknownJob = await c.api('GET', '/api/jobs/nope');
    assert.equal(unknownJob.status, 404);
    assert.equal(unknownJob.json.error.code, 'NotFound');
  });

  it('/metrics is Prometheus text, and the last-success timestamp changes after a run', async () => {
    const scrape = async () => {
      const r = await c.api('GET', '/metrics');
      assert.equal(r.status, 200);
      assert.match(String(r.headers['content-type']), /^text\/plain/);
      const samples = new Map<string, number>();
      for (const line of r.text.split('\n')) {
        if (line === '') continue;
        if (line.startsWith('#')) {
          assert.match(line, /^# (HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*|TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram|summary|untyped))$/, line);
          continue;
        }
        const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)( -?\d+)?$/.exec(line);
        assert.ok(m, `not a Prometheus sample line: ${line}`);
        samples.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
      }
      return samples;
    };
    const before = await scrape();
    for (const name of ['offsite_job_last_run_bytes', 'offsite_job_last_run_requests', 'offsite_job_failures_total', 'offsite_job_last_success_timestamp_seconds']) {
      assert.ok([...before.keys()].some((k) => k.startsWith(`${name}{job="app"}`)), `${name} for job app (a run has happened above)`);
    }
    const first = before.get('offsite_job_last_success_timestamp_seconds{job="app"}')!;
    await new Promise((r) => setTimeout(r, 1100)); // a new name (the timestamp has seconds)
    const started = await c.api('POST', '/api/jobs/app/backup', { upload_to_s3: false });
    assert.equal(started.status, 202);
    assert.equal((await waitForRun(c, started.json.run_id)).json.status, 'ok');
    const afterRun = await scrape();
    const second = afterRun.get('offsite_job_last_success_timestamp_seconds{job="app"}')!;
    assert.ok(second > first, `last success ${first} -> ${second}`);
    assert.ok(Math.abs(second - Date.now() / 1000) < 30);
    assert.ok(afterRun.get('offsite_job_last_run_bytes{job="app"}')! > 0);
  });

  it('readyz and the views answer with credentials', async () => {
    const ready = await c.api('GET', '/readyz');
    assert.equal(ready.status, 200);
    assert.equal(ready.json.ready, true);
    const archives = await c.api('GET', '/api/archives');
    assert.equal(archives.status, 200);
    assert.equal(archives.json.configured, false);
    const sync = await c.api('GET', '/api/sync');
    assert.deepEqual(sync.json.configured, false);
  });

  it('failed logins from one address are refused with 429 after the limit, even with the right token', async () => {
    const codes: number[] = [];
    // One failed login was spent by the 401 sweep above.
    for (let i = 0; i < 6; i++) codes.push((await c.call('POST', '/api/login', { body: { token: `wrong-${i}` } })).status);
    assert.deepEqual(codes.slice(0, 4), [401, 401, 401, 401]);
    assert.ok(codes.slice(4).every((s) => s === 429), codes.join(','));
    const right = await c.call('POST', '/api/login', { body: { token: c.token } });
    assert.equal(right.status, 429);
    assert.equal(right.json.error.code, 'TooManyRequests');
    // The bearer token is not a login: API clients are not locked out.
    assert.equal((await c.api('GET', '/api/jobs')).status, 200);
  });

  it('logs one line per request, and never the token, the cookie or a body', () => {
    const log = c.stderr();
    assert.ok(!log.includes(c.token), 'the token is not in the log');
    assert.doesNotMatch(log, /offsite_session=|authorization|x-csrf-token/i);
    const lines = log.split('\n').filter((l) => l.includes('"msg":"request"'));
    assert.ok(lines.length > 40, `${lines.length} request lines`);
    for (const l of lines) assert.deepEqual(Object.keys(JSON.parse(l)).filter((k) => !['level', 'time', 'pid', 'hostname', 'reqId', 'method', 'url', 'statusCode', 'responseTime', 'caller', 'msg'].includes(k)), []);
  });
});

describe('offsite console (CLI)', () => {
  it('refuses a non-loopback --host without --allow-remote', async () => {
    const dir = await tempDir('offsite-console-cli-');
    await writeFile(path.join(dir, 'offsite.toml'), '');
    const r = await runCli(['console', '--config', path.join(dir, 'offsite.toml'), '--data-dir', path.join(dir, 'data'), '--host', '0.0.0.0', '--port', '0'], { env: await consoleEnv(dir) });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--allow-remote/);
  });

  it('refuses to start with a wrong key file, naming the file and not the key; token --reset makes a new token', async () => {
    const c = await startConsole();
    const put = await c.api('PUT', '/api/settings/s3', { bucket: 'some-bucket', access_key_id: 'AKIAEXAMPLE', secret_access_key: 'a-secret-of-forty-characters-0123456789', endpoint: 'http://127.0.0.1:9' });
    assert.equal(put.status, 200, put.text);
    assert.equal(await c.stop(), 0);
    const keyFile = path.join(c.dataDir, 'console.key');
    const rightKey = await readFile(keyFile);
    const wrongKey = 'ab'.repeat(32);
    await writeFile(keyFile, `${wrongKey}\n`);
    const r = await runCli(['console', '--config', path.join(c.dir, 'offsite.toml'), '--data-dir', c.dataDir, '--port', '0'], { env: await consoleEnv(c.dir) });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, new RegExp(keyFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    assert.match(r.stderr, /encrypted under key/);
    assert.ok(!r.stderr.includes(wrongKey) && !r.stdout.includes(wrongKey));

    const reset = await runCli(['console', 'token', '--data-dir', c.dataDir], { env: await consoleEnv(c.dir) });
    assert.equal(reset.code, 2, 'token without --reset is a usage error');
    const missingKey = path.join(c.dir, 'missing.key');
    const refused = await runCli(['console', '--config', path.join(c.dir, 'offsite.toml'), '--data-dir', c.dataDir, '--port', '0'], { env: await consoleEnv(c.dir, { OFFSITE_CONSOLE_KEY_FILE: missingKey }) });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /missing\.key/);

    // The right key back, and a new admin token: the old one no longer opens anything.
    await writeFile(keyFile, rightKey);
    const fresh = await runCli(['console', 'token', '--reset', '--data-dir', c.dataDir, '--token-file', path.join(c.dir, 'token')], { env: await consoleEnv(c.dir) });
    assert.equal(fresh.code, 0, fresh.stderr);
    const again = await startConsole({ dir: c.dir });
    try {
      assert.notEqual(again.token, c.token);
      assert.equal((await again.call('GET', '/api/jobs', { token: c.token })).status, 401);
      const settings = await again.api('GET', '/api/settings/s3');
      assert.equal(settings.status, 200);
      assert.equal(settings.json.secret_set, true, 'the settings read back with the right key');
    } finally {
      assert.equal(await again.stop(), 0);
    }
  });
});
