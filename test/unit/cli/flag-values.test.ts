import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { trainerService } from '../../../src/cli/commands/trainer.ts';
import { ERR } from '../../../src/core/errors.ts';
import { CLI } from '../../support/cli.ts';
import { parseCommandLine } from '../../support/cli-in-process.ts';
import { coded } from '../../support/errors.ts';

const exec = promisify(execFile);

/** The placeholders of flags whose value is a number, a duration or a port (src/cli/flags.ts checks them). */
const TYPED = /^<(n|x|p|g|s|duration|port|factor\|max)>$/;

/** The binary itself, in its own process: its exit status and stderr. */
async function spawned(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stderr: string }> {
  try {
    await exec(CLI, args, { env: { ...process.env, ...env }, timeout: 60_000 });
    return { code: 0, stderr: '' };
  } catch (err) {
    const e = err as { code?: number; stderr?: string; killed?: boolean };
    assert.ok(!e.killed, `cryptocast ${args.join(' ')} still ran after 60 s`);
    return { code: e.code ?? -1, stderr: e.stderr ?? '' };
  }
}

/**
 * The same command line parsed in this process by the binary's own program (test/support/cli-in-process.ts): the
 * status it would end with (`started`: no refusal, a command would start) and its stderr. The sweeps over every flag
 * run this way (70 typed flags and the help of 38 commands, four times: 84 s spawning the binary); the cases that
 * spawn it prove each kind of answer in a process of its own, and that both ways print the same.
 */
async function cli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | 'started'; stderr: string }> {
  const { status, stderr } = await parseCommandLine(args, env);
  return { code: status, stderr };
}

type Flag = { path: string[]; flag: string; arg: string };

/** Every command path (`['service', 'api']`) and its flags with a value, from the help the user reads. */
async function commandsAndFlags(path: string[] = []): Promise<Flag[]> {
  const { status, stdout } = await parseCommandLine([...path, '--help']);
  assert.equal(status, 0, `cryptocast ${path.join(' ')} --help`);
  const [options = '', commands] = (stdout.split('Options:')[1] ?? '').split('Commands:');
  const found = [...options.matchAll(/^ {2}(?:-\w, )?(--[\w-]+) (<[^>]+>)/gm)].map((m) => ({
    path,
    flag: m[1]!,
    arg: m[2]!,
  }));
  const subs = commands === undefined ? [] : [...commands.matchAll(/^ {2}([\w-]+)/gm)].map((m) => m[1]!);
  for (const sub of subs.filter((s) => s !== 'help')) found.push(...(await commandsAndFlags([...path, sub])));
  return found;
}

/** Runs `fn` over `items`, one at a time (an in-process parse sets process.env and uses the one program). */
async function each<T>(items: T[], fn: (item: T) => Promise<void>): Promise<void> {
  for (const item of items) await fn(item);
}

let everyFlag: Flag[] = [];
before(async () => {
  everyFlag = await commandsAndFlags();
});

