// The sync server behind `offsite serve`: a thin RPC shell over the sync engine's BucketBackend on
// one Storage (the engine imports no web framework: its HTTP face lives here, in the server layer).
// Every endpoint takes one SyncBackend call's request as its JSON body and answers with the
// call's result, so the server adds no behaviour of its own to the data: it sees exactly what a
// bucket would (sealed data, random or derived ids), holds no key, and cannot read an entry.
// What it adds is a door: a bearer token on every route (server-tokens.ts), each account token
// kept to its own account (server-accounts.ts), bounded bodies and requests in flight
// (routes.ts, limits.ts), errors as JSON `{code, message}` the HttpBackend turns back
// into the same SyncError or StorageError, and one log line per request.
// Fastify is loaded when a server is made: every other sync command (a shell hook runs one per
// command) starts without it.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AddressInfo } from 'node:net';
import { isStorageError, openStorage, type Storage } from '../../storage/index.js';
import { AccountBindings, assertId, BucketBackend, isSyncError, TokenDoor, type CallOptions, type Caller, type SyncErrorCode } from '../../sync/index.js';
import { isLoopbackHost } from '../net.js';
import { BUSY_RETRY_AFTER_SECONDS, InFlightLimiter, tooManyJsonValues, MAX_JSON_SEPARATORS } from './limits.js';
import { DEFAULT_SYNC_BODY_LIMIT, SMALL_BODY_LIMIT, syncRoutes } from './routes.js';

export const DEFAULT_SYNC_PORT = 8787;
export const DEFAULT_SYNC_HOST = '127.0.0.1';
export const SYNC_API_PREFIX = '/api/v1';
/** A request must arrive whole within this (a client that sends slowly cannot hold its place forever). */
export const REQUEST_TIMEOUT_MS = 120_000;

export interface SyncServerOptions {
  /** Where everything is stored (the server never closes it: its opener does). */
  storage: Storage;
  /** The server token (at least 16 characters): every account; account tokens are minted from it. */
  token: string;
  /** The largest request body, a snapshot's. Default 64 MiB. */
  bodyLimitBytes?: number;
  /** Requests served at once (default 32) and their bodies' bytes (default 96 MiB); beyond: 503. */
  maxRequestsInFlight?: number;
  maxBodyBytesInFlight?: number;
  /**
   * One JSON line per request on stderr: method, URL without its query, status, time, request
   * id, and which token (the server's, or an account token's id). Never a header, so never a
   * token. Default off.
   */
  logger?: boolean;
}

/** The HTTP status of each SyncError code the backend can throw (others: 400). */
const SYNC_STATUS: Partial<Record<SyncErrorCode, number>> = {
  Conflict: 409,
  MissingBatch: 409,
  InvalidEntry: 400,
  UnsupportedSyncFormat: 400,
  Unauthorized: 401,
  Forbidden: 403,
};

/** An error body: what the HttpBackend turns back into an error of the same code. */
export interface SyncServerError {
  code: string;
  message: string;
  key?: string;
}

/**
 * A Fastify instance serving the sync API over `storage` (not listening yet: call listen).
 * Routes: POST /api/v1/{register, submit, query, bootstrap, add-deletion-request,
 * get-deletion-requests, uninstall, devices, publish-cursor, lease/acquire, lease/release,
 * snapshot, collect-garbage}, and GET or POST /api/v1/ping. See docs/sync-server.md.
 */
