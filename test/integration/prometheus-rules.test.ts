import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { runCli } from '../support/cli.ts';
import { KRAKEN_REST_TRADES } from '../support/data.ts';
import { stumpChampionRegistry } from '../support/monitoring.ts';
import { scratchDir } from '../support/scratch.ts';

/**
 * The Prometheus rules and the Grafana dashboard shipped in deploy/: promtool accepts the rules, every PromQL
 * expression of the dashboard parses, and every metric they name is one the services really export (compared with a
 * real /metrics scrape of `cryptocast run`).
 */
const ROOT = join(import.meta.dirname, '..', '..');
const RULES = join(ROOT, 'deploy', 'prometheus', 'alerts.yml');
const DASHBOARD = join(ROOT, 'deploy', 'grafana', 'cryptocast.json');

interface Panel {
  title: string;
  targets?: { expr: string }[];
}

const dashboardExprs = () =>
  (JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[] }).panels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr.replaceAll('$pair', 'BTC/USD') })),
  );
const ruleExprs = () =>
  (
    parse(readFileSync(RULES, 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] }
  ).groups.flatMap((g) => g.rules.map((r) => ({ alert: r.alert, expr: r.expr })));
const metricNames = (expr: string) => [...new Set(expr.match(/\bcryptocast_[a-z0-9_]+\b/g) ?? [])];

describe('Prometheus rules and Grafana dashboard (deploy/)', () => {
  let promtool = '';
  before(() => {
    promtool = execFileSync('bash', [join(ROOT, 'scripts', 'promtool.sh'), 'path'], {
      encoding: 'utf8',
    }).trim();
  });

  it('promtool check rules passes on deploy/prometheus/alerts.yml', () => {
    const r = spawnSync(promtool, ['check', 'rules', RULES], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /SUCCESS: \d+ rules found/);
  });

  it('promtool fails on a broken expression (the check can fail)', () => {
    const bad = join(scratchDir('cc-prom-'), 'bad.yml');
    writeFileSync(
      bad,
      'groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: sum(rate(cryptocast_trades_total[5m]) >\n',
    );
    assert.notEqual(spawnSync(promtool, ['check', 'rules', bad]).status, 0);
  });

  it('every PromQL expression of the Grafana dashboard parses', () => {
    const exprs = dashboardExprs();
    assert.ok(exprs.length >= 20, `${exprs.length} expressions`);
    const file = join(scratchDir('cc-prom-'), 'dashboard-exprs.yml');
    const doc = {
      groups: [
        { name: 'dashboard', rules: exprs.map((e, i) => ({ record: `dashboard:expr_${i}`, expr: e.expr })) },
      ],
    };
    writeFileSync(file, JSON.stringify(doc));
    const r = spawnSync(promtool, ['check', 'rules', file], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  it('every metric named in the rules and the dashboard is exported (a real scrape of cryptocast run)', async () => {
    const env = await stumpChampionRegistry();
    const file = join(scratchDir('cc-prom-'), 'cryptocast.duckdb');
    const run = runCli(
      ['run', '--json', '--serve', '--port', '0', '--store', `duckdb:${file}`, '--data', KRAKEN_REST_TRADES],
      env,
    );
    let text = '';
    try {
      const serving = await run.waitFor((e) => e.event === 'serving');
      text = await (await fetch(`http://127.0.0.1:${serving.port}/metrics`)).text();
    } finally {
      run.child.kill('SIGTERM');
      await run.exited;
    }
    const exported = new Set<string>();
    for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      exported.add(m[1]!);
      if (m[2] === 'histogram') for (const s of ['_bucket', '_sum', '_count']) exported.add(m[1]! + s);
    }
    assert.ok(exported.has('cryptocast_quality_skill_ratio'));
    const missing: string[] = [];
    for (const { expr } of [...ruleExprs(), ...dashboardExprs()])
      for (const name of metricNames(expr)) if (!exported.has(name)) missing.push(name);
    assert.deepEqual([...new Set(missing)], [], 'named in deploy/ but not exported');
    // And the scrape has real values: the rolling quality of the replay, per window.
    assert.match(text, /^cryptocast_quality_count\{pair="BTC\/USDT",window="7d"\} 346$/m);
  });
});
