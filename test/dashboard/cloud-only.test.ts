// Browser test: the dashboard served by the cloud stub alone (`tandem cloud`, no fleet in the
// process): it asks for the admin token, refuses a wrong one, lists provisioned devices and says
// that the fleet controls need `npm start`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { provisionDevice } from '../../cloud-stub/provisioning.ts';
import { startCloud, type RunningCloud } from '../../cloud-stub/server.ts';
import { chromiumPath, screenshotDir } from './helpers.ts';

let cloud: RunningCloud;
let browser: BrowserContext;
const dirs: string[] = [];

beforeAll(async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tandem-cloud-only-'));
  const userDataDir = mkdtempSync(join(tmpdir(), 'tandem-chromium-'));
  dirs.push(dataDir, userDataDir);
  cloud = await startCloud({ dataDir, mqttPort: 0, mqttHost: '127.0.0.1', httpPort: 0, httpHost: '127.0.0.1', log: () => undefined });
  await provisionDevice(cloud.context.repository, 'board-7', { hashCost: 16 });
  browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1400, height: 900 },
  });
});

afterAll(async () => {
  await browser?.close();
  await cloud?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('dashboard without a fleet', () => {
  it('asks for the token, lists the devices and has no fleet controls', async () => {
    const page = browser.pages()[0] ?? (await browser.newPage());
    const base = `http://127.0.0.1:${cloud.httpPort}`;
    // The root redirects to the dashboard.
    await page.goto(`${base}/`);
    expect(new URL(page.url()).pathname).toBe('/dashboard/');
    await page.getByTestId('login').waitFor();
    expect(await page.locator('#main').isHidden()).toBe(true);

    await page.fill('#token', 'not-the-token');
    await page.click('#login button[type=submit]');
    await expect.poll(() => page.locator('#login-error').textContent()).toBe('That token was refused.');

    await page.fill('#token', cloud.adminToken);
    await page.click('#login button[type=submit]');
    await page.getByTestId('row-board-7').waitFor();
    expect(await page.getByTestId('row-board-7').textContent()).toContain('never connected');
    expect(await page.getByTestId('row-board-7').textContent()).toContain('no fleet in this process');
    expect(await page.locator('#totals').textContent()).toContain('controls need `npm start`');
    await expect.poll(() => page.getByTestId('live').textContent()).toBe('live stream: connected');
    await page.screenshot({ path: join(screenshotDir, 'dashboard-cloud-only.png'), fullPage: true });
  });
});