export async function createSyncServer(opts: SyncServerOptions): Promise<FastifyInstance> {
  const { default: Fastify, LogController } = await import('fastify');
  const door = new TokenDoor(opts.token);
  const backend = new BucketBackend(opts.storage);
  const bindings = new AccountBindings(opts.storage);
  const limiter = new InFlightLimiter(opts.maxRequestsInFlight, opts.maxBodyBytesInFlight);
  const callers = new WeakMap<FastifyRequest, Caller>();
  const app = Fastify({
    // Endpoints that take more say so (routes.ts); anything else, a 404 included, this.
    bodyLimit: SMALL_BODY_LIMIT,
    requestTimeout: REQUEST_TIMEOUT_MS,
    // Idle keep-alive connections are closed by close(); requests in flight finish first.
    forceCloseConnections: 'idle',
    // Bodies are checked as sent: nothing coerced ("1" stays a string), nothing dropped.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } },
    // Fastify's own request logging writes two lines per request; ours (onResponse) writes one.
    logController: new LogController({ disableRequestLogging: true }),
    logger: opts.logger
      ? {
          level: 'info',
          stream: process.stderr,
          // Should a request ever be logged whole, only these fields: never its headers (the token is one).
          serializers: { req: (req: { method?: string; url?: string }) => ({ method: req.method, url: pathOf(req.url ?? '') }) },
          redact: ['req.headers', 'headers', 'authorization'],
        }
      : false,
  });

  // JSON bodies with more values than any real request are refused before they are parsed.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    if (tooManyJsonValues(body as Buffer)) {
      done(Object.assign(new Error(`the body has more than ${MAX_JSON_SEPARATORS} JSON values, more than any request of an Offsite client`), { statusCode: 400 }), undefined);
      return;
    }
    parseJson(req, (body as Buffer).toString('utf8'), done);
  });

  app.addHook('onRequest', async (req, reply) => {
    void reply.header('x-request-id', req.id);
    const caller = door.identify(req.headers.authorization);
    if (!caller) {
      void reply
        .code(401)
        .header('www-authenticate', 'Bearer realm="offsite"')
        .send({ code: 'Unauthorized', message: 'missing or wrong token: send "Authorization: Bearer TOKEN" with the token of `offsite serve` or an account token minted by `offsite serve token`' } satisfies SyncServerError);
      return reply;
    }
    callers.set(req, caller);
    const limit = req.routeOptions.bodyLimit ?? SMALL_BODY_LIMIT;
    const declared = Number(req.headers['content-length']);
    const release = limiter.admit(req.method === 'GET' ? 0 : Number.isFinite(declared) && declared >= 0 ? Math.min(declared, limit) : limit);
    if (!release) {
      void reply
        .code(503)
        .header('retry-after', String(BUSY_RETRY_AFTER_SECONDS))
        .header('connection', 'close')
        .send({ code: 'Busy', message: 'the sync server is serving as many requests as it takes at once; try again in a moment' } satisfies SyncServerError);
      return reply;
    }
    // 'close' comes once the answer is sent or the client has gone, whichever happens.
    reply.raw.once('close', release);
    return undefined;
  });

  if (opts.logger) {
    const logged = new WeakSet<FastifyRequest>();
    const logLine = (req: FastifyRequest, statusCode: number | null, responseTime: number) => {
      if (logged.has(req)) return;
      logged.add(req);
      const caller = callers.get(req);
      req.log.info({ method: req.method, url: pathOf(req.url), statusCode, responseTime: Math.round(responseTime * 100) / 100, ...(caller ? { caller: caller.kind === 'server' ? 'server' : `acct.${caller.tokenId}` } : {}) }, statusCode === null ? 'request aborted' : 'request');
    };
    app.addHook('onResponse', async (req, reply) => logLine(req, reply.statusCode, reply.elapsedTime));
    app.addHook('onRequestAbort', async (req) => logLine(req, null, 0));
  }

  app.setErrorHandler((error: FastifyError, req, reply) => {
    const { status, body } = errorResponse(error, req);
    if (status >= 500 && !isStorageError(error)) {
      if (opts.logger) req.log.error({ err: error }, 'unexpected error');
      else process.stderr.write(`offsite serve: unexpected error on ${req.method} ${pathOf(req.url)}: ${error.stack ?? String(error)}\n`);
    }
    void reply.code(status).send(body);
  });

  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ code: 'NotFound', message: `no endpoint ${req.method} ${pathOf(req.url)}: the endpoints are POST ${SYNC_API_PREFIX}/… (see docs/sync-server.md)` } satisfies SyncServerError);
  });

  const ping = async (req: FastifyRequest, reply: FastifyReply) => backend.ping(callOptions(req, reply));
  app.get(`${SYNC_API_PREFIX}/ping`, ping);
  app.post(`${SYNC_API_PREFIX}/ping`, ping);
  for (const route of syncRoutes(opts.bodyLimitBytes ?? DEFAULT_SYNC_BODY_LIMIT)) {
    app.post(`${SYNC_API_PREFIX}/${route.path}`, { bodyLimit: route.bodyLimit, schema: { body: route.body } }, async (req, reply) => {
      const body = req.body as { userId: string; keyCheck?: unknown };
      const o = callOptions(req, reply);
      // The user id names storage keys of the bindings too: checked before anything uses it.
      assertId(body.userId, 'user id');
      await bindings.authorize(callers.get(req)!, route.path, body, o);
      // A call without a result (uninstall, publish-cursor, ...) answers {}.
      return (await route.call(backend, req.body as never, o)) ?? {};
    });
  }
  return app;
}

