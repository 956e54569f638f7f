import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApiOptions } from './options.ts';
import { refuse } from './reply.ts';

/** Token buckets by key: `rate` tokens a second, at most `burst`. */
export class TokenBuckets {
  private readonly rate: number;
  private readonly burst: number;
  private readonly tokens = new Map<string, { n: number; at: number }>();
  constructor(ratePerSecond: number, burst: number) {
    this.rate = ratePerSecond / 1000;
    this.burst = burst;
  }
  /** 0 when a token was taken, else the milliseconds until one is available. */
  take(key: string, now: number): number {
    let b = this.tokens.get(key);
    if (b === undefined) {
      // Bounded memory: forget the oldest bucket (a full bucket is the same as none).
      if (this.tokens.size >= 100_000) this.tokens.delete(this.tokens.keys().next().value!);
      b = { n: this.burst, at: now };
      this.tokens.set(key, b);
    } else {
      b.n = Math.min(this.burst, b.n + (now - b.at) * this.rate);
      b.at = now;
    }
    if (b.n >= 1) {
      b.n -= 1;
      return 0;
    }
    return Math.ceil((1 - b.n) / this.rate);
  }
}

/**
 * The key of each WebSocket upgrade that passed the check, as a charge of one more token to its bucket: a WebSocket
 * takes a token at the upgrade, and then each replay that reads the store takes one (ws.ts). By the raw request,
 * which the upgrade hands over to the WebSocket handler.
 */
const upgradeCharges = new WeakMap<object, () => number>();

/**
 * Charges one token to the API key `req` (an upgrade) was let in with: 0 when a token was taken, else the
 * milliseconds until one is available. Undefined without API keys (nothing to charge).
 */
export function keyCharge(req: FastifyRequest): (() => number) | undefined {
  return upgradeCharges.get(req.raw);
}

const retryAfter = (reply: FastifyReply, waitMs: number) =>
  reply.header('retry-after', String(Math.max(1, Math.ceil(waitMs / 1000))));

/**
 * API keys (when configured): every route not marked `config.public` needs a valid `x-api-key`, and each key has a
 * token bucket (429 + Retry-After when empty). Wrong or missing keys are rate-limited per client address too, so a
 * client guessing keys is slowed down to `failedAuthPerMinute` (429 + Retry-After), never answered at full speed.
 * The client address is `req.ip`: the peer's, or, with `trustProxy`, the one the trusted proxies forwarded.
 * A WebSocket's store reads after the upgrade are charged to its key's bucket too (`keyCharge`).
 */
export function registerAuth(app: FastifyInstance, o: ApiOptions, now: () => number = Date.now): void {
  const keys = new Set(o.apiKeys ?? []);
  if (keys.size === 0) return;
  const perKey = new TokenBuckets(o.ratePerSecond ?? 50, o.burst ?? 100);
  const failures = new TokenBuckets((o.failedAuthPerMinute ?? 10) / 60, o.failedAuthBurst ?? 20);
  app.addHook('onRequest', (req: FastifyRequest, reply: FastifyReply, done: () => void) => {
    if ((req.routeOptions.config as { public?: boolean }).public === true) return done();
    const key = req.headers['x-api-key'];
    if (typeof key !== 'string' || !keys.has(key)) {
      const wait = failures.take(req.ip, now());
      if (wait > 0) {
        retryAfter(reply, wait);
        refuse(req, reply, 429, 'too many failed authentications from this address', 'auth_rate_limited');
        return;
      }
      refuse(req, reply, 401, 'a valid x-api-key header is required');
      return;
    }
    const wait = perKey.take(key, now());
    if (wait > 0) {
      retryAfter(reply, wait);
      refuse(req, reply, 429, 'rate limit exceeded for this API key', 'rate_limited');
      return;
    }
    if (req.headers.upgrade !== undefined) upgradeCharges.set(req.raw, () => perKey.take(key, now()));
    done();
  });
}
