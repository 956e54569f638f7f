import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exitedWithin, runCli } from '../support/cli.ts';
import { freePort } from '../support/ports.ts';
import { scratchDir } from '../support/scratch.ts';
import { SilentServer } from '../support/silent-server.ts';
import { waitFor } from '../support/wait.ts';

/**
 * Every service that opens a PostgreSQL store waits for it when it is not there (never exits on it), and a stop
 * (SIGTERM: Kubernetes, compose) during that wait ends the service at once and cleanly, exit 0 — it used to hold the
 * process until the SIGKILL. Two ways a database is missing: nothing listens on its port (refused, retried with
 * back-off), or a server accepts and never answers (a connection attempt in flight, which the stop must cut short
 * rather than wait out its 10 s timeout). No PostgreSQL is started; `service api` has its own test
 * (api-stores-unreachable.test.ts).
 */
const dir = scratchDir('cc-stop-waiting-');
let silent: SilentServer;
before(async () => {
  silent = await SilentServer.listen();
});
after(async () => {
  await silent.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The service's arguments, and the line it logs when the stop ended its wait. */
const SERVICES: Record<string, { args: (registry: string) => string[]; stopped: string }> = {
  predictor: { args: (r) => ['--bus', 'memory', '--registry', r], stopped: 'stopped before it started' },
  monitor: { args: (r) => ['--bus', 'memory', '--registry', r], stopped: 'stopped before it started' },
  'feature-writer': { args: () => ['--bus', 'memory'], stopped: 'stopped before it started' },
  trainer: {
    args: (r) => ['--registry', r],
    stopped: 'stopped while waiting for the feature store, or while fitting: nothing was registered',
  },
};

/** The service's log so far (JSON lines on stderr). */
const logOf = (run: ReturnType<typeof runCli>) =>
  run
    .stderr()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('a service stopped while it waits for its PostgreSQL', () => {
  for (const [name, s] of Object.entries(SERVICES))
    for (const kind of ['nothing listens', 'accepts and never answers'] as const)
      it(`${name} ends at once, exit 0 (${kind})`, async () => {
        const pgPort = kind === 'nothing listens' ? await freePort() : silent.port;
        const seen = silent.connections;
        const run = runCli(
          [
            'service',
            name,
            ...s.args(join(dir, `registry-${name}-${pgPort}`)),
            '--store',
            `postgres://cc@127.0.0.1:${pgPort}/cc`,
          ],
          { CRYPTOCAST_LOG_LEVEL: 'info' },
        );
        try {
          // Waiting, for sure: it said so (refused), or its connection attempt reached the silent server.
          if (kind === 'nothing listens')
            await waitFor(
              'the service to say it waits for postgresql',
              () =>
                logOf(run).some(
                  (e) => e.dependency === 'postgresql' && String(e.msg).includes('unavailable'),
                ),
              (said) => said,
              { timeoutMs: 60_000, everyMs: 20 },
            );
          else
            await waitFor(
              'a connection to the silent server',
              () => silent.connections,
              (n) => n > seen,
              {
                timeoutMs: 60_000,
                everyMs: 20,
              },
            );
        } finally {
          run.child.kill('SIGTERM');
        }
        const stopped = Date.now();
        assert.equal(await exitedWithin(run, 30_000, `service ${name} to stop`), 0, run.stderr());
        // Below the 10 s a connection attempt may take, and the back-off's 15 s, with room for a loaded machine's exit.
        assert.ok(Date.now() - stopped < 8_000, `stopped in ${Date.now() - stopped} ms`);
        const said = logOf(run).map((e) => e.msg);
        assert.ok(said.includes(s.stopped), `"${s.stopped}" in ${JSON.stringify(said)}`);
      });

  it('cryptocast run on a PostgreSQL store ends at once too: exit 130, nothing written, said in one line', async () => {
    const pgPort = await freePort();
    const run = runCli(['run', '--store', `postgres://cc@127.0.0.1:${pgPort}/cc`, '--port', '0'], {
      CRYPTOCAST_LOG_LEVEL: 'info',
      CRYPTOCAST_REGISTRY: join(dir, 'registry-run'),
    });
    try {
      await waitFor(
        'run to say it waits for postgresql',
        () => logOf(run).some((e) => e.dependency === 'postgresql'),
        (said) => said,
        { timeoutMs: 60_000, everyMs: 20 },
      );
    } finally {
      run.child.kill('SIGTERM');
    }
    const stopped = Date.now();
    assert.equal(await exitedWithin(run, 30_000, 'run to stop'), 130, run.stderr());
    assert.ok(Date.now() - stopped < 8_000, `stopped in ${Date.now() - stopped} ms`);
    assert.match(
      run.stderr(),
      /cryptocast: stopped before the run started, while waiting for the store: nothing was written \[CC_ERR_INTERRUPTED\]/,
    );
  });
});