describe('a malformed flag value: one rule for every flag of every command', () => {
  it('CC_ERR_USAGE, exit 2, the message naming the flag, before the command starts', async () => {
    const flags = everyFlag.filter((f) => TYPED.test(f.arg));
    // run, the services, data fetch, topics, dlq, sentiment, evaluate, train, backtest: dozens, not a handful.
    assert.ok(flags.length > 50, `only ${flags.length} typed flags found in the help`);
    const wrong: string[] = [];
    await each(flags, async ({ path, flag }) => {
      // Refused as the flags are read: no command starts (`started` is wrong as any other answer).
      const args = [...path, flag, 'soon'];
      const { code, stderr } = await cli(args);
      const firstLine = stderr.split('\n')[0] ?? '';
      if (code !== 2 || !firstLine.endsWith('[CC_ERR_USAGE]') || !firstLine.includes(flag))
        wrong.push(`cryptocast ${args.join(' ')}: exit ${code}, ${firstLine}`);
    });
    assert.deepEqual(wrong, []);
  });

  // `--speed Infinity` (and 1e400) passed the check and was refused only once the command ran; 400 digits passed as a
  // whole number (`--days`, `--folds`: Infinity) and, with a unit, as a duration of Infinity milliseconds.
  it('a number JavaScript cannot hold (Infinity, NaN, 1e400, 400 digits) is refused the same way, by every typed flag', async () => {
    const flags = everyFlag.filter((f) => TYPED.test(f.arg));
    const huge = `1${'0'.repeat(400)}`;
    const wrong: string[] = [];
    await each(flags, async ({ path, flag }) => {
      for (const value of ['Infinity', '-Infinity', 'NaN', '1e400', huge, `${huge}s`]) {
        const args = [...path, flag, value];
        const { code, stderr } = await cli(args);
        const firstLine = stderr.split('\n')[0] ?? '';
        if (code !== 2 || !firstLine.endsWith('[CC_ERR_USAGE]') || !firstLine.includes(flag))
          wrong.push(`cryptocast ${args.join(' ').slice(0, 120)}: exit ${code}, ${firstLine.slice(0, 200)}`);
      }
    });
    assert.deepEqual(wrong, []);
  });

  it('--bus of every command: a URL no transport reads is refused the same way (it was CC_ERR_CONFIG)', async () => {
    const buses = everyFlag.filter((f) => f.flag === '--bus');
    assert.ok(buses.length >= 10, `only ${buses.length} commands with --bus`);
    const wrong: string[] = [];
    await each(buses, async ({ path }) => {
      for (const url of ['foo', 'kafka://localhost:abc']) {
        const args = [...path, '--bus', url];
        const { code, stderr } = await cli(args);
        const firstLine = stderr.split('\n')[0] ?? '';
        if (code !== 2 || !firstLine.endsWith('[CC_ERR_USAGE]') || !firstLine.includes("'--bus <url>'"))
          wrong.push(`cryptocast ${args.join(' ')}: exit ${code}, ${firstLine}`);
      }
      // And what a transport reads is taken (the flags are read, then the help shown).
      const ok = await cli([...path, '--bus', 'kafka://127.0.0.1:9,other-host', '--help']);
      if (ok.code !== 0) wrong.push(`cryptocast ${path.join(' ')} --bus kafka://… --help: exit ${ok.code}`);
    });
    assert.deepEqual(wrong, []);
  });

  it('the http(s) URLs (--feeds, --base-url, --opensearch-url) of every command: refused the same way, before anything starts', async () => {
    const urlFlags = everyFlag.filter((f) => ['--feeds', '--base-url', '--opensearch-url'].includes(f.flag));
    assert.ok(urlFlags.length >= 8, `only ${urlFlags.length} URL flags found`);
    const wrong: string[] = [];
    await each(urlFlags, async ({ path, flag }) => {
      // A list of feeds is refused for one bad member; `service news` crashed on it with a TypeError and its stack.
      const bad = flag === '--feeds' ? 'https://news.example/rss,notaurl' : 'notaurl';
      const { code, stderr } = await cli([...path, flag, bad]);
      const firstLine = stderr.split('\n')[0] ?? '';
      if (code !== 2 || !firstLine.endsWith('[CC_ERR_USAGE]') || !firstLine.includes(`'${flag} <`))
        wrong.push(`cryptocast ${[...path, flag, bad].join(' ')}: exit ${code}, ${firstLine}`);
      // What is well formed is taken (the flags are read, then the help shown): a list of two feeds, one URL.
      const good = flag === '--feeds' ? 'http://127.0.0.1:9/x,https://h.example/' : 'https://h.example/v1';
      const one = await cli([...path, flag, good, '--help']);
      if (one.code !== 0) wrong.push(`cryptocast ${path.join(' ')} ${flag} ${good} --help: exit ${one.code}`);
    });
    assert.deepEqual(wrong, []);
    // From the variable, by the binary: CC_ERR_CONFIG, exit 2.
    const fromEnv = await spawned(['service', 'news', '--bus', 'memory'], { CRYPTOCAST_NEWS_FEEDS: 'nope' });
    assert.equal(fromEnv.code, 2, fromEnv.stderr);
    assert.match(
      fromEnv.stderr,
      /^cryptocast: option '--feeds <urls>' value 'nope' from env 'CRYPTOCAST_NEWS_FEEDS' is invalid\. .*\[CC_ERR_CONFIG\]\n/,
    );
  });

  it('a well-formed value of each of those flags is taken (the command reads its flags, then shows its help)', async () => {
    const valid: Record<string, string> = {
      '<duration>': '90s',
      '<n>': '3',
      '<x>': '1.5',
      '<p>': '0.05',
      '<g>': '0.01',
      '<s>': '10',
      '<port>': '0',
    };
    const byFlag: Record<string, string> = { '--speed': '60', '--period': 'daily' };
    const flags = everyFlag.filter((f) => TYPED.test(f.arg));
    const wrong: string[] = [];
    await each(flags, async ({ path, flag, arg }) => {
      const args = [...path, flag, byFlag[flag] ?? valid[arg]!, '--help'];
      const { code, stderr } = await cli(args);
      if (code !== 0) wrong.push(`cryptocast ${args.join(' ')}: exit ${code}, ${stderr.split('\n')[0]}`);
    });
    assert.deepEqual(wrong, []);
    // And by the binary: status 0.
    const binary = await spawned(['service', 'trainer', '--days', '30', '--tune-seconds', '10', '--help']);
    assert.equal(binary.code, 0, binary.stderr);
  });

  it('the two of the report: --news-max-lag soon and --speed fast, the same code and form (the binary, as parsed in-process)', async () => {
    for (const [flag, value] of [
      ['--news-max-lag', 'soon'],
      ['--speed', 'fast'],
    ] as const) {
      const { code, stderr } = await spawned(['run', flag, value]);
      assert.equal(code, 2, stderr);
      assert.deepEqual(await cli(['run', flag, value]), { code, stderr });
      assert.match(
        stderr,
        new RegExp(
          `^cryptocast: option '${flag} <[^>]+>' argument '${value}' is invalid\\. .* \\[CC_ERR_USAGE\\]\\n`,
        ),
      );
    }
  });

  it('the same value from the variable a flag falls back to: CC_ERR_CONFIG, naming the variable (the binary, as parsed in-process)', async () => {
    for (const [args, variable] of [
      [['run'], 'CRYPTOCAST_GRACE'],
      [['service', 'monitor'], 'CRYPTOCAST_METRICS_PORT'],
      [['candles', '--input', 'x', '--output', 'y'], 'CRYPTOCAST_MAX_PRICE_FACTOR'],
    ] as const) {
      const { code, stderr } = await spawned([...args], { [variable]: 'soon' });
      assert.equal(code, 2, stderr);
      assert.deepEqual(await cli([...args], { [variable]: 'soon' }), { code, stderr });
      assert.match(
        stderr,
        new RegExp(
          `^cryptocast: option .* value 'soon' from env '${variable}' is invalid\\. .*\\[CC_ERR_CONFIG\\]\\n`,
        ),
      );
    }
  });

  it('a stream setting out of the range src/config/config.ts allows, given as the flag: CC_ERR_USAGE naming the flag; from its variable: CC_ERR_CONFIG naming the variable (it was CC_ERR_CONFIG both ways)', async () => {
    // Well formed for the flag's first check, refused by the stream config's schema (loadStreamConfig) after it.
    const outOfRange: Record<string, { variable: string; values: string[] }> = {
      '--max-price-factor': {
        variable: 'CRYPTOCAST_MAX_PRICE_FACTOR',
        values: ['Infinity', '1e400', '1', '0.5'],
      },
      '--bus': { variable: 'CRYPTOCAST_BUS', values: ['kafka://127.0.0.1:9/', 'kafka://a b:9'] },
    };
    const flags = everyFlag.filter((f) => f.flag in outOfRange);
    assert.ok(flags.length >= 15, `only ${flags.length} commands with --max-price-factor or --bus`);
    const wrong: string[] = [];
    await each(flags, async ({ path, flag }) => {
      const { variable, values } = outOfRange[flag]!;
      for (const value of values) {
        const fromFlag = await cli([...path, flag, value]);
        const line = fromFlag.stderr.split('\n')[0] ?? '';
        if (fromFlag.code !== 2 || !line.endsWith('[CC_ERR_USAGE]') || !line.includes(`'${flag} <`))
          wrong.push(`cryptocast ${[...path, flag, value].join(' ')}: exit ${fromFlag.code}, ${line}`);
        const fromEnv = await cli([...path], { [variable]: value });
        const envLine = fromEnv.stderr.split('\n')[0] ?? '';
        if (fromEnv.code !== 2 || !envLine.endsWith('[CC_ERR_CONFIG]') || !envLine.includes(`'${variable}'`))
          wrong.push(`${variable}=${value} cryptocast ${path.join(' ')}: exit ${fromEnv.code}, ${envLine}`);
      }
    });
    assert.deepEqual(wrong, []);
    // And by the binary, before anything starts.
    const binary = await spawned(['run', '--max-price-factor', 'Infinity']);
    assert.equal(binary.code, 2, binary.stderr);
    assert.match(
      binary.stderr,
      /^cryptocast: option '--max-price-factor <x>' argument 'Infinity' is invalid\. .*\[CC_ERR_USAGE\]\n/,
    );
  });

  it('--days (train --store, service trainer): a whole number of days ≥ 1, as the chart’s trainer.days; else CC_ERR_USAGE naming the flag (1.5 was taken)', async () => {
    const flags = everyFlag.filter((f) => f.flag === '--days');
    assert.deepEqual(flags.map((f) => f.path.join(' ')).sort(), ['service trainer', 'train']);
    const wrong: string[] = [];
    await each(flags, async ({ path }) => {
      for (const value of ['1.5', '0.5', '0', '1e3', '-1']) {
        const args = [...path, '--days', value];
        const { code, stderr } = await cli(args);
        const line = stderr.split('\n')[0] ?? '';
        if (code !== 2 || !line.endsWith('[CC_ERR_USAGE]') || !line.includes("'--days <n>'"))
          wrong.push(`cryptocast ${args.join(' ')}: exit ${code}, ${line}`);
      }
      // A whole number is taken.
      const { code } = await cli([...path, '--days', '30', '--help']);
      if (code !== 0) wrong.push(`cryptocast ${path.join(' ')} --days 30 --help: exit ${code}`);
    });
    assert.deepEqual(wrong, []);
    // The trainer built in code refuses it too (the flag's default, 365, goes the same way), before its store opens.
    for (const days of ['1.5', '0'])
      await assert.rejects(
        trainerService({ store: 'duckdb:/dev/null/cc.duckdb', days, once: true }),
        coded(ERR.USAGE, /^--days must be a whole number ≥ 1/),
      );
    // And by the binary, before the trainer opens its store.
    const binary = await spawned([
      'service',
      'trainer',
      '--store',
      'duckdb:/dev/null/cc.duckdb',
      '--days',
      '1.5',
    ]);
    assert.equal(binary.code, 2, binary.stderr);
    assert.match(
      binary.stderr,
      /^cryptocast: option '--days <n>' argument '1\.5' is invalid\. .*\[CC_ERR_USAGE\]\n/,
    );
  });

  it('topics create --replication-factor 0: CC_ERR_USAGE naming the flag; CRYPTOCAST_KAFKA_REPLICATION_FACTOR=0: CC_ERR_CONFIG naming the variable (it was CC_ERR_USAGE naming the flag)', async () => {
    const args = ['topics', 'create', '--bus', 'kafka://127.0.0.1:9'];
    const fromFlag = await cli([...args, '--replication-factor', '0']);
    assert.equal(fromFlag.code, 2, fromFlag.stderr);
    assert.match(
      fromFlag.stderr,
      /^cryptocast: option '--replication-factor <n>' argument '0' is invalid\. .*\[CC_ERR_USAGE\]\n/,
    );
    const fromEnv = await cli(args, { CRYPTOCAST_KAFKA_REPLICATION_FACTOR: '0' });
    assert.equal(fromEnv.code, 2, fromEnv.stderr);
    assert.match(
      fromEnv.stderr,
      /^cryptocast: option '--replication-factor <n>' value '0' from env 'CRYPTOCAST_KAFKA_REPLICATION_FACTOR' is invalid\. .*\[CC_ERR_CONFIG\]\n/,
    );
  });

  it('service index-sink --index-prefix: one OpenSearch does not take is CC_ERR_USAGE naming the flag; from CRYPTOCAST_INDEX_PREFIX CC_ERR_CONFIG naming the variable (it was CC_ERR_USAGE naming the flag)', async () => {
    const args = ['service', 'index-sink', '--bus', 'memory', '--opensearch-url', 'http://127.0.0.1:9'];
    for (const bad of ['Bad Prefix', 'Upper-', '-dash', '_x']) {
      const fromFlag = await cli([...args, '--index-prefix', bad]);
      assert.equal(fromFlag.code, 2, fromFlag.stderr);
      assert.match(
        fromFlag.stderr,
        /^cryptocast: option '--index-prefix <prefix>' argument .* is invalid\. .*\[CC_ERR_USAGE\]\n/,
      );
      const fromEnv = await cli(args, { CRYPTOCAST_INDEX_PREFIX: bad });
      assert.equal(fromEnv.code, 2, fromEnv.stderr);
      assert.match(
        fromEnv.stderr,
        /^cryptocast: option '--index-prefix <prefix>' value .* from env 'CRYPTOCAST_INDEX_PREFIX' is invalid\. .*\[CC_ERR_CONFIG\]\n/,
      );
    }
    for (const good of ['cryptocast-', 'prod.cc_1-'])
      assert.equal((await cli([...args, '--index-prefix', good])).code, 'started', good);
  });

  it('service index-sink --opensearch-url with credentials: CC_ERR_USAGE naming the flag; from CRYPTOCAST_OPENSEARCH_URL CC_ERR_CONFIG naming the variable, the password not quoted (it was CC_ERR_USAGE naming the flag)', async () => {
    const args = ['service', 'index-sink', '--bus', 'memory'];
    const password = 'Os-pass-of-test';
    for (const url of ['http://ops@127.0.0.1:9', `https://ops:${password}@127.0.0.1:9`]) {
      const fromFlag = await cli([...args, '--opensearch-url', url]);
      assert.equal(fromFlag.code, 2, fromFlag.stderr);
      assert.match(
        fromFlag.stderr,
        /^cryptocast: option '--opensearch-url <url>' argument .* is invalid\. .*credentials.*\[CC_ERR_USAGE\]\n/,
      );
      const fromEnv = await cli(args, { CRYPTOCAST_OPENSEARCH_URL: url });
      assert.equal(fromEnv.code, 2, fromEnv.stderr);
      assert.match(
        fromEnv.stderr,
        /^cryptocast: option '--opensearch-url <url>' value .* from env 'CRYPTOCAST_OPENSEARCH_URL' is invalid\. .*credentials.*\[CC_ERR_CONFIG\]\n/,
      );
      for (const { stderr } of [fromFlag, fromEnv]) assert.ok(!stderr.includes(password), stderr);
    }
  });

  it('--name (a registered model) the registry cannot take: CC_ERR_USAGE naming the flag; from CRYPTOCAST_MODEL_NAME CC_ERR_CONFIG naming the variable (it was CC_ERR_REGISTRY, exit 1: a component failing)', async () => {
    const flags = everyFlag.filter((f) => f.flag === '--name');
    // train, backtest, models list|show|promote|rollback; service trainer, predictor, api, monitor.
    assert.ok(flags.length >= 10, `only ${flags.length} commands with --name`);
    const wrong: string[] = [];
    await each(flags, async ({ path }) => {
      for (const bad of ['../x', 'a b', '-x', 'x'.repeat(101)]) {
        const fromFlag = await cli([...path, '--name', bad]);
        const line = fromFlag.stderr.split('\n')[0] ?? '';
        if (fromFlag.code !== 2 || !line.endsWith('[CC_ERR_USAGE]') || !line.includes("'--name <name>'"))
          wrong.push(`cryptocast ${[...path, '--name', bad].join(' ')}: exit ${fromFlag.code}, ${line}`);
        const fromEnv = await cli([...path], { CRYPTOCAST_MODEL_NAME: bad });
        const envLine = fromEnv.stderr.split('\n')[0] ?? '';
        if (
          fromEnv.code !== 2 ||
          !envLine.endsWith('[CC_ERR_CONFIG]') ||
          !envLine.includes("'CRYPTOCAST_MODEL_NAME'")
        )
          wrong.push(
            `CRYPTOCAST_MODEL_NAME=${bad} cryptocast ${path.join(' ')}: exit ${fromEnv.code}, ${envLine}`,
          );
      }
      const { code } = await cli([...path, '--name', 'news-research.v2_1', '--help']);
      if (code !== 0)
        wrong.push(`cryptocast ${path.join(' ')} --name news-research.v2_1 --help: exit ${code}`);
    });
    assert.deepEqual(wrong, []);
  });
});
