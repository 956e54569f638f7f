import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { exitedWithin, liveRunOnKraken } from '../support/cli.ts';
import { registerFlatChampion, tempDirs } from '../support/embedded-run.ts';
import { KrakenServer } from '../support/exchanges/kraken.ts';
import { waitFor } from '../support/wait.ts';

const dir = tempDirs();

/**
 * The alert notifications a run logged (stderr under --json: JSON lines of the `alerts` logger), in order. At the run's
 * own log level (warn), resolutions too: they were logged at info, and a run never showed one.
 */
function notifications(stderr: string): { status: string; rule: string; repeat: number }[] {
  const out: { status: string; rule: string; repeat: number }[] = [];
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    const l = JSON.parse(line) as { service?: string; rule?: string; repeat?: number; msg?: string };
    if (l.service !== 'alerts' || l.rule === undefined) continue;
    const status = /^(firing|resolved):/.exec(l.msg ?? '')?.[1];
    if (status !== undefined) out.push({ status, rule: l.rule, repeat: l.repeat ?? 0 });
  }
  return out;
}

/**
 * `cryptocast run --source live` restarted on its store, with an alert firing: its in-process bus starts empty, and
 * the `alerts` topic a restarted monitor takes its firing alerts back from was empty too. The alert still firing was
 * announced again as new (`repeat` 0, to every channel), and one whose rule was removed was never resolved (a
 * webhook receiver kept it open for ever).
 */
describe('cryptocast run --source live, restarted with an alert firing', () => {
  it('does not fire it again as new; resolves it once its rule is gone', async () => {
    const env = await registerFlatChampion(dir('cc-alerts-restart-registry-'));
    const work = dir('cc-alerts-restart-');
    const file = join(work, 'cryptocast.duckdb');
    // A champion trained more than 0.001 h ago: the rule holds at the first evaluation (every 5 s live).
    const rules = (name: string, ...names: string[]) => {
      const path = join(work, `${name}.yaml`);
      writeFileSync(
        path,
        `rules:\n${names.map((n) => `  - { name: ${n}, kind: champion_age, hours: 0.001 }\n`).join('')}`,
      );
      return path;
    };
    const srv = await new KrakenServer().listen();
    srv.heartbeatMs = 200;
    const run = (rulesFile: string) =>
      liveRunOnKraken(srv, {
        pairs: 'BTC/USDT',
        file,
        flags: ['--alert-rules', rulesFile],
        env,
      });
    /** Runs until `done` holds of its notifications (a deadline for a loaded machine), then stops it: them. */
    const runUntil = async (
      rulesFile: string,
      what: string,
      done: (n: ReturnType<typeof notifications>) => boolean,
    ) => {
      const r = run(rulesFile);
      try {
        await waitFor(what, () => notifications(r.stderr()), done, { timeoutMs: 120_000, everyMs: 100 });
        return notifications(r.stderr());
      } finally {
        r.child.kill('SIGTERM');
        await exitedWithin(r, 60_000, 'the live run to stop');
      }
    };
    const fired = (rule: string) => (ns: ReturnType<typeof notifications>) =>
      ns.some((n) => n.status === 'firing' && n.rule === rule);
    try {
      const first = await runUntil(
        rules('a', 'champion-ancient'),
        'the alert firing',
        fired('champion-ancient'),
      );
      assert.deepEqual(first, [{ status: 'firing', rule: 'champion-ancient', repeat: 0 }]);
      // The same rule, and a second one whose first firing says an evaluation ran (both in the same one, in order).
      const second = await runUntil(
        rules('b', 'champion-ancient', 'sentinel-second'),
        'the first evaluation after the restart',
        fired('sentinel-second'),
      );
      assert.deepEqual(
        second,
        [{ status: 'firing', rule: 'sentinel-second', repeat: 0 }],
        'the alert still firing is not announced again as new',
      );
      // Both rules removed: their alerts, still firing, are resolved at once.
      const third = await runUntil(
        rules('c', 'sentinel-third'),
        'the alerts of removed rules resolved',
        (ns) => ns.filter((n) => n.status === 'resolved').length >= 2,
      );
      assert.deepEqual(
        third
          .filter((n) => n.status === 'resolved')
          .map((n) => n.rule)
          .sort(),
        ['champion-ancient', 'sentinel-second'],
      );
    } finally {
      await srv.close();
    }
  });
});
