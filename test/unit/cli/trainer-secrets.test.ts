import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../../support/cli.ts';
import { scratchDir } from '../../support/scratch.ts';
import { settlesWithin, waitFor } from '../../support/wait.ts';

describe('service trainer: the MLflow password never reaches its log', () => {
  // Passwords a user pastes as they are: an "@" (the URL parser takes the last one as the end of the user info, so the
  // registry works) and a "/" (refused as a URL, after it was logged). In CRYPTOCAST_REGISTRY.
  for (const password of ['Kq7x@Zx9w-Tv', 'Kq7x/Zx9w-Tv'])
    it(`a password with "${password.includes('@') ? '@' : '/'}" in the registry URL`, async () => {
      const dir = scratchDir('cc-trainer-secret-');
      const registry = `mlflow+http://alice:${password}@127.0.0.1:9`;
      const run = runCli(
        ['service', 'trainer', '--store', `duckdb:${join(dir, 'features.duckdb')}`, '--every', '1h'],
        // From the environment, as a deployment gives it: a password in a flag is refused before anything runs.
        { CRYPTOCAST_LOG_LEVEL: 'info', CRYPTOCAST_REGISTRY: registry },
      );
      try {
        // The "running" line (info) comes after the look for the newest version (a warning here: nothing answers).
        await waitFor(
          'the running line',
          () => run.stderr(),
          (e) => /"msg":"running"/.test(e),
          {
            timeoutMs: 60_000,
            everyMs: 50,
          },
        );
        run.child.kill('SIGTERM');
        await settlesWithin(run.exited, 60_000, 'the trainer to stop');
        const secretParts = password.split(/[@/]/);
        for (const part of secretParts)
          assert.ok(
            !run.stderr().includes(part),
            `"${part}" of the password is in the log:\n${run.stderr()}`,
          );
      } finally {
        if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
      }
    });
});
