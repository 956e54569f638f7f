import { setting } from '../config/env.ts';
import { ERR, fail } from '../core/errors.ts';
import type { SentimentBackend } from './labels.ts';
import { LexiconBackend } from './lexicon.ts';
import { LocalLlmBackend } from './local-llm.ts';
import { OpenAiBackend } from './openai.ts';

export const BACKENDS = ['local', 'openai', 'lexicon'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface BackendFlags {
  /** `local` (embedded default), `openai` or `lexicon`. */
  backend?: string;
  /** local: GGUF file (default CRYPTOCAST_LLM_MODEL, then the installed Gemma 3 270M). */
  modelPath?: string;
  /** local: `classifier` (embedding + trained head, default) or `generate` (the model writes the JSON answer). */
  localMode?: string;
  /** openai: base URL (default CRYPTOCAST_LLM_BASE_URL) and model (default CRYPTOCAST_LLM_MODEL_NAME). */
  baseUrl?: string;
  model?: string;
  timeoutMs?: number;
  /** local: CPU threads (default: CRYPTOCAST_LLM_THREADS, else the usable CPUs up to the math cores); `run` gives it one so the market path keeps a core. */
  threads?: number;
}

/** Builds a backend from flags and the environment; secrets (the API key) only ever come from the environment. */
export function createBackend(flags: BackendFlags): SentimentBackend {
  const name = flags.backend ?? setting('CRYPTOCAST_SENTIMENT_BACKEND') ?? 'local';
  switch (name) {
    case 'lexicon':
      return new LexiconBackend();
    case 'local':
      if (flags.localMode && flags.localMode !== 'classifier' && flags.localMode !== 'generate')
        throw fail(ERR.CONFIG, `unknown local mode "${flags.localMode}": classifier or generate`);
      return new LocalLlmBackend({
        ...(flags.modelPath ? { modelPath: flags.modelPath } : {}),
        ...(flags.localMode ? { mode: flags.localMode as 'classifier' | 'generate' } : {}),
        ...(flags.threads ? { threads: flags.threads } : {}),
      });
    case 'openai': {
      const baseUrl = flags.baseUrl ?? setting('CRYPTOCAST_LLM_BASE_URL');
      const model = flags.model ?? setting('CRYPTOCAST_LLM_MODEL_NAME');
      if (!baseUrl || !model)
        throw fail(
          ERR.CONFIG,
          'the openai backend needs a base URL and a model: --base-url/--model or CRYPTOCAST_LLM_BASE_URL/CRYPTOCAST_LLM_MODEL_NAME',
        );
      return new OpenAiBackend({
        baseUrl,
        model,
        ...(flags.timeoutMs ? { timeoutMs: flags.timeoutMs } : {}),
      });
    }
    default:
      throw fail(ERR.CONFIG, `unknown sentiment backend "${name}": ${BACKENDS.join(', ')}`);
  }
}
