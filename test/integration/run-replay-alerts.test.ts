import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { exitedWithin, runCli } from '../support/cli.ts';
import { registerFlatChampion, replayRunArgs, tempDirs } from '../support/embedded-run.ts';

const dir = tempDirs();
const DAY = Date.UTC(2022, 4, 9);

/**
 * `run` logs at warn: a replay showed each alert firing (a warn log line) but never its resolution (logged at info), so
 * its alerts seemed never to end. Each transition is one line of the run's output (stderr with --json), at the alert's
 * own time — the replayed day, not the wall clock — and the alert is not logged besides.
 */
it('run --replay: every alert firing and resolving is one line of the output, at its event time', async () => {
  const root = dir('cc-replay-alerts-');
  const env = await registerFlatChampion(join(root, 'registry'));
  // The flat champion (a return of a fraction of a basis point) is persistence give or take nothing: its skill over an
  // hour hovers around 0 all day, and a rule on its sign fires and resolves again and again.
  const rules = join(root, 'rules.yaml');
  writeFileSync(
    rules,
    'rules:\n  - { name: hovering, kind: skill_below, window: 1h, threshold: 0, minCount: 30 }\n',
  );
  const run = runCli(
    replayRunArgs(join(root, 'cryptocast.duckdb'), '2022-05-09', ['--alert-rules', rules]),
    env,
  );
  assert.equal(await exitedWithin(run, 300_000, 'the day replay'), 0, run.stderr());
  const lines = run.stderr().split('\n');
  const transitions = lines
    .map((l) => /^alert (firing|resolved) at (\S+ \S+): hovering (?:\(warning\) )?(\S+?)[:,] /.exec(l))
    .filter((m) => m !== null)
    .map((m) => ({ status: m[1]!, at: Date.parse(`${m[2]!.replace(' ', 'T')}Z`), key: m[3]! }));
  const firing = transitions.filter((t) => t.status === 'firing');
  const resolved = transitions.filter((t) => t.status === 'resolved');
  assert.ok(firing.length > 0 && resolved.length > 0, `fired and resolved:\n${run.stderr().slice(-3000)}`);
  // At the replayed day's times (the verdicts run a few minutes into the next day), not the wall clock's.
  for (const t of transitions)
    assert.ok(t.at >= DAY && t.at < DAY + 86_400_000 + 3_600_000, `${new Date(t.at).toISOString()}`);
  // One line per transition: per pair, firing and resolved alternate, in time order, and each resolution follows its
  // firing.
  for (const key of new Set(transitions.map((t) => t.key))) {
    const own = transitions.filter((t) => t.key === key);
    own.forEach((t, i) => {
      assert.equal(t.status, i % 2 === 0 ? 'firing' : 'resolved', JSON.stringify(own));
      if (i > 0) assert.ok(t.at > own[i - 1]!.at, JSON.stringify(own));
    });
  }
  // Not logged besides (a JSON line, or the logger's "firing: …"): one line each.
  assert.ok(!lines.some((l) => /"service":"alerts"/.test(l) && /firing|resolved/.test(l)), run.stderr());
});
