// A fault-injecting HTTP proxy between an S3 client and the real RGW, for what no real server
// here does on demand: 503 SlowDown, connection resets (before a response, or in the middle of a
// body), added latency, a server that never answers, and forced error answers. Requests are forwarded untouched (Host
// included, so SigV4 signatures still verify at RGW). This is a test fake, and tests that use it
// say so.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Fault =
  | { kind: 'status'; status: number; code: string }
  | { kind: 'reset' }
  | { kind: 'reset-mid-body'; afterBytes: number }
  | { kind: 'delay'; ms: number }
  /** Read the request, never answer (a server that hangs). */
  | { kind: 'stall' };

export interface FaultRule {
  /** Which requests: by method, and a test on the path+query. */
  method?: string;
  match?: (pathAndQuery: string) => boolean;
  fault: Fault;
  /** How many matching requests get the fault (then the rule is spent). */
  times: number;
}

export class FaultProxy {
  readonly server: http.Server;
  private readonly rules: FaultRule[] = [];
  private agent = new http.Agent({ keepAlive: true });
  private port = 0;
  /** Every request seen, as "METHOD path?query", in order. */
  readonly seen: string[] = [];
  /** The most multipart part uploads (PUT …partNumber=…) this proxy had in flight at once. */
  maxPartUploadsInFlight = 0;
  private partUploadsInFlight = 0;
  /** How many faults were injected. */
  injected = 0;

  private constructor(private readonly target: URL) {
    this.server = http.createServer((req, res) => void this.handle(req, res));
  }

  static async start(targetEndpoint: string): Promise<FaultProxy> {
    const proxy = new FaultProxy(new URL(targetEndpoint));
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.server.listening ? (this.server.address() as AddressInfo).port : this.port}`;
  }

  inject(rule: FaultRule): void {
    this.rules.push({ ...rule });
  }

  clear(): void {
    this.rules.length = 0;
  }

  /**
   * Stops listening, as a stopped server does: new connections are refused and open ones are
   * dropped. The port is kept for up().
   */
  async down(): Promise<void> {
    this.port = (this.server.address() as AddressInfo).port;
    this.server.closeAllConnections();
    this.agent.destroy();
    this.agent = new http.Agent({ keepAlive: true });
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Listens again on the port it had before down(). */
  async up(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    if (!this.server.listening) return;
    this.server.closeAllConnections();
    this.agent.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private takeFault(req: IncomingMessage): Fault | undefined {
    const rule = this.rules.find((r) => r.times > 0 && (!r.method || r.method === req.method) && (!r.match || r.match(req.url ?? '')));
    if (!rule) return undefined;
    rule.times--;
    this.injected++;
    return rule.fault;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.seen.push(`${req.method} ${req.url}`);
    if (req.method === 'PUT' && req.url?.includes('partNumber=')) {
      this.partUploadsInFlight++;
      this.maxPartUploadsInFlight = Math.max(this.maxPartUploadsInFlight, this.partUploadsInFlight);
      res.once('close', () => this.partUploadsInFlight--);
    }
    const fault = this.takeFault(req);
    if (fault?.kind === 'delay') await new Promise((r) => setTimeout(r, fault.ms));
    if (fault?.kind === 'stall') {
      req.resume();
      return;
    }
    if (fault?.kind === 'reset') {
      req.socket.destroy();
      return;
    }
    if (fault?.kind === 'status') {
      req.resume();
      req.on('end', () => {
        const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${fault.code}</Code><Message>injected by the test proxy</Message></Error>`;
        res.writeHead(fault.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
      return;
    }
    const upstream = http.request(
      {
        host: this.target.hostname,
        port: this.target.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent: this.agent,
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        if (fault?.kind === 'reset-mid-body') {
          let sent = 0;
          up.on('data', (chunk: Buffer) => {
            if (sent + chunk.length >= fault.afterBytes) {
              res.write(chunk.subarray(0, Math.max(0, fault.afterBytes - sent)));
              up.destroy();
              // Let the partial body reach the client, then drop the connection.
              setTimeout(() => res.socket?.destroy(), 20);
              sent = fault.afterBytes;
              return;
            }
            sent += chunk.length;
            res.write(chunk);
          });
          up.on('end', () => res.end());
          return;
        }
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.socket?.destroy());
    req.pipe(upstream);
  }
}
