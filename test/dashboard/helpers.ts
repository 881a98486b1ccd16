// Shared by the dashboard's browser tests: a fleet (cloud + sandbox devices, as `npm start` runs
// it) on free ports in a temporary folder, and headless Debian Chromium through playwright-core.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { buildFirmwareBundle } from '../../scripts/commands/emulate.ts';
import { startFleet, type RunningFleet } from '../../scripts/fleet/fleet.ts';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const screenshotDir = join(repoRoot, 'test-output');
export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

function newestSourceMtimeMs(dir: string): number {
  let newest = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const stat = statSync(path);
    if (stat.isDirectory()) newest = Math.max(newest, newestSourceMtimeMs(path));
    else if (name.endsWith('.ts')) newest = Math.max(newest, stat.mtimeMs);
  }
  return newest;
}

/**
 * The firmware bundle for the fleet: a private copy of dist/firmware.js when it is newer than every
 * firmware source (`npm test` builds it first), else one build shared by every test file that needs
 * it (the first builds, the others wait for it). The copy keeps a parallel rebuild of dist/ from
 * changing the devices under a running test.
 */
export async function fleetBundle(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-dashboard-bundle-'));
  const target = join(dir, 'firmware.js');
  const dist = join(repoRoot, 'dist', 'firmware.js');
  const sourcesMs = newestSourceMtimeMs(join(repoRoot, 'firmware'));
  if (existsSync(dist) && statSync(dist).mtimeMs >= sourcesMs) {
    copyFileSync(dist, target);
    return target;
  }
  const shared = join(tmpdir(), `tandem-fleet-bundle-${Math.floor(sourcesMs)}.js`);
  const lock = `${shared}.lock`;
  const started = Date.now();
  while (!existsSync(shared)) {
    let owner = false;
    try {
      mkdirSync(lock);
      owner = true;
    } catch {
      // Another test file is building it.
    }
    if (owner) {
      try {
        const built = await buildFirmwareBundle(join(dir, 'build.js'), true);
        copyFileSync(built, `${shared}.partial`);
        renameSync(`${shared}.partial`, shared);
      } finally {
        rmSync(lock, { recursive: true, force: true });
      }
      break;
    }
    if (Date.now() - started > 90_000) throw new Error(`waited 90 s for another test's firmware build (${lock})`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  copyFileSync(shared, target);
  return target;
}

export interface DashboardSession {
  fleet: RunningFleet;
  browser: BrowserContext;
  page: Page;
  /** Page errors and console errors seen while the test ran (a broken page shows up here). */
  pageErrors: string[];
  api<T>(path: string, init?: { method?: string; body?: unknown; headers?: Record<string, string> }): Promise<{ status: number; body: T }>;
  screenshot(name: string): Promise<string>;
  close(): Promise<void>;
}

export async function openDashboard(deviceCount: number): Promise<DashboardSession> {
  const bundlePath = await fleetBundle();
  const dataDir = mkdtempSync(join(tmpdir(), 'tandem-dashboard-'));
  const fleet = await startFleet({ deviceCount, bundlePath, dataDir, httpPort: 0, log: () => undefined, sampleMs: 1000 });
  const userDataDir = mkdtempSync(join(tmpdir(), 'tandem-chromium-'));
  let browser: BrowserContext;
  try {
    browser = await chromium.launchPersistentContext(userDataDir, {
      executablePath: chromiumPath,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1400, height: 1000 },
    });
  } catch (error) {
    await fleet.stop();
    throw new Error(`cannot start Chromium at ${chromiumPath} (install Debian's chromium, or set CHROMIUM_PATH): ${(error as Error).message}`);
  }
  const page = browser.pages()[0] ?? (await browser.newPage());
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(message.text());
  });
  await page.goto(fleet.dashboardUrl);
  mkdirSync(screenshotDir, { recursive: true });
  return {
    fleet,
    browser,
    page,
    pageErrors,
    async api<T>(path: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}) {
      const response = await fetch(fleet.baseUrl + path, {
        method: init.method ?? 'GET',
        headers: { authorization: `Bearer ${fleet.cloud.adminToken}`, ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}), ...(init.headers ?? {}) },
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
      });
      return { status: response.status, body: (await response.json()) as T };
    },
    async screenshot(name: string) {
      const path = join(screenshotDir, `dashboard-${name}.png`);
      await page.screenshot({ path, fullPage: true });
      return path;
    },
    async close() {
      await browser.close().catch(() => undefined);
      await fleet.stop();
      rmSync(userDataDir, { recursive: true, force: true });
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Telemetry events the page lists, as (device time) numbers, newest first. */
export async function listedTelemetryTimes(page: Page): Promise<number[]> {
  return page.$$eval('[data-testid=events] li[data-template=telemetry]', (items) => items.map((item) => Number(item.getAttribute('data-ts'))));
}
