import { secret, setting } from '../../config/env.ts';
import { log } from '../../core/log.ts';
import { type Backoff, backoffDelay, parseRetryAfter } from '../../core/retry.ts';
import { RegistryError } from './registry.ts';

/**
 * A small client of MLflow's REST API (MLflow 3, Node's fetch): JSON calls under `/api/2.0/mlflow/`, artifacts
 * through the server's proxy (`mlflow-artifacts`, a server started with `--serve-artifacts`), and the create-or-get
 * of an experiment and a registered model that several processes may race on. It knows MLflow, not cryptocast's
 * models: the mapping of a model card onto runs, versions and tags is `mlflow.ts`.
 *
 * Credentials: MLFLOW_TRACKING_TOKEN (Bearer), else user:password in the URL, else MLFLOW_TRACKING_USERNAME and
 * MLFLOW_TRACKING_PASSWORD (Basic). They never appear in a message: the URL is kept without them.
 */
export interface MlflowClientOptions {
  /** Per-request timeout; artifact transfers get four times as long. */
  timeoutMs?: number;
  /**
   * How long a request that finds MLflow away — no answer (refused, reset, timed out) or 429, 502, 503, 504 — is
   * tried again, with back-off (from 0.5 s, doubling, at most 10 s; `Retry-After` honoured), before it fails. Default
   * 0: at once. Every request is tried again, as MLflow's own client does: the calls are idempotent but two creates
   * (`runs/create`, `model-versions/create`), whose first try may have landed unanswered — at worst a run left
   * RUNNING, or a version no alias ever names (`models list`: "incomplete").
   */
  retryForMs?: number;
  /** Ends the trying again (the last failure is thrown at once): the process is stopping. A first try is still made. */
  signal?: AbortSignal;
}

/** An MLflow error answer (or no answer): the HTTP status and MLflow's error_code, when there was one. */
export class MlflowRegistryError extends RegistryError {
  readonly status: number | undefined;
  readonly errorCode: string | undefined;
  /** The server's Retry-After (ms), on an answer that had one. */
  readonly retryAfterMs: number | undefined;
  constructor(message: string, status?: number, errorCode?: string, retryAfterMs?: number) {
    super(message);
    this.status = status;
    this.errorCode = errorCode;
    this.retryAfterMs = retryAfterMs;
  }

  /** MLflow away (no answer, or a restart's or an overload's answer): trying again later may succeed. */
  get mayPass(): boolean {
    return this.status === undefined || [429, 502, 503, 504].includes(this.status);
  }
}

const RETRY_BACKOFF: Backoff = { initialMs: 500, maxMs: 10_000 };

export type Query = Record<string, string | number | undefined>;

const isError = (err: unknown, errorCode: string) =>
  err instanceof MlflowRegistryError && err.errorCode === errorCode;

export class MlflowClient {
  /** The server's URL without credentials, query or trailing slash. */
  readonly base: string;
  private readonly timeoutMs: number;
  private readonly retryForMs: number;
  private readonly signal: AbortSignal | undefined;
  private readonly auth: string | undefined;

