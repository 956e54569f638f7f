import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';

/**
 * Debian's Chromium driven by playwright-core: headless, no sandbox (root), no GPU, and none of Chromium's own
 * background traffic (the machine has no internet, and a page under test must not reach it either).
 */
export async function launchChromium(): Promise<Browser> {
  const executablePath = execFileSync(
    'bash',
    [join(import.meta.dirname, '..', '..', 'scripts', 'chromium.sh')],
    {
      encoding: 'utf8',
    },
  ).trim();
  return chromium.launch({
    executablePath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-default-apps',
    ],
  });
}

/** Everything a page did that a clean page must not: console errors, page errors, failed requests, foreign hosts. */
export function watch(page: Page, allowedHost: string) {
  const problems: string[] = [];
  const foreign: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} (${r.failure()?.errorText})`));
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.protocol === 'data:' || u.protocol === 'blob:') return;
    if (u.host !== allowedHost) foreign.push(r.url());
  });
  return { problems, foreign };
}

/** What the dashboard says it shows (`window.__cryptocast.state()`, see src/dashboard/web/main.ts). */
export interface DashboardState {
  status: string;
  statusDetail: string;
  firstPaintMs: number | null;
  candles: number;
  predictions: number;
  verdicts: number;
  lastPrediction: number | null;
  lastCandle: number | null;
  pair: string;
  live: { candles: number; predictions: number; errors: number };
  dropped: { candles: number; predictions: number; errors: number };
  /** Gaps (resumes the API could not replay) filled without a reload, per channel. */
  refilled: { candles: number; predictions: number; errors: number };
}

/** The page's own account of what it shows (evaluated as a function: the page's CSP forbids string eval). */
export const dashboardState = (page: Page) =>
  page.evaluate(() =>
    (globalThis as unknown as { __cryptocast?: { state(): unknown } }).__cryptocast?.state(),
  ) as Promise<DashboardState | undefined>;

/** Polls the dashboard's state until `done` says so, with a deadline; the error shows the last state. */
export async function waitForDashboard(
  page: Page,
  what: string,
  done: (s: DashboardState) => boolean,
  timeoutMs = 60_000,
): Promise<DashboardState> {
  const deadline = Date.now() + timeoutMs;
  let last: DashboardState | undefined;
  for (;;) {
    last = await dashboardState(page).catch(() => undefined);
    if (last !== undefined && done(last)) return last;
    if (Date.now() > deadline)
      throw new Error(`the dashboard never reached ${what}; its state: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
