import { Client } from '@opensearch-project/opensearch';
import { ERR, fail } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';

/**
 * The sink's view of a search engine: bulk-index documents by id, and install the index template and the retention
 * policy. One implementation on the official OpenSearch client; the sink's unit tests use a fake.
 */

export interface IndexOp {
  index: string;
  id: string;
  doc: Record<string, unknown>;
  /**
   * The document's rank among the records of its id (external versioning, `external_gte`): written only over a
   * document of the same rank or lower, so a record the index already holds one of a higher rank for is not written
   * (it answers `outranked`). Absent: the last written wins.
   */
  version?: number;
}

/**
 * Per operation, in order: ok — written, or `outranked` (not written: the index holds a document of its id of a higher
 * `version`) — or the HTTP status and reason OpenSearch gave for that document.
 */
export type IndexResult = { ok: true; outranked?: true } | { ok: false; status: number; reason: string };

export interface DocumentIndex {
  /** One bulk request. Throws when the request as a whole failed (connection refused, timeout, 5xx). */
  bulk(ops: readonly IndexOp[]): Promise<IndexResult[]>;
  /** Installs the index template and, where the cluster has ISM, the retention policy (idempotent). */
  setup(o: { templateName: string; template: object; policyName: string; policy: object }): Promise<void>;
  close(): Promise<void>;
}

/** A status worth retrying the document for: too many requests, or a server-side failure. */
export function retryableStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

/**
 * A document refused for a reason that passes, not for itself: a retryable status, or a block on the index or the
 * cluster (`cluster_block_exception`: a write block, read-only, the disk's flood stage — 403 for most of them), which
 * is lifted by the operator or when disk is freed; until then every document would be refused, not this one.
 */
export function retryableRefusal(r: { status: number; reason: string }): boolean {
  return retryableStatus(r.status) || r.reason.startsWith('cluster_block_exception');
}

export interface OpenSearchOptions {
  url: string;
  username?: string;
  password?: string;
  /** The CA certificate (PEM) an `https://` node is verified against, instead of the system's CAs. */
  ca?: string;
  /** Per request. Default 30 s. */
  requestTimeoutMs?: number;
  logger: Logger;
}

export class OpenSearchIndex implements DocumentIndex {
  private readonly client: Client;
  private readonly log: Logger;

  constructor(o: OpenSearchOptions) {
    this.log = o.logger;
    this.client = new Client({
      node: o.url,
      auth: o.username ? { username: o.username, password: o.password ?? '' } : undefined,
      // Always verified: a managed OpenSearch's own CA is given, never the check turned off.
      ...(o.ca ? { ssl: { ca: o.ca } } : {}),
      requestTimeout: o.requestTimeoutMs ?? 30_000,
      // The sink retries whole batches with its own back-off (and keeps offsets uncommitted meanwhile).
      maxRetries: 0,
      compression: 'gzip',
    });
  }

  async bulk(ops: readonly IndexOp[]): Promise<IndexResult[]> {
    const body: object[] = [];
    for (const op of ops)
      body.push(
        {
          index: {
            _index: op.index,
            _id: op.id,
            // `external_gte`, not `external`: the same record written again (a retry, a replay) is taken, not refused.
            ...(op.version === undefined ? {} : { version: op.version, version_type: 'external_gte' }),
          },
        },
        op.doc,
      );
    const res = await this.client.bulk({ body }).catch(refusedAccess);
    const items = res.body.items;
    if (items.length !== ops.length)
      throw new Error(`bulk answered ${items.length} items for ${ops.length} operations`);
    return items.map((item, i) => {
      const r = item.index!;
      if (r.status >= 200 && r.status < 300) return { ok: true } as const;
      const e = r.error as { type?: string; reason?: string } | undefined;
      // A ranked document refused because the index holds a higher one of its id: that one stays, as meant.
      if (
        r.status === 409 &&
        ops[i]!.version !== undefined &&
        e?.type === 'version_conflict_engine_exception'
      )
        return { ok: true, outranked: true } as const;
      return {
        ok: false,
        status: r.status,
        reason: `${e?.type ?? 'error'}: ${e?.reason ?? 'unknown'}`,
      } as const;
    });
  }

