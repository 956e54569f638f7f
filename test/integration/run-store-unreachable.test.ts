import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exitedWithin, runCli } from '../support/cli.ts';
import { freePort } from '../support/ports.ts';
import { scratchDir } from '../support/scratch.ts';
import { SilentServer } from '../support/silent-server.ts';

/**
 * A replay `cryptocast run` has an end, as `features --store` and `train --store` have: given a PostgreSQL store that
 * does not answer (a wrong port: nothing listens; or a server that accepts and never answers), it gives up after the
 * one-shot commands' bounded wait with one catalogued line naming the store, instead of waiting for ever behind one
 * JSON log line, as a service does (a user's typo'd port looked like a hang). No PostgreSQL is started.
 */
const dir = scratchDir('cc-run-store-unreachable-');
let silent: SilentServer;
before(async () => {
  silent = await SilentServer.listen();
});
after(async () => {
  await silent.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('cryptocast run (a replay) on a PostgreSQL store that does not answer', () => {
  for (const kind of ['nothing listens', 'accepts and never answers'] as const)
    it(`gives up with CC_ERR_STORE naming the store, exit 1, nothing written (${kind})`, async () => {
      const port = kind === 'nothing listens' ? await freePort() : silent.port;
      const started = Date.now();
      // The password comes from the environment, as the README says it must; it is never printed.
      const run = runCli(['run', '--port', '0', '--quiet'], {
        CRYPTOCAST_STORE: `postgres://cc:hunter2-secret@127.0.0.1:${port}/cc`,
        CRYPTOCAST_REGISTRY: join(dir, 'registry'),
      });
      // 15 s of waiting, a 10 s connection attempt in flight at most, and a loaded machine's start and exit.
      assert.equal(await exitedWithin(run, 90_000, 'run to give up'), 1, run.stderr());
      assert.ok(
        Date.now() - started >= 14_000,
        `gave up after ${Date.now() - started} ms: it must wait a while`,
      );
      assert.match(
        run.stderr(),
        new RegExp(
          `cryptocast: the store postgres://\\[redacted\\]@127\\.0\\.0\\.1:${port}/cc did not answer within 15 s: .+ \\[CC_ERR_STORE\\]`,
        ),
      );
      assert.match(run.stderr(), /hint: start the database, or check the host, port, user and password/);
      assert.doesNotMatch(run.stderr(), /hunter2-secret/);
    });
});