/** A URL's path: queries are never echoed or logged (they could carry a secret someone put there). */
function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/** The storage work of a request is aborted when its client goes away before the answer. */
function callOptions(_req: FastifyRequest, reply: FastifyReply): CallOptions {
  const ac = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) ac.abort(new Error('the client closed the connection'));
  });
  return { signal: ac.signal };
}

function errorResponse(error: FastifyError, req: FastifyRequest): { status: number; body: SyncServerError } {
  if (isSyncError(error)) {
    return { status: SYNC_STATUS[error.code] ?? 400, body: { code: error.code, message: error.message, ...(error.key === undefined ? {} : { key: error.key }) } };
  }
  if (isStorageError(error)) {
    // The server's own storage failed: a gateway error, retried by the client if transient.
    return { status: error.code === 'Transient' ? 503 : 502, body: { code: error.code, message: `the server's storage: ${error.message}` } };
  }
  const where = pathOf(req.url);
  if (error.validation) {
    return { status: 400, body: { code: 'BadRequest', message: `${where}: ${error.message} (is the client an Offsite of the same version?)` } };
  }
  const status = typeof error.statusCode === 'number' ? error.statusCode : 500;
  if (status === 413) {
    const limit = req.routeOptions.bodyLimit ?? SMALL_BODY_LIMIT;
    return { status, body: { code: 'BadRequest', message: `${where}: the body is larger than the ${limit} bytes this endpoint takes` } };
  }
  if (status >= 400 && status < 500) {
    // Fastify's own refusals: not JSON, a wrong content type; and too many values (above).
    return { status, body: { code: 'BadRequest', message: `${where}: ${error.message}` } };
  }
  return { status: 500, body: { code: 'ServerError', message: 'internal server error (see the server log)' } };
}

/** Whether `host` only accepts connections from this machine. */
export interface ServeSyncOptions {
  /** A storage URL for openStorage: a directory or s3://... */
  storageUrl: string;
  token: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 8787; 0 picks a free port. */
  port?: number;
  bodyLimitBytes?: number;
  maxRequestsInFlight?: number;
  maxBodyBytesInFlight?: number;
  logger?: boolean;
}

export interface RunningSyncServer {
  /** The address to give clients, as http://HOST:PORT. */
  url: string;
  /** The storage's URL (no credentials: they never are in one). */
  storageUrl: string;
  /** Whether only this machine can connect. */
  loopback: boolean;
  /** Stops accepting, lets requests in flight finish, closes the storage. */
  close(): Promise<void>;
}

/** Opens the storage, checks it answers, and serves the sync API on host:port. */
export async function serveSync(opts: ServeSyncOptions): Promise<RunningSyncServer> {
  const storage = openStorage(opts.storageUrl);
  try {
    await new BucketBackend(storage).ping(); // wrong credentials or no bucket: fail now, not at the first client
    const app = await createSyncServer({
      storage,
      token: opts.token,
      ...(opts.bodyLimitBytes === undefined ? {} : { bodyLimitBytes: opts.bodyLimitBytes }),
      ...(opts.maxRequestsInFlight === undefined ? {} : { maxRequestsInFlight: opts.maxRequestsInFlight }),
      ...(opts.maxBodyBytesInFlight === undefined ? {} : { maxBodyBytesInFlight: opts.maxBodyBytesInFlight }),
      ...(opts.logger ? { logger: true } : {}),
    });
    const host = opts.host ?? DEFAULT_SYNC_HOST;
    try {
      await app.listen({ host, port: opts.port ?? DEFAULT_SYNC_PORT });
    } catch (e) {
      await app.close();
      throw e;
    }
    const addr = app.server.address() as AddressInfo;
    const shown = addr.family === 'IPv6' || addr.address.includes(':') ? `[${addr.address}]` : addr.address;
    return {
      url: `http://${shown}:${addr.port}`,
      storageUrl: storage.url,
      loopback: isLoopbackHost(addr.address),
      close: async () => {
        try {
          await app.close();
        } finally {
          await storage.close();
        }
      },
    };
  } catch (e) {
    await storage.close();
    throw e;
  }
}
