/**
 * The console's HTTP shell: Fastify with zod schemas on every route (and the OpenAPI document
 * made from them), cookies, helmet (a CSP of 'self' only), a rate limit on failed logins, the
 * built page from dist/web. Routes parse, call the engine (src/console), present.
 *
 * Order of checks on every request: the Host header against the allowlist (DNS rebinding),
 * then credentials (bearer token, or session cookie + X-CSRF-Token on POST/PUT/DELETE) for
 * /api/*, /metrics and /readyz. Public: GET /healthz, POST /api/login, and the page's static
 * files (the page holds no data).
 */
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Console } from '../../console/index.js';
import { registerConsoleRoutes } from './routes.js';

export const SESSION_COOKIE = 'offsite_session';
export const CSRF_HEADER = 'x-csrf-token';
export const DEFAULT_CONSOLE_HOST = '127.0.0.1';
export const DEFAULT_CONSOLE_PORT = 8750;
/** Failed logins allowed per socket address per minute; the next is refused with 429. */
export const FAILED_LOGINS_PER_MINUTE = 5;
export const SSE_HEARTBEAT_MS = 15_000;

export interface ConsoleServerOptions {
  /** The engine; the server closes it on close(). */
  engine: Console;
  host?: string;
  port?: number;
  /** Extra Host header values accepted (NAME or NAME:PORT), e.g. a reverse proxy's name. */
  allowedHosts?: string[];
  /** One JSON line per request on stderr (never headers, cookies or bodies). Default true. */
  log?: boolean;
  /** The built page (default dist/web beside the compiled server). */
  webRoot?: string;
}

export interface RunningConsoleServer {
  url: string;
  app: FastifyInstance;
  close(): Promise<void>;
}

/** What the auth hook decided for a request. */
export type Caller = { kind: 'bearer' } | { kind: 'session'; sessionId: string };

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

const defaultWebRoot = fileURLToPath(new URL('../../web/', import.meta.url));

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

function needsAuth(req: FastifyRequest): boolean {
  const p = pathOf(req.url);
  if (p === '/healthz') return false;
  if (p === '/api/login' && req.method === 'POST') return false;
  return p.startsWith('/api/') || p === '/api' || p === '/metrics' || p === '/readyz';
}

export function errorReply(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  return reply.code(status).send({ error: { code, message } });
}

