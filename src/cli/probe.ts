import { setting } from '../config/env.ts';

/**
 * The container image's HEALTHCHECK: GET one URL on this host, exit 0 on a 2xx answer within the timeout, 1
 * otherwise. The URL is CRYPTOCAST_HEALTH_URL (the API: http://127.0.0.1:8080/v1/health), else the metrics
 * endpoint every service serves, http://127.0.0.1:$CRYPTOCAST_METRICS_PORT/metrics (default port 9464).
 * Kubernetes ignores HEALTHCHECK and uses the chart's probes, which name the same endpoints.
 */
const url =
  setting('CRYPTOCAST_HEALTH_URL') ??
  `http://127.0.0.1:${setting('CRYPTOCAST_METRICS_PORT') ?? '9464'}/metrics`;
try {
  const res = await fetch(url, { signal: AbortSignal.timeout(4_000) });
  await res.body?.cancel();
  process.exit(res.ok ? 0 : 1);
} catch (err) {
  process.stderr.write(`unhealthy: ${url}: ${(err as Error).message}\n`);
  process.exit(1);
}
