import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { SentimentError } from '../../../src/sentiment/labels.ts';
import { OpenAiBackend } from '../../../src/sentiment/openai.ts';

/**
 * A local server speaking the documented OpenAI chat-completions API (POST /v1/chat/completions, `choices[0].
 * message.content`, 429 with Retry-After, 5xx), scripted per test: each request takes the next step.
 */
interface ChatBody {
  model?: string;
  temperature?: number;
  messages: { role: string; content: string }[];
  response_format: { type: string; json_schema: { schema: { required: string[] } } };
}
type Step = (req: IncomingMessage, body: ChatBody, res: ServerResponse) => void;
const answer =
  (content: string): Step =>
  (_req, body, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(
      JSON.stringify({
        id: 'chatcmpl-1',
        object: 'chat.completion',
        model: body.model,
        choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
      }),
    );
  };
const status =
  (code: number, headers: Record<string, string> = {}): Step =>
  (_req, _body, res) => {
    res.writeHead(code, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify({ error: { message: `status ${code}`, type: 'server_error' } }));
  };
const GOOD = answer('{"label":"positive","score":0.7,"confidence":0.8,"reason":"ETF inflows rise."}');

let server: Server;
let base: string;
let steps: Step[] = [];
const seen: { auth?: string | undefined; body: ChatBody }[] = [];

before(async () => {
  server = createServer((req, res) => {
    let data = '';
    req.on('data', (c) => (data += c));
    req.on('end', () => {
      const body = JSON.parse(data || '{}') as ChatBody;
      seen.push({ auth: req.headers.authorization, body });
      if (req.url !== '/v1/chat/completions') return status(404)(req, body, res);
      (steps.shift() ?? status(500))(req, body, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
after(() => new Promise<void>((r) => server.close(() => r())));

describe('OpenAI-compatible backend against a local server', () => {
  it('sends the prompt with a JSON-schema response format and the key from the environment', async () => {
    process.env.CRYPTOCAST_LLM_API_KEY = 'sk-test-secret';
    try {
      steps = [GOOD];
      seen.length = 0;
      const b = new OpenAiBackend({ baseUrl: base, model: 'qwen2.5:1.5b' });
      const s = await b.score('<b>Bitcoin ETF</b> inflows hit a record');
      assert.deepEqual(s, { label: 'positive', score: 0.7, confidence: 0.8, reason: 'ETF inflows rise.' });
      assert.equal(b.name, 'openai:qwen2.5:1.5b');
      assert.equal(seen[0]!.auth, 'Bearer sk-test-secret');
      const body = seen[0]!.body;
      assert.equal(body.response_format.type, 'json_schema');
      assert.deepEqual(body.response_format.json_schema.schema.required, [
        'label',
        'score',
        'confidence',
        'reason',
      ]);
      assert.equal(body.temperature, 0);
      assert.match(
        body.messages[1]!.content,
        /Bitcoin ETF inflows hit a record/,
        'HTML stripped before sending',
      );
    } finally {
      delete process.env.CRYPTOCAST_LLM_API_KEY;
    }
  });

  it('retries 429 (honouring Retry-After) and 5xx, then succeeds', async () => {
    steps = [status(429, { 'retry-after': '0.05' }), status(503), GOOD];
    const b = new OpenAiBackend({ baseUrl: base, model: 'm', retries: 2 });
    const s = await b.score('ETH up');
    assert.equal(s.label, 'positive');
    assert.equal(b.stats.retries, 2);
  });

  it('does not retry a 4xx; invalid model output is an invalid-output error', async () => {
    steps = [status(400)];
    const b = new OpenAiBackend({ baseUrl: base, model: 'm', retries: 3 });
    await assert.rejects(
      b.score('x y'),
      (e: unknown) => e instanceof SentimentError && /HTTP 400/.test(e.message),
    );
    assert.equal(b.stats.retries, 0);
    steps = [answer('{"label":"positive","score":7,"confidence":0.5,"reason":"r"}')];
    await assert.rejects(
      b.score('x y'),
      (e: unknown) => e instanceof SentimentError && e.kind === 'invalid-output',
    );
    steps = [answer('I think it is positive')];
    await assert.rejects(
      b.score('x y'),
      (e: unknown) => e instanceof SentimentError && e.kind === 'invalid-output',
    );
  });

  it('times out a silent server', async () => {
    steps = [() => {}]; // never answers
    const b = new OpenAiBackend({ baseUrl: base, model: 'm', timeoutMs: 100, retries: 0 });
    const t0 = performance.now();
    await assert.rejects(b.score('x y'), (e: unknown) => e instanceof SentimentError && e.kind === 'timeout');
    // The server never answers: only the 100 ms timeout ends the call (a generous bound: a loaded machine's timers
    // run late, but nowhere near the minutes a hung call would take).
    assert.ok(performance.now() - t0 < 20_000);
  });

  it('opens the circuit after consecutive failures, fails fast, then closes after a good trial call', async (t) => {
    // The cooldown is the subject: the breaker reads Date.now, which a mock clock moves by hand.
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
    const b = new OpenAiBackend({
      baseUrl: base,
      model: 'm',
      retries: 0,
      breakerThreshold: 3,
      breakerCooldownMs: 200,
    });
    steps = [status(500), status(500), status(500)];
    for (let i = 0; i < 3; i++) await assert.rejects(b.score('x y'));
    assert.equal(b.circuit, 'open');
    const before = seen.length;
    await assert.rejects(b.score('x y'), /circuit open/);
    assert.equal(seen.length, before, 'no request while open');
    assert.equal(b.stats.shortCircuited, 1);
    t.mock.timers.tick(199);
    assert.equal(b.circuit, 'open', 'still open 1 ms before the cooldown ends');
    await assert.rejects(b.score('x y'), /circuit open/);
    t.mock.timers.tick(1);
    assert.equal(b.circuit, 'half-open');
    steps = [GOOD];
    assert.equal((await b.score('x y')).label, 'positive');
    assert.equal(b.circuit, 'closed');
  });

  it('an unreachable server is "unavailable" and the key never shows in errors', async () => {
    const b = new OpenAiBackend({
      baseUrl: 'http://127.0.0.1:1/v1',
      model: 'm',
      retries: 0,
      apiKey: 'sk-secret-123',
    });
    await assert.rejects(
      b.score('x y'),
      (e: unknown) =>
        e instanceof SentimentError && e.kind === 'unavailable' && !String(e.message).includes('sk-secret'),
    );
    assert.throws(() => new OpenAiBackend({ baseUrl: 'ftp://x', model: 'm' }), /not an http/);
  });
});