  constructor(baseUrl: string, options: MlflowClientOptions = {}) {
    // Quoted without its user info: a URL refused here (one that does not parse, say a bad port) would otherwise carry
    // the password into the message, where the redaction's URL pattern may not recognise it.
    const shown = baseUrl.replace(/^([^:]*:\/\/).*@/, '$1[redacted]@');
    let url: URL;
    try {
      url = new URL(baseUrl);
    } catch {
      throw new RegistryError(`bad MLflow URL "${shown}"`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new RegistryError(`bad MLflow URL "${shown}": use http:// or https://`);
    // Credentials in the URL become a Basic header (fetch refuses URLs that carry them) and stay out of messages.
    let basic: string | undefined;
    if (url.username || url.password)
      basic = Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString(
        'base64',
      );
    url.username = '';
    url.password = '';
    url.search = '';
    url.hash = '';
    this.base = url.href.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.retryForMs = options.retryForMs ?? 0;
    this.signal = options.signal;
    const token = secret('MLFLOW_TRACKING_TOKEN');
    const user = setting('MLFLOW_TRACKING_USERNAME');
    if (token) this.auth = `Bearer ${token}`;
    else if (basic) this.auth = `Basic ${basic}`;
    else if (user)
      this.auth = `Basic ${Buffer.from(`${user}:${secret('MLFLOW_TRACKING_PASSWORD') ?? ''}`).toString('base64')}`;
  }

  /** One request, tried again while MLflow is away for up to `retryForMs`; the last failure is thrown. */
  private async request(
    method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE',
    path: string,
    opts: { query?: Query; json?: unknown; body?: Uint8Array; timeoutMs?: number } = {},
  ): Promise<Uint8Array> {
    const giveUpAt = Date.now() + this.retryForMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.requestOnce(method, path, opts);
      } catch (err) {
        if (!(err instanceof MlflowRegistryError && err.mayPass)) throw err;
        const left = giveUpAt - Date.now();
        if (left <= 0 || this.signal?.aborted)
          throw attempt === 0
            ? err
            : new MlflowRegistryError(
                `${err.message} (tried again for ${Math.round((Date.now() - giveUpAt + this.retryForMs) / 1000)} s)`,
                err.status,
                err.errorCode,
              );
        const wait = Math.max(backoffDelay(attempt, RETRY_BACKOFF), err.retryAfterMs ?? 0);
        if (attempt === 0)
          log.warn(
            {
              registry: this.base,
              request: `${method} ${path}`,
              err: err.message,
              retryForMs: this.retryForMs,
            },
            'MLflow is away: trying again with back-off',
          );
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            this.signal?.removeEventListener('abort', done);
            resolve();
          };
          const timer = setTimeout(done, Math.min(wait, left));
          this.signal?.addEventListener('abort', done, { once: true });
        });
      }
    }
  }

  private async requestOnce(
    method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE',
    path: string,
    opts: { query?: Query; json?: unknown; body?: Uint8Array; timeoutMs?: number },
  ): Promise<Uint8Array> {
    let url = `${this.base}${path}`;
    if (opts.query) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(opts.query)) if (v !== undefined) q.set(k, String(v));
      url += `?${q}`;
    }
    const headers: Record<string, string> = {};
    if (this.auth) headers['authorization'] = this.auth;
    let body: string | Uint8Array | undefined;
    if (opts.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(opts.json);
    } else if (opts.body !== undefined) {
      headers['content-type'] = 'application/octet-stream';
      body = opts.body;
    }
    const what = `${method} ${path}`;
    const timeout = opts.timeoutMs ?? this.timeoutMs;
    let res: Response;
    try {
      res = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(timeout) });
    } catch (err) {
      throw this.away(
        err,
        `did not answer ${what} within ${timeout} ms`,
        (why) => `is unreachable (${why}) for ${what}`,
      );
    }
    if (res.ok) {
      // The body is part of the answer: a connection reset or a time-out while it comes is MLflow away (tried again
      // by `request`), not a raw "terminated" TypeError after the headers, which escaped the retry (h128's review).
      try {
        return new Uint8Array(await res.arrayBuffer());
      } catch (err) {
        throw this.away(
          err,
          `did not finish answering ${what} within ${timeout} ms`,
          (why) => `cut its answer to ${what} short (${why})`,
        );
      }
    }
    const text = await res.text().catch(() => '');
    let code: string | undefined;
    let message = text.slice(0, 500);
    try {
      const j = JSON.parse(text) as { error_code?: string; message?: string };
      code = j.error_code;
      if (j.message) message = j.message;
    } catch {
      // not JSON (a proxy's error page): the start of the text is the message
    }
    throw new MlflowRegistryError(
      `MLflow ${what} failed: HTTP ${res.status}${code ? ` ${code}` : ''}${message ? `: ${message}` : ''}`,
      res.status,
      code,
      parseRetryAfter(res.headers.get('retry-after')),
    );
  }

  /**
   * A request's or its body's failure as MLflow away (no status: `mayPass`, tried again by `request`): timed out, or the
   * connection's reason (`ECONNREFUSED`, a reset) in the sentence `failed` makes of it.
   */
  private away(err: unknown, timedOut: string, failed: (why: string) => string): MlflowRegistryError {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    if (e.name === 'TimeoutError') return new MlflowRegistryError(`MLflow at ${this.base} ${timedOut}`);
    return new MlflowRegistryError(
      `MLflow at ${this.base} ${failed(e.cause?.code ?? e.cause?.message ?? e.message)}`,
    );
  }

  /** A REST call: GET and DELETE send `args` as the query, the others as a JSON body. */
  async api<T>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', endpoint: string, args: Query | object = {}) {
    const bytes = await this.request(
      method,
      `/api/2.0/mlflow/${endpoint}`,
      method === 'GET' || method === 'DELETE' ? { query: args as Query } : { json: args },
    );
    const text = new TextDecoder().decode(bytes);
    return (text ? JSON.parse(text) : {}) as T;
  }

  /** The same call, but undefined when MLflow says the thing does not exist. */
  async maybe<T>(method: 'GET', endpoint: string, args: Query): Promise<T | undefined> {
    try {
      return await this.api<T>(method, endpoint, args);
    } catch (err) {
      if (isError(err, 'RESOURCE_DOES_NOT_EXIST')) return undefined;
      throw err;
    }
  }

  // --- artifacts (through the server's proxy) ------------------------------------------------------------------

  /** `mlflow-artifacts:/1/<run>/artifacts` (or with a host) → the proxy path of that folder. */
  artifactPath(uri: string, experimentName: string): string {
    const m = /^mlflow-artifacts:(?:\/\/[^/]*)?\/(.*)$/.exec(uri);
    if (!m)
      throw new RegistryError(
        `artifact location ${uri} is not served by the MLflow server: start it with --serve-artifacts and ` +
          `use an experiment whose artifact location is mlflow-artifacts:/ (not "${experimentName}" as it is)`,
      );
    const rel = m[1]!.replace(/\/+$/, '');
    return `/api/2.0/mlflow-artifacts/artifacts/${rel.split('/').map(encodeURIComponent).join('/')}`;
  }

  async upload(root: string, file: string, data: Uint8Array): Promise<void> {
    await this.request('PUT', `${root}/${encodeURIComponent(file)}`, {
      body: data,
      timeoutMs: this.timeoutMs * 4,
    });
  }

  /** An artifact's bytes, or undefined when there is no such file. */
  async fetchArtifact(root: string, file: string): Promise<Uint8Array | undefined> {
    try {
      return await this.request('GET', `${root}/${encodeURIComponent(file)}`, {
        timeoutMs: this.timeoutMs * 4,
      });
    } catch (err) {
      if (err instanceof MlflowRegistryError && err.status === 404) return undefined;
      throw err;
    }
  }

  // --- create-or-get, safe when processes race -------------------------------------------------------------

  /** The id of the experiment `name`, created if missing. */
  async experimentId(name: string): Promise<string> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const got = await this.maybe<{ experiment: { experiment_id: string; lifecycle_stage?: string } }>(
        'GET',
        'experiments/get-by-name',
        { experiment_name: name },
      );
      if (got) {
        if (got.experiment.lifecycle_stage === 'deleted')
          throw new RegistryError(`MLflow experiment "${name}" is deleted: restore it in the MLflow UI`);
        return got.experiment.experiment_id;
      }
      try {
        return (await this.api<{ experiment_id: string }>('POST', 'experiments/create', { name }))
          .experiment_id;
      } catch (err) {
        // Another process created it between the two calls: read it again.
        if (!isError(err, 'RESOURCE_ALREADY_EXISTS')) throw err;
      }
    }
    throw new RegistryError(`could not create or find the MLflow experiment "${name}"`);
  }

  /** Creates the registered model `name` unless it exists. */
  async ensureRegisteredModel(
    name: string,
    description: string,
    tags: { key: string; value: string }[],
  ): Promise<void> {
    if (await this.maybe('GET', 'registered-models/get', { name })) return;
    try {
      await this.api('POST', 'registered-models/create', { name, description, tags });
    } catch (err) {
      if (!isError(err, 'RESOURCE_ALREADY_EXISTS')) throw err;
    }
  }
}
