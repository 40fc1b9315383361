// A FAKE of AWS S3's Glacier behaviour, as an HTTP proxy in front of the real RGW. RGW stores
// GLACIER and DEEP_ARCHIVE objects like any other (it reads them back at once) and answers
// RestoreObject with 501, so what a backup tool has to cope with on AWS is reproduced here:
//   - GET of an archived object that is not restored: 403 InvalidObjectState (with StorageClass);
//   - POST ?restore (RestoreObject): 202 the first time, 409 RestoreAlreadyInProgress while it
//     runs, 200 once restored (which also extends the expiry, as on AWS);
//   - HEAD (and GET) of an object with a restore: x-amz-restore: ongoing-request="true", then
//     ongoing-request="false", expiry-date="<RFC 1123 date>"; after the expiry it is archived again;
//   - CopyObject from an archived, unrestored source: 403 InvalidObjectState.
// Everything else is forwarded untouched (Host included, so RGW verifies SigV4 itself). RGW
// answers POST ?restore with 501 before checking the signature, so the proxy answers restores
// itself and verifies their SigV4 signature (header auth) with the credentials it was given: a
// wrongly signed RestoreObject fails here as it would on AWS.
// Path-style requests only (the tests use forcePathStyle). Restore state is per bucket/key, not
// per version, and is held in memory by this proxy. Tests that use it say it is a fake.
import {
  HeadBucketCommand,
  HeadObjectCommand,
  S3Client,
  type HeadObjectCommandOutput,
} from '@aws-sdk/client-s3';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Storage classes whose data needs a restore before it can be read. */
export const GLACIER_CLASSES: ReadonlySet<string> = new Set(['GLACIER', 'DEEP_ARCHIVE']);

const DAY_MS = 86_400_000;
/** Query parameters that make a GET/PUT/DELETE about something other than the object's data. */
const SUBRESOURCES = new Set(['acl', 'tagging', 'uploadId', 'uploads', 'attributes', 'torrent', 'retention', 'legal-hold', 'restore', 'select', 'delete']);
/** AWS refuses requests whose x-amz-date is further than this from its clock. */
const MAX_CLOCK_SKEW_MS = 15 * 60_000;

export interface GlacierProxyOptions {
  /** The real S3 server, e.g. http://127.0.0.1:7480. */
  upstream: string;
  /** Used to verify RestoreObject signatures and to HEAD objects upstream for their class. */
  credentials: { accessKeyId: string; secretAccessKey: string };
  /**
   * How long a restore takes, from its request. Default Infinity: restores complete only when
   * the test calls completeAllRestores(). A function gets the tier and the storage class.
   */
  restoreDelayMs?: number | ((tier: RestoreTier, storageClass: string) => number);
  /**
   * Length of one "day" of the restore's Days, in ms (default a real day). With a real day the
   * expiry is rounded up to the next midnight UTC, as AWS does; shorter days are not rounded,
   * so a test can see a restored copy expire.
   */
  dayMs?: number;
}

export type RestoreTier = 'Standard' | 'Bulk' | 'Expedited';

export interface SeenRequest {
  method: string;
  /** Path and query as received. */
  url: string;
  bucket: string | undefined;
  key: string | undefined;
  /** 'proxy': answered by the fake (restore, InvalidObjectState); 'upstream': RGW's answer. */
  answeredBy: 'proxy' | 'upstream';
  status: number;
  /** For RestoreObject: whether the SigV4 signature verified. */
  signatureValid?: boolean;
}

interface RestoreState {
  storageClass: string;
  tier: RestoreTier;
  days: number;
  completesAt: number;
}

export class GlacierProxy {
  readonly server: http.Server;
  /** Every request, in the order the answers were sent. */
  readonly seen: SeenRequest[] = [];
  private readonly target: URL;
  private readonly agent = new http.Agent({ keepAlive: true });
  private readonly admin: S3Client;
  private readonly restores = new Map<string, RestoreState>();
  private readonly dayMs: number;

