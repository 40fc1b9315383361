// The console's routes: each parses (zod), calls the engine, presents. `/api/databases/...` is
// an alias of `/api/jobs/...` (the deploy platform's name for a job).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { SESSION_TTL_MS, type Console, type SettingsInput } from '../../console/index.js';
import * as s from './schemas.js';
import { errorReply, SESSION_COOKIE, SSE_HEARTBEAT_MS } from './server.js';

type RateLimitCheck = (req: FastifyRequest) => Promise<{ isAllowed: boolean; isExceeded?: boolean; remaining?: number; ttl?: number }>;

export interface RouteContext {
  engine: Console;
  failedLogin: RateLimitCheck;
  /** Ends of the open event streams, called when the server closes. */
  streams: Set<() => void>;
}

export async function registerConsoleRoutes(scope: FastifyInstance, ctx: RouteContext): Promise<void> {
  const app = scope.withTypeProvider<ZodTypeProvider>();
  const { engine } = ctx;
  const e = s.authErrors;

  // Health, readiness, metrics, the document ------------------------------------------------
  app.get('/healthz', { schema: { tags: ['health'], summary: 'Liveness (no auth)', security: [], response: { 200: s.okBody } } }, async () => ({ ok: true as const }));
  app.get('/readyz', { schema: { tags: ['health'], summary: 'Readiness', response: { 200: s.readyBody, 503: s.readyBody, ...e } } }, async (_req, reply) => {
    const r = engine.readiness();
    return reply.code(r.ready ? 200 : 503).send(r);
  });
  app.get('/metrics', { schema: { tags: ['health'], summary: 'Prometheus text format', response: { 200: s.textBody, ...e } } }, async (_req, reply) => {
    const text = await engine.metrics.metrics();
    return reply.type(engine.metrics.contentType).send(text);
  });
  app.get('/api/openapi.json', { schema: { tags: ['meta'], summary: 'This document (OpenAPI 3)', response: { 200: s.openapiBody, ...e } } }, async () => scope.swagger() as unknown as Record<string, unknown>);

  // Login -----------------------------------------------------------------------------------
  const blocked = new Map<string, number>();
  app.post(
    '/api/login',
    { schema: { tags: ['auth'], summary: 'Exchange the admin token for a session cookie', security: [], body: s.loginBody, response: { 200: s.csrfBody, 400: s.errorBody, 401: s.errorBody, 429: s.errorBody } } },
    async (req, reply) => {
      const addr = req.socket.remoteAddress ?? 'unknown';
      const until = blocked.get(addr);
      if (until !== undefined && until > Date.now()) {
        return errorReply(reply.header('retry-after', String(Math.ceil((until - Date.now()) / 1000))), 429, 'TooManyRequests', 'too many failed logins from this address; wait a minute');
      }
      if (until !== undefined) blocked.delete(addr);
      if (!engine.verifyToken(req.body.token)) {
        const limit = await ctx.failedLogin(req);
        if (!limit.isAllowed && (limit.isExceeded || limit.remaining === 0)) blocked.set(addr, Date.now() + (limit.ttl ?? 60_000));
        return errorReply(reply, 401, 'Unauthorized', 'wrong admin token');
      }
      const session = engine.sessions.create();
      void reply.setCookie(SESSION_COOKIE, session.id, { httpOnly: true, sameSite: 'strict', path: '/', secure: req.protocol === 'https', maxAge: Math.floor(SESSION_TTL_MS / 1000) });
      return { csrf: session.csrf };
    },
  );
  app.post('/api/logout', { schema: { tags: ['auth'], summary: 'End the session', response: { 200: s.okBody, ...e } } }, async (req, reply) => {
    engine.sessions.delete(req.cookies[SESSION_COOKIE]);
    void reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return { ok: true as const };
  });
  app.get('/api/session', { schema: { tags: ['auth'], summary: "The session's CSRF token (page reload)", response: { 200: s.csrfBody, ...e } } }, async (req, reply) => {
    const csrf = engine.sessions.csrfOf(req.cookies[SESSION_COOKIE]);
    if (!csrf) return errorReply(reply, 401, 'Unauthorized', 'no session: log in with POST /api/login');
    return { csrf };
  });

  // S3 settings -------------------------------------------------------------------------------
  app.get('/api/settings/s3', { schema: { tags: ['settings'], summary: 'The S3 settings (secret masked)', response: { 200: s.settingsBody, ...e } } }, async () => engine.settings());
  app.put('/api/settings/s3', { schema: { tags: ['settings'], summary: 'Save the S3 settings (no secret: keep the stored one)', body: s.settingsPut, response: { 200: s.settingsBody, 400: s.errorBody, ...e } } }, async (req) =>
    engine.saveSettings(req.body),
  );
  app.delete('/api/settings/s3', { schema: { tags: ['settings'], summary: 'Delete the S3 settings', response: { 200: s.settingsBody, ...e } } }, async () => engine.deleteSettings());
  app.post(
    '/api/settings/s3/test',
    { schema: { tags: ['settings'], summary: "Run the doctor's checks on the form's values or the stored settings", body: s.settingsTest.optional(), response: { 200: s.testResult, 400: s.errorBody, 409: s.errorBody, ...e } } },
    async (req) => {
      const b = req.body ?? {};
      const fromForm = b.bucket !== undefined || b.access_key_id !== undefined || b.endpoint !== undefined;
      const input: SettingsInput | undefined = fromForm ? { ...b, bucket: b.bucket ?? '', access_key_id: b.access_key_id ?? '' } : undefined;
      return engine.testConnection(input);
    },
  );

  // Jobs, runs, backups, restores ---------------------------------------------------------------
  for (const base of ['/api/jobs', '/api/databases'] as const) {
    const tags = [base === '/api/jobs' ? 'jobs' : 'databases (alias of jobs)'];
    app.get(base, { schema: { tags, summary: 'The backup jobs', response: { 200: s.jobsBody, ...e } } }, async () => ({ jobs: engine.jobs() }));
    app.get(`${base}/:name`, { schema: { tags, summary: 'One job', params: s.jobParams, response: { 200: s.job, 404: s.errorBody, ...e } } }, async (req) => engine.job(req.params.name));
    app.post(
      `${base}/:name/backup`,
      { schema: { tags, summary: 'Start a backup run (202: run id)', params: s.jobParams, body: s.backupBody.optional(), response: { 202: s.backupStarted, 404: s.errorBody, 409: s.errorBody, ...e } } },
      async (req, reply) => {
        const run = engine.startBackup(req.params.name, { ...(req.body?.upload_to_s3 !== undefined ? { uploadToS3: req.body.upload_to_s3 } : {}), trigger: 'manual' });
        return reply.code(202).send({ run_id: run.id, job: run.job, status: 'running' as const });
      },
    );
    app.get(`${base}/:name/backups`, { schema: { tags, summary: 'Backups, local and S3 merged (bucket listing cached)', params: s.jobParams, response: { 200: s.backupsBody, 404: s.errorBody, ...e } } }, async (req) =>
      engine.listBackups(req.params.name),
    );
    app.delete(
      `${base}/:name/backups/:backup`,
      { schema: { tags, summary: 'Delete a backup locally, in S3 or both', params: s.backupParams, querystring: s.deleteQuery, response: { 200: s.deletedBody, 404: s.errorBody, ...e } } },
      async (req) => engine.deleteBackup(req.params.name, req.params.backup, req.query.where),
    );
    app.post(
      `${base}/:name/restore`,
      { schema: { tags, summary: 'Start a restore run (S3-only backups are downloaded first)', params: s.jobParams, body: s.restoreBody, response: { 202: s.restoreStarted, 400: s.errorBody, 404: s.errorBody, 409: s.errorBody, ...e } } },
      async (req, reply) => {
        const b = req.body;
        const run = engine.startRestore(req.params.name, { backup: b.backup, ...(b.to !== undefined ? { to: b.to } : {}), ...(b.into !== undefined ? { into: b.into } : {}), ...(b.force !== undefined ? { force: b.force } : {}) });
        return reply.code(202).send({ run_id: run.id });
      },
    );
  }
  app.get('/api/runs', { schema: { tags: ['runs'], summary: 'Recent runs, newest first', response: { 200: s.runsBody, ...e } } }, async () => ({ runs: engine.runs() }));
  app.get('/api/runs/:id', { schema: { tags: ['runs'], summary: 'One run', params: s.runParams, response: { 200: s.run, 404: s.errorBody, ...e } } }, async (req) => engine.run(req.params.id));

  app.get(
    '/api/events',
    { schema: { tags: ['runs'], summary: 'Server-sent events: run (start, progress at most every 250 ms, finish), jobs (after a run); ": ping" every 15 s', response: { 200: s.textBody.describe('text/event-stream'), ...e } } },
    (req, reply) => {
      void reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'x-accel-buffering': 'no' });
      res.write('retry: 3000\n\n');
      const send = (event: string, data: unknown) => void res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      const onRun = (run: unknown) => send('run', run);
      const onJobs = (jobs: unknown) => send('jobs', jobs);
      engine.events.on('run', onRun);
      engine.events.on('jobs', onJobs);
      for (const run of engine.runs().filter((r) => r.status === 'running')) send('run', run);
      const ping = setInterval(() => res.write(': ping\n\n'), SSE_HEARTBEAT_MS);
      const end = () => {
        clearInterval(ping);
        engine.events.off('run', onRun);
        engine.events.off('jobs', onJobs);
        ctx.streams.delete(end);
        if (!res.writableEnded) res.end();
      };
      ctx.streams.add(end);
      res.on('close', end);
      req.log.info({ method: req.method, url: '/api/events', statusCode: 200 }, 'event stream opened');
    },
  );

  // Views -----------------------------------------------------------------------------------------
  app.get('/api/archives', { schema: { tags: ['views'], summary: 'The archive catalog: totals, sessions, last runs', response: { 200: s.archivesBody, ...e } } }, async () => engine.archivesView());
  app.get('/api/sync', { schema: { tags: ['views'], summary: 'The sync device: devices, pending work', response: { 200: s.syncBody, ...e } } }, async () => engine.syncView());
}
