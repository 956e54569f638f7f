import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LlamaChatSession, LlamaGrammar } from 'node-llama-cpp';
import { loadModel, modelName } from '../../src/sentiment/local-llm.ts';

/**
 * A real OpenAI-compatible chat-completions server on 127.0.0.1 backed by a real model (the local GGUF, run by
 * node-llama-cpp): `POST /v1/chat/completions` with `messages` and `response_format.json_schema`, answered in the
 * documented shape. No llama.cpp server binary can be installed from the registries here, so the tests bring this
 * one: the HTTP backend is exercised against real model output, not canned strings.
 */
/** The part of the chat-completions request body this server reads. */
export interface ChatRequest {
  model?: string;
  messages: { role: string; content: string }[];
  max_tokens?: number;
  temperature?: number;
  response_format?: { type: string; json_schema?: { schema?: object } };
}

export async function startOpenAiLlmServer(
  modelPath: string,
  o: { threads?: number } = {},
): Promise<{ url: string; model: string; close(): Promise<void> }> {
  const { llama, model } = await loadModel(modelPath);
  const { LlamaChatSession } = await import('node-llama-cpp');
  const context = await model.createContext({ contextSize: 2048, threads: o.threads ?? llama.cpuMathCores });
  const sequence = context.getSequence();
  const grammars = new Map<string, LlamaGrammar>();
  let queue: Promise<unknown> = Promise.resolve();
  const name = modelName(modelPath);

  const complete = async (body: ChatRequest): Promise<string> => {
    const system = body.messages.find((m) => m.role === 'system')?.content;
    const user = body.messages.filter((m) => m.role === 'user').at(-1)?.content ?? '';
    const session: LlamaChatSession = new LlamaChatSession({
      contextSequence: sequence,
      systemPrompt: system,
    });
    try {
      const schema = body.response_format?.json_schema?.schema;
      let grammar: LlamaGrammar | undefined;
      if (schema) {
        const key = JSON.stringify(schema);
        grammar = grammars.get(key) ?? (await llama.createGrammarForJsonSchema(schema as never));
        grammars.set(key, grammar);
      }
      return await session.prompt(user, {
        ...(grammar ? { grammar } : {}),
        maxTokens: Math.min(Number(body.max_tokens) || 128, 256),
        temperature: Number(body.temperature) || 0,
      });
    } finally {
      session.dispose({ disposeSequence: false });
      await sequence.clearHistory();
    }
  };

  const server: Server = createServer((req, res) => {
    let data = '';
    req.on('data', (c) => (data += c));
    req.on('end', () => {
      const send = (code: number, obj: unknown) => {
        res.writeHead(code, { 'content-type': 'application/json' });
        res.end(JSON.stringify(obj));
      };
      if (req.method !== 'POST' || req.url !== '/v1/chat/completions')
        return send(404, { error: { message: 'not found', type: 'invalid_request_error' } });
      let body: ChatRequest;
      try {
        body = JSON.parse(data);
        if (!Array.isArray(body.messages)) throw new Error('messages must be an array');
      } catch (err) {
        return send(400, { error: { message: (err as Error).message, type: 'invalid_request_error' } });
      }
      const run = queue.then(() => complete(body));
      queue = run.catch(() => {});
      run.then(
        (content) =>
          send(200, {
            id: `chatcmpl-${Date.now()}`,
            object: 'chat.completion',
            created: Math.floor(Date.now() / 1000),
            model: body.model ?? name,
            choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
          }),
        (err) => send(500, { error: { message: String(err), type: 'server_error' } }),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    model: name,
    close: async () => {
      await new Promise<void>((r) => server.close(() => r()));
      await context.dispose();
    },
  };
}
