// A forwarding proxy that counts requests, for the scenarios that must show a tool makes none.
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface CountingProxy {
  endpoint: string;
  /** "ISO-time METHOD path?query" of every request, in order. */
  seen: string[];
  close(): Promise<void>;
}

/**
 * Bench-only instrumentation, not part of Offsite: an HTTP proxy in front of RGW that counts the
 * requests a tool makes (the idle daemon, the idle console). Requests are forwarded unchanged (Host included, so SigV4
 * signatures still verify at RGW).
 */
export async function startCountingProxy(upstreamEndpoint: string): Promise<CountingProxy> {
  const upstream = new URL(upstreamEndpoint);
  const agent = new http.Agent({ keepAlive: true });
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push(`${new Date().toISOString()} ${req.method} ${req.url}`);
    const forward = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, agent }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    forward.on('error', () => res.socket?.destroy());
    req.pipe(forward);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: async () => {
      server.closeAllConnections();
      agent.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
