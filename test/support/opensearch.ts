import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/**
 * The real OpenSearch node of the integration tests (scripts/opensearch.sh: OpenSearch 2.19 from Maven Central, one
 * node on 127.0.0.1). CRYPTOCAST_TEST_OPENSEARCH names it (default http://127.0.0.1:9200, the node scripts/test.sh
 * starts, data in .data/opensearch); on another port, its transport port is the HTTP port + 100 and its data dir
 * .data/opensearch-<port>, so a second checkout can run a node of its own.
 */
export const OPENSEARCH_URL = process.env.CRYPTOCAST_TEST_OPENSEARCH ?? 'http://127.0.0.1:9200';
const ROOT = join(import.meta.dirname, '..', '..');
const port = Number(new URL(OPENSEARCH_URL).port || 9200);

function script(command: 'start' | 'stop' | 'kill'): void {
  execFileSync('bash', [join(ROOT, 'scripts', 'opensearch.sh'), command], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: {
      ...process.env,
      OPENSEARCH_PORT: String(port),
      OPENSEARCH_TRANSPORT_PORT: String(port + 100),
      OPENSEARCH_DATA_DIR:
        process.env.OPENSEARCH_DATA_DIR ??
        join(ROOT, '.data', port === 9200 ? 'opensearch' : `opensearch-${port}`),
    },
  });
}

/** Starts the node if it is not serving (idempotent); waits until the cluster is yellow or green. */
export const ensureOpenSearch = () => script('start');
/** SIGKILL, for tests of a sink that must survive OpenSearch going away. */
export const killOpenSearch = () => script('kill');

/** A JSON request to the node; throws on a non-2xx answer. */
export async function os<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(OPENSEARCH_URL + path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 500)}`);
  return JSON.parse(text) as T;
}
