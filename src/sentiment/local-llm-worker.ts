/**
 * The local model's process: `LocalLlmBackend` forks this file and runs every model call here, so a native call that
 * never returns wedges this process only, which the backend kills (SIGKILL ends any native call) and forks again.
 * Run in the backend's process, such a call kept its queue for ever, and disposing the context under it crashed the
 * process (SIGSEGV).
 *
 * The protocol (IPC messages, structured clone): the parent sends one `load`, then `embed`/`generate` calls with an id,
 * `abort` for a call whose deadline passed; this process answers `loaded`/`load-failed` and `result`/`error` by id.
 */
import type { LlamaChatSession, LlamaEmbeddingContext, LlamaGrammar } from 'node-llama-cpp';
import { loadModel, modelThreads } from './local-llm.ts';
import { startWatchdog } from './local-llm-watchdog.ts';
import { SENTIMENT_JSON_SCHEMA, SYSTEM_PROMPT, userPrompt } from './prompt.ts';

/**
 * How often the watchdog looks for the backend's process (`local-llm-watchdog.ts`): an orphaned, wedged model process
 * lives at most this long. One getppid a second costs nothing measurable.
 */
const WATCHDOG_EVERY_MS = 1_000;

export type WorkerRequest =
  | { op: 'load'; path: string; mode: 'classifier' | 'generate'; threads: number | undefined }
  /** `hang`: the test hook of `LocalLlmBackend.hangNextCallForTest` (this process blocks for ever, as a wedged native call). */
  | { op: 'embed'; id: number; text: string; hang?: boolean }
  | { op: 'generate'; id: number; text: string; maxTokens: number; hang?: boolean }
  | { op: 'abort'; id: number };

export type WorkerReply =
  | { op: 'loaded'; threads: number }
  | { op: 'load-failed'; message: string }
  | { op: 'result'; id: number; vector: Float64Array }
  | { op: 'result'; id: number; raw: string }
  | { op: 'error'; id: number; message: string };

interface Runtime {
  session?: LlamaChatSession;
  grammar?: LlamaGrammar;
  embedder?: LlamaEmbeddingContext;
}

let runtime: Runtime | undefined;
const aborts = new Map<number, AbortController>();

const send = (reply: WorkerReply) => process.send!(reply);

async function load(req: Extract<WorkerRequest, { op: 'load' }>): Promise<void> {
  try {
    const { model, llama } = await loadModel(req.path);
    // At most the math cores: llama.cpp's default (all logical CPUs, 4 here) makes its threads spin against each
    // other, ~80× slower per token on this 2-core machine (measured: 2.4 s vs 32 ms). And at most the CPUs the
    // process may use (a pod's limit): more threads than that only wait for the CFS quota.
    const threads = req.threads ?? modelThreads(llama.cpuMathCores);
    if (req.mode === 'generate') {
      const context = await model.createContext({ contextSize: 2048, threads });
      const { LlamaChatSession } = await import('node-llama-cpp');
      const session = new LlamaChatSession({
        contextSequence: context.getSequence(),
        systemPrompt: SYSTEM_PROMPT,
      });
      const grammar = await llama.createGrammarForJsonSchema(SENTIMENT_JSON_SCHEMA as never);
      runtime = { session, grammar };
    } else {
      runtime = { embedder: await model.createEmbeddingContext({ contextSize: 512, threads }) };
    }
    send({ op: 'loaded', threads });
  } catch (err) {
    send({ op: 'load-failed', message: (err as Error).message });
  }
}

async function call(req: Extract<WorkerRequest, { op: 'embed' | 'generate' }>): Promise<void> {
  if (req.hang) {
    // Said first (a pipe's write is synchronous here), so a test knows the thread is blocked, not about to be.
    process.stderr.write(`the local model's process ${process.pid} blocks for ever (test hook)\n`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); // never notified: blocks for ever
  }
  const abort = new AbortController();
  aborts.set(req.id, abort);
  try {
    if (!runtime) throw new Error('the model is not loaded');
    if (req.op === 'embed') {
      if (!runtime.embedder) throw new Error('embeddings are only computed in classifier mode');
      const { vector } = await runtime.embedder.getEmbeddingFor(req.text);
      send({ op: 'result', id: req.id, vector: Float64Array.from(vector) });
    } else {
      const { session, grammar } = runtime;
      if (!session || !grammar) throw new Error('answers are only generated in generate mode');
      session.resetChatHistory();
      const raw = await session.prompt(userPrompt(req.text), {
        grammar,
        maxTokens: req.maxTokens,
        temperature: 0,
        signal: abort.signal,
      });
      send({ op: 'result', id: req.id, raw });
    }
  } catch (err) {
    send({ op: 'error', id: req.id, message: (err as Error).message });
  } finally {
    aborts.delete(req.id);
  }
}

process.on('message', (req: WorkerRequest) => {
  if (req.op === 'load') void load(req);
  else if (req.op === 'abort') aborts.get(req.id)?.abort();
  else void call(req);
});
// The backend's process is gone (or closed the channel): nothing is left to answer.
process.on('disconnect', () => process.exit(0));
// The same when this thread is held by a call that never returns, where 'disconnect' is never run: a thread of its own
// sees the backend's process (its id given as the first argument; else the parent at the start) gone, and kills this
// one. Without a valid id, NaN was never the parent, and the watchdog killed the process at its first look.
const backendPid = Number.parseInt(process.argv[2] ?? '', 10);
startWatchdog(Number.isInteger(backendPid) && backendPid > 0 ? backendPid : process.ppid, WATCHDOG_EVERY_MS);
