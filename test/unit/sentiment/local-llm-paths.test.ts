import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LocalLlmBackend } from '../../../src/sentiment/local-llm.ts';

describe('local backend: a --model-path that does not exist', () => {
  it('says the weights are missing (not their classifier head), before loading anything', () => {
    assert.throws(
      () => new LocalLlmBackend({ modelPath: '/nonexistent/model.gguf' }),
      (e: Error) =>
        /LLM weights not found at \/nonexistent\/model\.gguf/.test(e.message) && !/head/.test(e.message),
    );
  });
});
