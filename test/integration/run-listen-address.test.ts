import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { exitedWithin, runCli } from '../support/cli.ts';
import { tempDirs } from '../support/embedded-run.ts';
import { waitFor } from '../support/wait.ts';

const dir = tempDirs();

/** A TCP port the kernel just handed out (free at the time of asking). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** What a GET of `url` gives: its status, or the connection error's code. */
const reach = (url: string) =>
  fetch(url, { signal: AbortSignal.timeout(5_000) }).then(
    (r) => String(r.status),
    (e: Error & { cause?: { code?: string } }) => e.cause?.code ?? e.name,
  );

/** An address of this machine other than loopback (where another machine on its network reaches it). */
const outward = Object.values(networkInterfaces())
  .flat()
  .find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)?.address;

/**
 * `cryptocast run` is the laptop's one-process mode: its API has no key unless CRYPTOCAST_API_KEYS is set, and it
 * listened on every address (the status line said 127.0.0.1), so anyone on the same network (a café's Wi-Fi) read the
 * dashboard, the predictions and /metrics. It now listens on 127.0.0.1 unless CRYPTOCAST_API_HOST says otherwise (the
 * chart's embedded mode sets 0.0.0.0), as `service api` reads it.
 */
describe('cryptocast run: the address its API listens on', {
  skip: outward === undefined && 'no non-loopback IPv4',
}, () => {
  const start = async (env: NodeJS.ProcessEnv) => {
    const port = await freePort();
    const file = join(dir('cc-run-listen-'), 'cryptocast.duckdb');
    const run = runCli(
      ['run', '--json', '--serve', '--port', String(port), '--no-news', '--store', `duckdb:${file}`],
      {
        CRYPTOCAST_REGISTRY: dir('cc-run-listen-registry-'),
        ...env,
      },
    );
    await waitFor(
      'the API on 127.0.0.1',
      () => reach(`http://127.0.0.1:${port}/v1/health`),
      (s) => s === '200',
      {
        timeoutMs: 120_000,
      },
    );
    return { run, port };
  };
  const stop = async (run: ReturnType<typeof runCli>) => {
    run.child.kill('SIGTERM');
    await exitedWithin(run, 60_000, 'the run to stop');
  };

  it('by default: 127.0.0.1 only, not the machine’s other addresses', async () => {
    const { run, port } = await start({});
    try {
      assert.equal(await reach(`http://${outward}:${port}/v1/health`), 'ECONNREFUSED', run.stderr());
    } finally {
      await stop(run);
    }
  });

  it('CRYPTOCAST_API_HOST=0.0.0.0 (the chart’s embedded mode): every address', async () => {
    const { run, port } = await start({ CRYPTOCAST_API_HOST: '0.0.0.0' });
    try {
      assert.equal(await reach(`http://${outward}:${port}/v1/health`), '200', run.stderr());
    } finally {
      await stop(run);
    }
  });
});
