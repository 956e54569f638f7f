import { readFileSync } from 'node:fs';
import { loadStreamConfig } from '../../config/config.ts';
import { secret, setting } from '../../config/env.ts';
import { ERR, fail, UsageError } from '../../core/errors.ts';
import { log } from '../../core/log.ts';
import { markStarted } from '../../core/readiness.ts';
import { onStopSignal } from '../../core/stop-signals.ts';
import { connectBus } from '../../runtime/connect.ts';
import { IndexSink } from '../../sinks/index-sink.ts';
import { OpenSearchIndex } from '../../sinks/opensearch.ts';
import { INDEX_PREFIX } from '../flags.ts';

/**
 * `cryptocast service index-sink`: `predictions` → OpenSearch (or Elasticsearch), for dashboards. The address comes
 * from --opensearch-url / CRYPTOCAST_OPENSEARCH_URL, the credentials only from the environment
 * (CRYPTOCAST_OPENSEARCH_USERNAME, CRYPTOCAST_OPENSEARCH_PASSWORD), and the CA of an https node from
 * CRYPTOCAST_OPENSEARCH_CA. Runs until SIGINT/SIGTERM; a SIGKILL at any
 * moment is safe too (the uncommitted batch is written again onto the same documents).
 */
export async function indexSinkService(opts: {
  bus?: string;
  opensearchUrl?: string;
  indexPrefix?: string;
}): Promise<void> {
  const busUrl = loadStreamConfig({ bus: opts.bus }).bus;
  const url = opts.opensearchUrl;
  if (!url)
    throw new UsageError(
      'index-sink needs OpenSearch: --opensearch-url http://host:9200 (or CRYPTOCAST_OPENSEARCH_URL)',
    );
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`--opensearch-url: not a URL: "${url}" (use http(s)://host:9200)`);
  }
  if (!/^https?:$/.test(parsed.protocol))
    throw new UsageError(`--opensearch-url: use http:// or https://, got "${parsed.protocol}"`);
  if (parsed.username || parsed.password)
    throw new UsageError(
      '--opensearch-url: no credentials in the URL; set CRYPTOCAST_OPENSEARCH_USERNAME and CRYPTOCAST_OPENSEARCH_PASSWORD',
    );
  const prefix = opts.indexPrefix ?? 'cryptocast-';
  if (!INDEX_PREFIX.test(prefix))
    throw new UsageError(`--index-prefix: lowercase letters, digits, ".", "_" or "-", got "${prefix}"`);

  const index = new OpenSearchIndex({
    url,
    username: setting('CRYPTOCAST_OPENSEARCH_USERNAME'),
    password: secret('CRYPTOCAST_OPENSEARCH_PASSWORD'),
    ca: openSearchCa(setting('CRYPTOCAST_OPENSEARCH_CA')),
    logger: log.child({ service: 'index-sink' }),
  });
  const bus = await connectBus(busUrl);
  const sink = new IndexSink(bus, index, { prefix });
  const abort = new AbortController();
  const shutdown = (signal: string) => {
    log.info({ service: 'index-sink', signal }, 'stopping');
    abort.abort();
  };
  onStopSignal(shutdown);
  try {
    const started = sink.start();
    // A stop during the set-up (OpenSearch unreachable from the start) ends the retries too.
    abort.signal.addEventListener('abort', () => void sink.stop(), { once: true });
    try {
      await started;
    } catch (err) {
      if (abort.signal.aborted) return; // stopped while OpenSearch was still unreachable: nothing consumed
      throw err;
    }
    markStarted();
    log.info({ service: 'index-sink', bus: busUrl, opensearch: parsed.origin, prefix }, 'running');
    const timer = setInterval(() => log.info({ service: 'index-sink', ...sink.stats }, 'progress'), 10_000);
    try {
      if (!abort.signal.aborted)
        await Promise.race([
          new Promise<void>((resolve) =>
            abort.signal.addEventListener('abort', () => resolve(), { once: true }),
          ),
          sink.failed,
        ]);
    } finally {
      clearInterval(timer);
    }
    await sink.stop();
    log.info({ service: 'index-sink', ...sink.stats }, 'stopped');
  } finally {
    await bus.close();
    await index.close();
  }
}

/** The CA file's certificate (PEM), read at start: a file that is not there is a setting to fix, said at once. */
function openSearchCa(file: string | undefined): string | undefined {
  if (file === undefined) return undefined;
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    throw fail(ERR.CONFIG, `CRYPTOCAST_OPENSEARCH_CA: ${file} cannot be read: ${(err as Error).message}`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----'))
    throw fail(ERR.CONFIG, `CRYPTOCAST_OPENSEARCH_CA: ${file} holds no PEM certificate`);
  return pem;
}
