import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { CryptocastError } from '../../../src/core/errors.ts';
import { OpenSearchIndex } from '../../../src/sinks/opensearch.ts';
import { tempDirs } from '../../support/embedded-run.ts';
import { testCa, testCert } from '../../support/test-ca.ts';

/**
 * The sink's TLS and basic auth, against a local HTTPS server answering the bulk API as OpenSearch does. The local
 * OpenSearch node of the integration tests (scripts/opensearch.sh) has no security plugin: it is assembled from the
 * server's Maven Central jars, and the plugin (TLS, users) is a separate distribution with its own dependencies and a
 * security index to initialise. A CA and a certificate for 127.0.0.1 are made for each run (test/support/test-ca.ts).
 */
const dir = tempDirs();
const USER = 'cc-sink';
const PASSWORD = 'Os-pw-of-test-4471';

function certificates(): { ca: string; key: string; cert: string; otherCa: string } {
  const d = dir('cc-os-tls-');
  const ca = testCa(d);
  const server = testCert(d, 'server', '127.0.0.1', 'subjectAltName=IP:127.0.0.1');
  const other = testCa(dir('cc-os-other-ca-'), 'other');
  const read = (f: string) => readFileSync(f, 'utf8');
  return { ca: read(ca), key: read(server.key), cert: read(server.cert), otherCa: read(other) };
}

describe('OpenSearch over TLS with basic auth', () => {
  let certs: ReturnType<typeof certificates>;
  let server: Server;
  let url = '';
  const authorizations: (string | undefined)[] = [];
  const logger = pino({ level: 'silent' });

  before(async () => {
    certs = certificates();
    server = createServer({ key: certs.key, cert: certs.cert }, (req, res) => {
      authorizations.push(req.headers.authorization);
      req.resume();
      req.on('end', () => {
        const ok =
          req.headers.authorization === `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
        res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify(
            ok
              ? { took: 1, errors: false, items: [{ index: { _index: 'i', _id: '1', status: 201 } }] }
              : { error: { type: 'security_exception', reason: 'unauthorized' }, status: 401 },
          ),
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const op = [{ index: 'i', id: '1', doc: { a: 1 } }];

  it('verified against the CA given, with the credentials from the environment: the bulk goes through', async () => {
    const index = new OpenSearchIndex({ url, username: USER, password: PASSWORD, ca: certs.ca, logger });
    try {
      assert.deepEqual(await index.bulk(op), [{ ok: true }]);
      assert.equal(authorizations.at(-1), `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`);
    } finally {
      await index.close();
    }
  });

  for (const [what, ca] of [
    ['no CA (the system’s CAs)', undefined],
    ['another CA', 'other'],
  ] as const)
    it(`${what}: CC_ERR_CONFIG, the certificate not trusted (a setting to fix, not retried as an outage)`, async () => {
      const index = new OpenSearchIndex({
        url,
        username: USER,
        password: PASSWORD,
        ca: ca === undefined ? undefined : certs.otherCa,
        logger,
      });
      try {
        await assert.rejects(index.bulk(op), (err: unknown) => {
          assert.ok(err instanceof CryptocastError, String(err));
          assert.equal(err.code, 'CC_ERR_CONFIG');
          assert.match(err.message, /^OpenSearch's certificate is not trusted/);
          assert.match(String(err.hint), /CRYPTOCAST_OPENSEARCH_CA/);
          assert.ok(!err.message.includes(PASSWORD), err.message);
          return true;
        });
      } finally {
        await index.close();
      }
    });

  it('a wrong password: CC_ERR_CONFIG, the credentials refused, without the password', async () => {
    const wrong = `${PASSWORD}-wrong`;
    const index = new OpenSearchIndex({ url, username: USER, password: wrong, ca: certs.ca, logger });
    try {
      await assert.rejects(index.bulk(op), (err: unknown) => {
        assert.ok(err instanceof CryptocastError);
        assert.match(err.message, /OpenSearch refused the credentials \(HTTP 401\)/);
        assert.ok(!err.message.includes(wrong));
        return true;
      });
    } finally {
      await index.close();
    }
  });
});
