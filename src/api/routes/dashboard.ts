import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { log } from '../../core/log.ts';
import { dashboardAssets, warm } from '../../dashboard/assets.ts';
import { fail } from '../reply.ts';

/**
 * The dashboard at `GET /` (and its two assets under `/dashboard/`), public like the health routes. Everything the
 * page loads comes from this server: a strict Content-Security-Policy keeps it so.
 */
const CSP = [
  "default-src 'self'",
  "connect-src 'self' ws: wss:",
  "img-src 'self' data:",
  "style-src 'self' 'unsafe-inline'",
  "script-src 'self'",
  "frame-ancestors 'none'",
].join('; ');

const etags = new WeakMap<Buffer, string>();

/** A strong validator of an asset's bytes (computed once per build). */
function etag(body: Buffer): string {
  let tag = etags.get(body);
  if (tag === undefined) {
    tag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
    etags.set(body, tag);
  }
  return tag;
}

export function dashboardRoutes() {
  return async (r: FastifyInstance) => {
    warm();
    const serve = (
      path: string,
      type: string,
      pick: (a: Awaited<ReturnType<typeof dashboardAssets>>) => Buffer,
    ) =>
      r.get(path, { config: { public: true }, schema: { hide: true } }, async (req, reply) => {
        try {
          const body = pick(await dashboardAssets());
          // `no-cache` asks the browser to revalidate every time; the ETag lets it do so with a 304 instead of
          // downloading the 190 KB bundle again on each visit.
          const tag = etag(body);
          reply
            .header('content-type', type)
            .header('content-security-policy', CSP)
            .header('x-content-type-options', 'nosniff')
            .header('cache-control', 'no-cache')
            .header('etag', tag);
          const known = req.headers['if-none-match'];
          if (known?.split(',').some((t) => t.trim() === '*' || t.trim().replace(/^W\//, '') === tag))
            return reply.code(304).send();
          return reply.send(body);
        } catch (err) {
          log.error({ err, service: 'api' }, 'dashboard build failed');
          return fail(
            reply,
            503,
            'the dashboard could not be built (is esbuild installed? run bash scripts/setup.sh)',
            'dashboard_unavailable',
          );
        }
      });
    serve('/', 'text/html; charset=utf-8', (a) => a.html);
    serve('/dashboard/app.js', 'text/javascript; charset=utf-8', (a) => a.js);
    serve('/dashboard/app.css', 'text/css; charset=utf-8', (a) => a.css);
  };
}