  async setup(o: {
    templateName: string;
    template: object;
    policyName: string;
    policy: object;
  }): Promise<void> {
    await this.client.indices
      .putIndexTemplate({ name: o.templateName, body: o.template as never })
      .catch(refusedAccess);
    // ISM is a plugin: a cluster without it (a bare node, Elasticsearch) keeps the indices until deleted by hand.
    let existing: { seq: number; term: number } | undefined;
    try {
      const got = await this.client.transport.request({
        method: 'GET',
        path: `/_plugins/_ism/policies/${o.policyName}`,
      });
      const b = got.body as { _seq_no: number; _primary_term: number };
      existing = { seq: b._seq_no, term: b._primary_term };
    } catch (err) {
      const status = (err as { meta?: { statusCode?: number } }).meta?.statusCode;
      const body = (err as { meta?: { body?: unknown } }).meta?.body;
      const text =
        body === undefined ? (err as Error).message : typeof body === 'string' ? body : JSON.stringify(body);
      if (status === 404 && /policy|not_found|not found/i.test(text) && !/no handler/i.test(text))
        existing = undefined;
      else if (status === 400 || status === 404 || status === 405) {
        this.log.warn(
          { policy: o.policyName, status },
          'the cluster has no Index State Management plugin: retention is not applied (delete old indices by hand)',
        );
        return;
      } else throw err;
    }
    const qs = existing ? `?if_seq_no=${existing.seq}&if_primary_term=${existing.term}` : '';
    await this.client.transport.request({
      method: 'PUT',
      path: `/_plugins/_ism/policies/${o.policyName}${qs}`,
      body: o.policy,
    });
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

/**
 * OpenSearch refusing the credentials (401) or the permission (403 from the security plugin) is a setting to fix, not an
 * outage to wait out:
 * a catalogued error that ends the sink, instead of a retry for ever behind "OpenSearch unavailable". Anything else is
 * rethrown as it is (retried).
 */
function refusedAccess(err: unknown): never {
  const tls = untrustedCertificate(err);
  if (tls)
    throw fail(ERR.CONFIG, `OpenSearch's certificate is not trusted (${tls})`, {
      hint: 'set CRYPTOCAST_OPENSEARCH_CA to the CA file (PEM) that signed the certificate of the OpenSearch URL',
      cause: err,
    });
  const meta = (err as { meta?: { statusCode?: number; body?: { error?: { type?: string } } } }).meta;
  const status = meta?.statusCode;
  // A 403 is refused access only from the security plugin: a full disk's read-only block (cluster_block_exception)
  // is also a 403, and clears when space is freed: that one is retried.
  if (status === 401 || (status === 403 && meta?.body?.error?.type === 'security_exception'))
    throw fail(
      ERR.CONFIG,
      `OpenSearch refused ${status === 401 ? 'the credentials' : 'the permission'} (HTTP ${status})`,
      {
        hint: "check CRYPTOCAST_OPENSEARCH_USERNAME / CRYPTOCAST_OPENSEARCH_PASSWORD and the user's index permissions",
        cause: err,
      },
    );
  throw err;
}

/** OpenSSL's codes for a certificate that does not lead to a trusted CA, or is not for the host: a setting to fix. */
const UNTRUSTED_CERTIFICATE =
  /^(SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|CERT_SIGNATURE_FAILURE|CERT_UNTRUSTED|CERT_HAS_EXPIRED|CERT_NOT_YET_VALID|ERR_TLS_CERT_ALTNAME_INVALID)$/;

/**
 * The TLS refusal behind a failed request: by OpenSSL's code where the error carries one, else by Node's words, since
 * the client's ConnectionError keeps only the message of the socket's error (lib/Connection.js).
 */
function untrustedCertificate(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && UNTRUSTED_CERTIFICATE.test(code))
      return `${code}: ${(e as Error).message}`;
  }
  const message = (err as Error | undefined)?.message ?? '';
  return /self[- ]signed certificate|unable to verify the first certificate|unable to get local issuer certificate|Hostname\/IP does not match/i.test(
    message,
  )
    ? message
    : undefined;
}