export async function createConsoleServer(opts: ConsoleServerOptions & { allowed: Set<string> }): Promise<FastifyInstance> {
  const { default: Fastify, LogController } = await import('fastify');
  const { serializerCompiler, validatorCompiler, jsonSchemaTransform, hasZodFastifySchemaValidationErrors } = await import('fastify-type-provider-zod');
  const engine = opts.engine;
  const log = opts.log ?? true;
  const app = Fastify({
    bodyLimit: 64 * 1024,
    forceCloseConnections: 'idle',
    // Fastify's own request logging writes two lines per request; ours (onResponse) writes one.
    logController: new LogController({ disableRequestLogging: true }),
    logger: log
      ? {
          level: 'info',
          stream: process.stderr,
          // Should a request ever be logged whole: its method and path only (no headers: the token and cookie are there).
          serializers: { req: (req: { method?: string; url?: string }) => ({ method: req.method, url: pathOf(req.url ?? '') }) },
          redact: { paths: ['req.headers', 'headers', 'authorization', 'cookie', 'body', 'req.body'], remove: true },
        }
      : false,
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  // 1. Host allowlist, before anything else (a rebound DNS name gets nothing, not even a 404).
  app.addHook('onRequest', async (req, reply) => {
    const host = (req.headers.host ?? '').toLowerCase();
    if (!opts.allowed.has(host)) {
      void errorReply(reply, 403, 'Forbidden', `Host "${host.slice(0, 100)}" is not one this console answers to; start it with --allowed-host NAME to add one`);
      return reply;
    }
    return undefined;
  });

  await app.register((await import('@fastify/cookie')).default);
  await app.register((await import('@fastify/helmet')).default, {
    contentSecurityPolicy: {
      useDefaults: true,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        fontSrc: ["'self'"],
        connectSrc: ["'self'"],
        frameAncestors: ["'none'"],
        upgradeInsecureRequests: null,
      },
    },
    // The console is served over plain http on loopback: HSTS would break it.
    strictTransportSecurity: false,
  });
  await app.register((await import('@fastify/rate-limit')).default, { global: false });

  // 2. Credentials for the API, the metrics and readiness.
  const callers = new WeakMap<FastifyRequest, Caller>();
  app.addHook('onRequest', async (req, reply) => {
    if (!needsAuth(req)) return undefined;
    const authz = req.headers.authorization;
    if (authz !== undefined) {
      const m = /^Bearer (\S+)$/.exec(authz);
      if (!m || !engine.verifyToken(m[1])) {
        void errorReply(reply.header('www-authenticate', 'Bearer realm="offsite-console"'), 401, 'Unauthorized', 'wrong or malformed bearer token');
        return reply;
      }
      callers.set(req, { kind: 'bearer' });
      return undefined;
    }
    const sessionId = req.cookies[SESSION_COOKIE];
    if (!engine.sessions.csrfOf(sessionId)) {
      void errorReply(reply.header('www-authenticate', 'Bearer realm="offsite-console"'), 401, 'Unauthorized', 'log in (POST /api/login) or send "Authorization: Bearer TOKEN" with the admin token');
      return reply;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD' && req.method !== 'OPTIONS') {
      const header = req.headers[CSRF_HEADER];
      if (typeof header !== 'string' || !engine.sessions.csrfMatches(sessionId, header)) {
        void errorReply(reply, 403, 'Forbidden', `a ${req.method} with the session cookie must carry the X-CSRF-Token header from the login`);
        return reply;
      }
    }
    callers.set(req, { kind: 'session', sessionId: sessionId! });
    return undefined;
  });

  if (log) {
    const logged = new WeakSet<FastifyRequest>();
    const line = (req: FastifyRequest, statusCode: number | null, ms: number) => {
      if (logged.has(req)) return;
      logged.add(req);
      const caller = callers.get(req);
      req.log.info({ method: req.method, url: pathOf(req.url), statusCode, responseTime: Math.round(ms * 100) / 100, ...(caller ? { caller: caller.kind } : {}) }, statusCode === null ? 'request aborted' : 'request');
    };
    app.addHook('onResponse', async (req, reply) => line(req, reply.statusCode, reply.elapsedTime));
    app.addHook('onRequestAbort', async (req) => line(req, null, 0));
  }

  app.setErrorHandler((error: FastifyError, req, reply) => {
    if (hasZodFastifySchemaValidationErrors(error)) {
      const where = error.validationContext ?? 'body';
      const first = error.validation[0]!;
      const field = [where, ...first.instancePath.split('/').filter(Boolean)].join('.');
      // A missing field has no path of its own: zod names it in params.
      const missing = (first.params as { issue?: { path?: unknown[] } } | undefined)?.issue?.path;
      const name = Array.isArray(missing) && missing.length && first.instancePath === '' ? [where, ...missing.map(String)].join('.') : field;
      void errorReply(reply, 400, 'BadRequest', `${name}: ${first.message}`);
      return;
    }
    const { status, code } = statusOf(error);
    if (status >= 500) req.log.error({ code, message: error.message }, 'request failed');
    void errorReply(reply, status, code, error.message);
  });

  app.setNotFoundHandler((req, reply) => {
    void errorReply(reply, 404, 'NotFound', `no route ${req.method} ${pathOf(req.url)}`);
  });

  await app.register((await import('@fastify/swagger')).default, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'Offsite console API', version: '1', description: 'S3 settings (secret encrypted at rest), backup jobs, runs, restores, archive and sync views. Auth: Authorization: Bearer <admin token>, or the session cookie from POST /api/login plus X-CSRF-Token on POST/PUT/DELETE.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' }, session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE } } },
      security: [{ bearer: [] }, { session: [] }],
    },
    transform: jsonSchemaTransform,
    hideUntagged: false,
  });

  const failedLogin = app.createRateLimit({ max: FAILED_LOGINS_PER_MINUTE, timeWindow: 60_000, keyGenerator: (req) => req.socket.remoteAddress ?? 'unknown' });
  // Event streams never end by themselves: closing the server ends them first.
  const streams = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const end of [...streams]) end();
  });
  await app.register(async (scope) => registerConsoleRoutes(scope, { engine, failedLogin, streams }));

  // The page: built assets when there are, else a line saying how to build them.
  const webRoot = opts.webRoot ?? defaultWebRoot;
  if (existsSync(webRoot) && existsSync(`${webRoot}/index.html`)) {
    await app.register((await import('@fastify/static')).default, { root: webRoot, prefix: '/', wildcard: false, index: ['index.html'], schemaHide: true });
  } else {
    app.get('/', { schema: { hide: true } }, async (_req, reply) =>
      reply.type('text/html; charset=utf-8').send('<!doctype html><title>Offsite console</title><p>The page is not built: run npm run build (it builds web/ into dist/web).</p>\n'),
    );
  }
  return app;
}