  private constructor(private readonly opts: GlacierProxyOptions) {
    this.target = new URL(opts.upstream);
    this.dayMs = opts.dayMs ?? DAY_MS;
    this.admin = new S3Client({
      endpoint: opts.upstream,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: opts.credentials,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 1,
    });
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        if (!res.headersSent) this.sendError(res, req, 500, 'InternalError', `glacier proxy: ${String(e)}`);
        else res.destroy();
      });
    });
  }

  static async start(opts: GlacierProxyOptions): Promise<GlacierProxy> {
    const proxy = new GlacierProxy(opts);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Finishes every restore in progress now (their expiry counts from now). */
  completeAllRestores(): void {
    const now = Date.now();
    for (const r of this.restores.values()) if (r.completesAt > now) r.completesAt = now;
  }

  /** The restore of bucket/key as the fake sees it (undefined: none, or expired). */
  restoreState(bucket: string, key: string): { ongoing: boolean; expiry?: Date; tier: RestoreTier; days: number } | undefined {
    const r = this.liveRestore(`${bucket}/${key}`);
    if (!r) return undefined;
    const ongoing = Date.now() < r.completesAt;
    return { ongoing, tier: r.tier, days: r.days, ...(ongoing ? {} : { expiry: new Date(this.expiryOf(r)) }) };
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    this.agent.destroy();
    this.admin.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // --- request handling ---------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { bucket, key, query } = parseTarget(req.url ?? '/');
    const method = req.method ?? 'GET';
    const isSub = [...query.keys()].some((q) => SUBRESOURCES.has(q));

    if (method === 'POST' && query.has('restore') && bucket !== undefined && key !== undefined) {
      await this.restoreObject(req, res, bucket, key, query);
      return;
    }
    if (method === 'PUT' && key !== undefined && !isSub && typeof req.headers['x-amz-copy-source'] === 'string') {
      const refused = await this.copySourceRefusal(req.headers['x-amz-copy-source']);
      if (refused) {
        req.resume();
        this.record(req, bucket, key, 'proxy', 403);
        this.sendError(res, req, 403, 'InvalidObjectState', "The source object of the COPY action is not in the active tier and is only stored in Amazon S3 Glacier.", { StorageClass: refused });
        return;
      }
    }
    const dataRead = (method === 'GET' || method === 'HEAD') && bucket !== undefined && key !== undefined && !isSub;
    this.forward(req, res, bucket, key, (status, headers) => {
      if (bucket === undefined || key === undefined || status >= 300) return 'pass';
      // A new object at the key (put, completed multipart, copy) or its deletion ends any restore.
      if (!isSub && (method === 'PUT' || method === 'DELETE')) this.restores.delete(`${bucket}/${key}`);
      if (method === 'POST' && query.has('uploadId')) this.restores.delete(`${bucket}/${key}`);
      if (!dataRead) return 'pass';
      const storageClass = headerString(headers['x-amz-storage-class']);
      if (!storageClass || !GLACIER_CLASSES.has(storageClass)) return 'pass';
      const r = this.liveRestore(`${bucket}/${key}`);
      if (r) headers['x-amz-restore'] = this.restoreHeader(r);
      if (method === 'GET' && (!r || Date.now() < r.completesAt)) return { refuse: storageClass };
      return 'pass';
    });
  }

  /**
   * Forwards the request untouched. `inspect` sees the upstream status and headers (and may add
   * headers) and can turn the answer into InvalidObjectState, in which case the upstream body is
   * dropped.
   */
  private forward(
    req: IncomingMessage,
    res: ServerResponse,
    bucket: string | undefined,
    key: string | undefined,
    inspect: (status: number, headers: http.IncomingHttpHeaders) => 'pass' | { refuse: string },
  ): void {
    const upstream = http.request(
      { host: this.target.hostname, port: this.target.port, method: req.method, path: req.url, headers: req.headers, agent: this.agent },
      (up) => {
        const status = up.statusCode ?? 502;
        const headers = { ...up.headers };
        const verdict = inspect(status, headers);
        if (verdict !== 'pass') {
          up.destroy();
          this.record(req, bucket, key, 'proxy', 403);
          this.sendError(res, req, 403, 'InvalidObjectState', "The operation is not valid for the object's storage class", { StorageClass: verdict.refuse });
          return;
        }
        this.record(req, bucket, key, 'upstream', status);
        res.writeHead(status, headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.socket?.destroy());
    req.pipe(upstream);
  }

  private async restoreObject(req: IncomingMessage, res: ServerResponse, bucket: string, key: string, query: URLSearchParams): Promise<void> {
    const body = await readBody(req);
    const answer = (status: number, code?: string, message?: string, extra?: Record<string, string>, signatureValid?: boolean) => {
      this.record(req, bucket, key, 'proxy', status, signatureValid);
      if (code) this.sendError(res, req, status, code, message ?? code, extra);
      else {
        res.writeHead(status, { 'content-length': '0', 'x-amz-request-id': requestId() });
        res.end();
      }
    };

    const auth = verifySigV4(req, body, this.opts.credentials);
    if (!auth.ok) return answer(auth.status, auth.code, auth.message, undefined, false);

    const request = parseRestoreRequest(body.toString('utf8'));
    if (!request) return answer(400, 'MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema', undefined, true);

    const versionId = query.get('versionId') ?? undefined;
    const head = await this.headUpstream(bucket, key, versionId);
    if (head === 'no-bucket') return answer(404, 'NoSuchBucket', 'The specified bucket does not exist', { BucketName: bucket }, true);
    if (head === 'no-key') return answer(404, 'NoSuchKey', 'The specified key does not exist.', { Key: key }, true);
    const storageClass = head.StorageClass ?? 'STANDARD';
    if (!GLACIER_CLASSES.has(storageClass)) {
      return answer(403, 'InvalidObjectState', "Restore is not allowed for the object's current storage class", { StorageClass: storageClass }, true);
    }

    const id = `${bucket}/${key}`;
    const now = Date.now();
    const current = this.liveRestore(id);
    if (current && now < current.completesAt) return answer(409, 'RestoreAlreadyInProgress', 'Object restore is already in progress', undefined, true);
    if (current) {
      // Restoring a restored object again sets a new expiry, counted from now.
      current.days = request.days;
      current.completesAt = now;
      return answer(200, undefined, undefined, undefined, true);
    }
    const delay = typeof this.opts.restoreDelayMs === 'function' ? this.opts.restoreDelayMs(request.tier, storageClass) : (this.opts.restoreDelayMs ?? Infinity);
    this.restores.set(id, { storageClass, tier: request.tier, days: request.days, completesAt: now + delay });
    return answer(202, undefined, undefined, undefined, true);
  }

  /** An archived, unrestored copy source's storage class, else undefined. */
  private async copySourceRefusal(copySource: string): Promise<string | undefined> {
    const [pathPart = '', queryPart = ''] = copySource.split('?');
    const decoded = safeDecode(pathPart.replace(/^\/+/, ''));
    const slash = decoded.indexOf('/');
    if (slash < 0) return undefined;
    const bucket = decoded.slice(0, slash);
    const key = decoded.slice(slash + 1);
    const head = await this.headUpstream(bucket, key, new URLSearchParams(queryPart).get('versionId') ?? undefined);
    if (typeof head === 'string') return undefined; // upstream will answer the copy with its own error
    const storageClass = head.StorageClass ?? 'STANDARD';
    if (!GLACIER_CLASSES.has(storageClass)) return undefined;
    const r = this.liveRestore(`${bucket}/${key}`);
    return r && Date.now() >= r.completesAt ? undefined : storageClass;
  }

  private async headUpstream(bucket: string, key: string, versionId: string | undefined): Promise<HeadObjectCommandOutput | 'no-key' | 'no-bucket'> {
    try {
      return await this.admin.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ...(versionId ? { VersionId: versionId } : {}) }));
    } catch (e) {
      if ((e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode !== 404) throw e;
      try {
        await this.admin.send(new HeadBucketCommand({ Bucket: bucket }));
        return 'no-key';
      } catch {
        return 'no-bucket';
      }
    }
  }

  /** The restore of `id` unless there is none or its restored copy has expired. */
  private liveRestore(id: string): RestoreState | undefined {
    const r = this.restores.get(id);
    if (r && Date.now() >= r.completesAt && Date.now() >= this.expiryOf(r)) {
      this.restores.delete(id);
      return undefined;
    }
    return r;
  }

  private expiryOf(r: RestoreState): number {
    const end = r.completesAt + r.days * this.dayMs;
    // AWS keeps a restored copy until midnight UTC after the Days have passed.
    return this.dayMs === DAY_MS ? Math.ceil(end / DAY_MS) * DAY_MS : end;
  }

  private restoreHeader(r: RestoreState): string {
    if (Date.now() < r.completesAt) return 'ongoing-request="true"';
    return `ongoing-request="false", expiry-date="${new Date(this.expiryOf(r)).toUTCString()}"`;
  }

  private record(req: IncomingMessage, bucket: string | undefined, key: string | undefined, answeredBy: SeenRequest['answeredBy'], status: number, signatureValid?: boolean): void {
    this.seen.push({ method: req.method ?? '', url: req.url ?? '', bucket, key, answeredBy, status, ...(signatureValid === undefined ? {} : { signatureValid }) });
  }

  private sendError(res: ServerResponse, req: IncomingMessage, status: number, code: string, message: string, extra: Record<string, string> = {}): void {
    const id = requestId();
    const fields = Object.entries(extra)
      .map(([k, v]) => `<${k}>${xmlEscape(v)}</${k}>`)
      .join('');
    const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message>${fields}<RequestId>${id}</RequestId><HostId>glacier-proxy</HostId></Error>`;
    res.writeHead(status, { 'content-type': 'application/xml', 'x-amz-request-id': id, ...(req.method === 'HEAD' ? {} : { 'content-length': Buffer.byteLength(body) }) });
    res.end(req.method === 'HEAD' ? undefined : body);
  }
}

// --- helpers ---------------------------------------------------------------------

function parseTarget(url: string): { bucket: string | undefined; key: string | undefined; query: URLSearchParams } {
  const q = url.indexOf('?');
  const rawPath = q < 0 ? url : url.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
  const path = rawPath.replace(/^\/+/, '');
  const slash = path.indexOf('/');
  if (path === '') return { bucket: undefined, key: undefined, query };
  if (slash < 0) return { bucket: safeDecode(path), key: undefined, query };
  const key = safeDecode(path.slice(slash + 1));
  return { bucket: safeDecode(path.slice(0, slash)), key: key === '' ? undefined : key, query };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function headerString(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function requestId(): string {
  return `glacierfake${Date.now().toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`;
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** Days and tier of a RestoreRequest body; undefined when malformed (Days is required for Glacier). */
export function parseRestoreRequest(xml: string): { days: number; tier: RestoreTier } | undefined {
  if (!/<RestoreRequest[\s>]/.test(xml)) return undefined;
  const days = /<Days>\s*(\d+)\s*<\/Days>/.exec(xml)?.[1];
  const tier = /<GlacierJobParameters>[\s\S]*?<Tier>\s*([A-Za-z]+)\s*<\/Tier>[\s\S]*?<\/GlacierJobParameters>/.exec(xml)?.[1] ?? /<Tier>\s*([A-Za-z]+)\s*<\/Tier>/.exec(xml)?.[1] ?? 'Standard';
  if (days === undefined || Number(days) < 1) return undefined;
  if (tier !== 'Standard' && tier !== 'Bulk' && tier !== 'Expedited') return undefined;
  return { days: Number(days), tier };
}

// --- SigV4 verification (header auth), as S3 does it ---------------------------------

type AuthResult = { ok: true } | { ok: false; status: number; code: string; message: string };

/** RFC 3986 encoding, as SigV4 wants it (encodeURIComponent leaves !'()* alone). */
function rfc3986(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/**
 * Checks the Authorization header of a request the way S3 does: same canonical request, same
 * signing key, and the body's SHA-256 against x-amz-content-sha256.
 */
export function verifySigV4(req: IncomingMessage, body: Buffer, creds: { accessKeyId: string; secretAccessKey: string }): AuthResult {
  const authz = headerString(req.headers.authorization) ?? '';
  const m = /^AWS4-HMAC-SHA256\s+Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request,\s*SignedHeaders=([^,]+),\s*Signature=([0-9a-f]{64})$/.exec(authz.trim());
  if (!m) return { ok: false, status: 403, code: 'AccessDenied', message: 'Access Denied: no SigV4 Authorization header' };
  const [, accessKeyId = '', date = '', region = '', service = '', signedHeaderList = '', signature = ''] = m;
  if (accessKeyId !== creds.accessKeyId) {
    return { ok: false, status: 403, code: 'InvalidAccessKeyId', message: 'The AWS Access Key Id you provided does not exist in our records.' };
  }
  const amzDate = headerString(req.headers['x-amz-date']) ?? '';
  const when = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (!when || !amzDate.startsWith(date)) return { ok: false, status: 403, code: 'AccessDenied', message: 'Access Denied: bad x-amz-date' };
  const t = Date.UTC(Number(when[1]), Number(when[2]) - 1, Number(when[3]), Number(when[4]), Number(when[5]), Number(when[6]));
  if (Math.abs(Date.now() - t) > MAX_CLOCK_SKEW_MS) {
    return { ok: false, status: 403, code: 'RequestTimeTooSkewed', message: "The difference between the request time and the server's time is too large." };
  }
  const payloadHash = headerString(req.headers['x-amz-content-sha256']) ?? '';
  if (payloadHash !== 'UNSIGNED-PAYLOAD' && payloadHash !== createHash('sha256').update(body).digest('hex')) {
    return { ok: false, status: 400, code: 'XAmzContentSHA256Mismatch', message: "The provided 'x-amz-content-sha256' header does not match what was computed." };
  }
  const md5 = headerString(req.headers['content-md5']);
  if (md5 !== undefined && md5 !== createHash('md5').update(body).digest('base64')) {
    return { ok: false, status: 400, code: 'BadDigest', message: "The Content-MD5 you specified did not match what we received." };
  }

  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const rawPath = q < 0 ? url : url.slice(0, q);
  // S3 encodes the path once (other services twice): decode what came, encode per RFC 3986.
  const canonicalUri = rawPath.split('/').map((seg) => rfc3986(safeDecode(seg))).join('/') || '/';
  const canonicalQuery = (q < 0 ? '' : url.slice(q + 1))
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const eq = p.indexOf('=');
      const k = eq < 0 ? p : p.slice(0, eq);
      const v = eq < 0 ? '' : p.slice(eq + 1);
      return [rfc3986(safeDecode(k)), rfc3986(safeDecode(v))] as const;
    })
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const signedHeaders = signedHeaderList.split(';');
  const canonicalHeaders = signedHeaders
    .map((h) => {
      const v = req.headers[h];
      const value = (Array.isArray(v) ? v.join(',') : (v ?? '')).trim().replace(/\s+/g, ' ');
      return `${h}:${value}\n`;
    })
    .join('');
  const canonicalRequest = [req.method ?? '', canonicalUri, canonicalQuery, canonicalHeaders, signedHeaderList, payloadHash].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${creds.secretAccessKey}`, date), region), service), 'aws4_request');
  const expected = hmac(key, stringToSign);
  if (!timingSafeEqual(expected, Buffer.from(signature, 'hex'))) {
    return { ok: false, status: 403, code: 'SignatureDoesNotMatch', message: 'The request signature we calculated does not match the signature you provided. Check your key and signing method.' };
  }
  return { ok: true };
}
