import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { CLI, exitedWithin, runCli } from '../support/cli.ts';
import { registerFlatChampion, replayRunArgs, tempDirs } from '../support/embedded-run.ts';

const dir = tempDirs();
const DAY = Date.UTC(2022, 4, 9);

/**
 * `run` logs at warn: a replay showed each alert firing (a warn log line) but never its resolution (logged at info), so
 * its alerts seemed never to end. Each transition is one line, at the alert's own time — the replayed day, not the wall
 * clock: under --json the alerts logger's JSON line at warn (what a machine reading stderr parses), else a line of the
 * run's output (`alert firing at …`, `alert resolved at …`).
 */
describe('run --replay: every alert firing and resolving is one line, at its event time', () => {
  let env: NodeJS.ProcessEnv;
  let rules = '';
  before(async () => {
    const root = dir('cc-replay-alerts-');
    env = await registerFlatChampion(join(root, 'registry'));
    // The flat champion (a return of a fraction of a basis point) is persistence give or take nothing: its skill over
    // an hour hovers around 0 all day, and a rule on its sign fires and resolves again and again.
    rules = join(root, 'rules.yaml');
    writeFileSync(
      rules,
      'rules:\n  - { name: hovering, kind: skill_below, window: 1h, threshold: 0, minCount: 30 }\n',
    );
  });

  /** The day replayed with the rule: its transitions, as `parse` reads them off its output. */
  const replay = async (json: boolean, parse: (line: string) => Transition | null) => {
    const args = replayRunArgs(join(dir('cc-replay-alerts-run-'), 'cryptocast.duckdb'), '2022-05-09', [
      '--alert-rules',
      rules,
    ]);
    let out: string;
    if (json) {
      const run = runCli(args, env);
      assert.equal(await exitedWithin(run, 300_000, 'the day replay'), 0, run.stderr());
      out = run.stderr();
    } else {
      const r = await promisify(execFile)(
        CLI,
        args.filter((a) => a !== '--json'),
        { env: { ...process.env, ...env }, timeout: 300_000, maxBuffer: 64 * 1024 * 1024 },
      );
      out = r.stdout;
    }
    return { out, transitions: out.split('\n').flatMap((l) => parse(l) ?? []) };
  };

  it("under --json: a JSON line of the alerts logger each, resolutions too, at the run's level", async () => {
    const { out, transitions } = await replay(true, (line) => {
      if (!line.startsWith('{')) return null;
      const l = JSON.parse(line) as {
        service?: string;
        rule?: string;
        key?: string;
        at?: string;
        msg?: string;
      };
      const status = /^(firing|resolved):/.exec(l.msg ?? '')?.[1];
      if (l.service !== 'alerts' || l.rule !== 'hovering' || status === undefined) return null;
      return { status, at: Date.parse(l.at!), key: l.key! };
    });
    assertTransitions(transitions, out);
    // Not told besides as a text line.
    assert.ok(!/^alert (firing|resolved) at /m.test(out), out.slice(-3000));
  });

  it('read by a person: a line of the output each, `alert firing at …` and `alert resolved at …`', async () => {
    const { out, transitions } = await replay(false, (line) => {
      const m = /^alert (firing|resolved) at (\S+ \S+): hovering (?:\(warning\) )?(\S+?)[:,] /.exec(line);
      return m === null ? null : { status: m[1]!, at: Date.parse(`${m[2]!.replace(' ', 'T')}Z`), key: m[3]! };
    });
    assertTransitions(transitions, out);
  });
});

interface Transition {
  status: string;
  at: number;
  key: string;
}

function assertTransitions(transitions: Transition[], out: string): void {
  const firing = transitions.filter((t) => t.status === 'firing');
  const resolved = transitions.filter((t) => t.status === 'resolved');
  assert.ok(firing.length > 0 && resolved.length > 0, `fired and resolved:\n${out.slice(-3000)}`);
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
}