/** Status and code of an engine, storage or backup error. Messages of these layers hold no secret. */
function statusOf(error: FastifyError): { status: number; code: string } {
  const code = typeof (error as { code?: unknown }).code === 'string' ? ((error as { code: string }).code) : 'Error';
  const byCode: Record<string, number> = {
    BadRequest: 400,
    InvalidUrl: 400,
    InvalidConfig: 400,
    InvalidTarget: 400,
    TargetExists: 409,
    NeedsIdentity: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Busy: 409,
    Conflict: 409,
    NotConfigured: 409,
    TooManyRequests: 429,
    // The bucket refused or failed: the console is fine, its upstream is not.
    AccessDenied: 502,
    InvalidCredentials: 502,
    NoSuchBucket: 502,
    StorageFailure: 502,
    Transient: 503,
  };
  if (byCode[code]) return { status: byCode[code], code };
  // Fastify's own refusals (bad JSON, wrong content type, body too large).
  if (code.startsWith('FST_') && error.statusCode && error.statusCode < 500) {
    return { status: error.statusCode, code: error.statusCode === 429 ? 'TooManyRequests' : error.statusCode === 413 ? 'PayloadTooLarge' : 'BadRequest' };
  }
  return { status: error.statusCode && error.statusCode >= 400 ? error.statusCode : 500, code: /^[A-Z][A-Za-z]+$/.test(code) ? code : 'InternalError' };
}

/** Listens and returns once ready; the Host allowlist is completed with the port chosen. */
export async function startConsoleServer(opts: ConsoleServerOptions): Promise<RunningConsoleServer> {
  const host = opts.host ?? DEFAULT_CONSOLE_HOST;
  const allowed = new Set<string>();
  const app = await createConsoleServer({ ...opts, allowed });
  try {
    await app.listen({ host, port: opts.port ?? DEFAULT_CONSOLE_PORT });
  } catch (e) {
    await app.close().catch(() => undefined);
    await opts.engine.close();
    throw e;
  }
  const port = (app.server.address() as AddressInfo).port;
  for (const name of ['127.0.0.1', 'localhost', '[::1]']) allowed.add(`${name}:${port}`);
  if (!['0.0.0.0', '::', ''].includes(host)) allowed.add(`${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`.toLowerCase());
  for (const h of opts.allowedHosts ?? []) {
    const name = h.toLowerCase();
    allowed.add(name);
    if (!/:\d+$/.test(name)) allowed.add(`${name}:${port}`);
  }
  const shown = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${shown}:${port}`,
    app,
    close: () =>
      (closing ??= (async () => {
        await app.close();
        await opts.engine.close();
      })()),
  };
}
