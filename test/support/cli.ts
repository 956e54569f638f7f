import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { waitFor } from './wait.ts';

/** Runs `bin/cryptocast` as a user would: its own process, the project's Node. */
export const CLI = join(import.meta.dirname, '..', '..', 'bin', 'cryptocast');

export interface CliRun {
  child: ChildProcess;
  /** Every JSON line the command printed on stdout so far. */
  events: Record<string, unknown>[];
  stderr(): string;
  /** Resolves with the exit code (or the signal's name) when the process ends. */
  exited: Promise<number | string>;
  /** Resolves with the first event that satisfies `pred` (rejects if the process ends first or after `ms`). */
  waitFor(pred: (e: Record<string, unknown>) => boolean, ms?: number): Promise<Record<string, unknown>>;
}

export function runCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): CliRun {
  const child = spawn(CLI, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const events: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  let err = '';
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i = buf.indexOf('\n');
    while (i >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (line.startsWith('{')) events.push(JSON.parse(line) as Record<string, unknown>);
      i = buf.indexOf('\n');
    }
    for (const w of waiters) w();
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => {
      for (const w of waiters) w();
      resolve(code ?? signal ?? -1);
    }),
  );
  let ended = false;
  void exited.then(() => {
    ended = true;
    for (const w of waiters) w();
  });
  return {
    child,
    events,
    stderr: () => err,
    exited,
    waitFor(pred, ms = 120_000) {
      return new Promise((resolve, reject) => {
        const deadline = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching event within ${ms} ms; stderr:\n${err.slice(-2000)}`));
        }, ms);
        const check = () => {
          const hit = events.find(pred);
          if (hit !== undefined || ended) {
            clearTimeout(deadline);
            waiters.delete(check);
            if (hit !== undefined) resolve(hit);
            else
              reject(new Error(`the command ended without a matching event; stderr:\n${err.slice(-2000)}`));
          }
        };
        waiters.add(check);
        check();
      });
    },
  };
}

/**
 * The exit code (or signal) of `run` once it ends, awaited with a deadline: a process still running after `ms` is
 * killed and the wait fails, naming `what` and the end of its stderr.
 */
export async function exitedWithin(run: CliRun, ms: number, what: string): Promise<number | string> {
  try {
    await waitFor(
      what,
      () => run.child.exitCode ?? run.child.signalCode,
      (c) => c !== null,
      {
        timeoutMs: ms,
        everyMs: 50,
      },
    );
  } catch (err) {
    run.child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n${run.stderr().slice(-1500)}`);
  }
  return run.exited;
}

/**
 * `cryptocast run --source live` as the live-run tests start it: JSON events, the API on any free port, no news, one
 * exchange (Kraken) at a local server, `pairs` on a DuckDB store at `file`; `flags` after those, `env` over them.
 */
export function liveRunOnKraken(
  kraken: { wsUrl: string; restUrl: string },
  opts: { pairs: string; file: string; flags?: readonly string[]; env?: NodeJS.ProcessEnv },
): CliRun {
  return runCli(
    [
      ...['run', '--json', '--port', '0', '--no-news', '--source', 'live'],
      ...['--pairs', opts.pairs, '--store', `duckdb:${opts.file}`],
      ...(opts.flags ?? []),
    ],
    {
      CRYPTOCAST_EXCHANGES: 'kraken',
      CRYPTOCAST_KRAKEN_WS_URL: kraken.wsUrl,
      CRYPTOCAST_KRAKEN_REST_URL: kraken.restUrl,
      ...opts.env,
    },
  );
}
