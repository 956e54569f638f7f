import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { listenError } from './listen-error.ts';
import { log } from './log.ts';
import { METRICS_CONTENT_TYPE, metricsText } from './metrics.ts';

/**
 * The metrics port of a `cryptocast service …` (`--metrics-port`): `GET /metrics` (Prometheus text), `GET /health`
 * (the process is up) and `GET /ready` (200 once `ready()` says so: started and its dependencies answering; 503
 * with the reason before that) — what Kubernetes probes and Prometheus scrape. A bare node:http server: the
 * services do not need a web framework for three routes.
 */
export interface MetricsServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startMetricsServer(
  port: number,
  ready: () => { ready: boolean; reason?: string } = () => ({ ready: true }),
  host = '0.0.0.0',
): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      metricsText().then(
        (text) => res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE }).end(text),
        (err) => {
          log.error({ err }, 'metrics scrape failed');
          res.writeHead(500).end();
        },
      );
      return;
    }
    if (path === '/health') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    if (path === '/ready') {
      const r = ready();
      res
        .writeHead(r.ready ? 200 : 503, { 'content-type': 'application/json' })
        .end(JSON.stringify(r.ready ? { status: 'ready' } : { status: 'not_ready', reason: r.reason ?? '' }));
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found"}');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(listenError(err, port, '--metrics-port')));
    server.listen(port, host, () => resolve());
  });
  // Probes and scrapes never keep a process alive once its service has stopped.
  server.unref();
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
