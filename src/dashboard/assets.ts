import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The dashboard's files, served by the API itself (no CDN: the page works on an offline machine): the HTML shell, the
 * stylesheet, and one JavaScript bundle made by esbuild from `web/` (TypeScript, the chart library included). Built
 * once per process on first use (about 100 ms), or ahead of time with `warm()` so the first visitor does not wait.
 */
const WEB = join(import.meta.dirname, 'web');

export interface DashboardAssets {
  html: Buffer;
  css: Buffer;
  js: Buffer;
}

let built: Promise<DashboardAssets> | undefined;

async function build(): Promise<DashboardAssets> {
  const { build: esbuild } = await import('esbuild');
  const [html, css, result] = await Promise.all([
    readFile(join(WEB, 'index.html')),
    readFile(join(WEB, 'styles.css')),
    esbuild({
      entryPoints: [join(WEB, 'main.ts')],
      bundle: true,
      format: 'esm',
      target: 'es2022',
      minify: true,
      write: false,
      // The chart library's licence notice travels with the bundle (Apache-2.0 attribution).
      legalComments: 'eof',
      logLevel: 'silent',
    }),
  ]);
  return { html, css, js: Buffer.from(result.outputFiles[0]!.contents) };
}

export function dashboardAssets(): Promise<DashboardAssets> {
  built ??= build().catch((err) => {
    built = undefined;
    throw err;
  });
  return built;
}

/** Starts the build in the background (the API does at start). */
export function warm(): void {
  void dashboardAssets().catch(() => {});
}
