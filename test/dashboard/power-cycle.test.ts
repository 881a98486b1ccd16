// Browser test: a device power-cycled from the dashboard keeps its state. It is taken offline
// first, so what it applies at boot can only come from its own flash, not from the cloud; back
// online, it reports the new boot count and keeps syncing in a new epoch.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDashboard, type DashboardSession } from './helpers.ts';

let session: DashboardSession;

beforeAll(async () => {
  session = await openDashboard(1);
});

afterAll(async () => {
  await session?.close();
});

describe('dashboard: power cycle', () => {
  it('a power-cycled device keeps its state', async () => {
    const { page } = session;
    await page.getByTestId('row-demo-1').getByText('connected', { exact: true }).waitFor({ timeout: 10_000 });
    await expect.poll(() => page.getByTestId('reported-bootCount').textContent(), { timeout: 10_000 }).toBe('1');

    // Cloud-owned state set in the page, applied by the device.
    await page.getByTestId('edit-led').fill('true');
    await page.getByTestId('set-led').click();
    await expect.poll(() => page.getByTestId('hw-led').textContent(), { timeout: 10_000 }).toContain('on');
    await page.getByTestId('edit-reportIntervalSec').fill('7');
    await page.getByTestId('set-reportIntervalSec').click();
    await expect.poll(() => page.getByTestId('hw-interval').textContent(), { timeout: 10_000 }).toBe('7 s');

    // Offline, then power off and on: the new boot has only its flash to go by.
    await page.getByTestId('network-demo-1').click();
    await expect.poll(() => page.getByTestId('net-demo-1').textContent()).toBe('offline');
    await page.getByTestId('power-demo-1').click();
    await expect.poll(() => page.getByTestId('hw-power').textContent(), { timeout: 5000 }).toBe('on, boot 2');
    await expect.poll(() => page.getByTestId('hw-led').textContent(), { timeout: 5000 }).toContain('on');
    const device = session.fleet.controls.devices()[0]!;
    const bootLines = device.console.slice(device.console.lastIndexOf('-- fleet: power cycle --'));
    expect(bootLines).toContain('led on');
    expect(device.networkOnline).toBe(false);
    await session.screenshot('power-cycled-offline');

    // Back online: the device reports its second boot; the desired values stand, nothing re-set.
    await page.getByTestId('network-demo-1').click();
    await expect.poll(() => page.getByTestId('net-demo-1').textContent()).toBe('online');
    await expect.poll(() => page.getByTestId('reported-bootCount').textContent(), { timeout: 20_000 }).toBe('2');
    await expect.poll(() => page.getByTestId('row-demo-1').getByText('connected', { exact: true }).count(), { timeout: 5000 }).toBe(1);
    expect(await page.getByTestId('desired-led').textContent()).toBe('true');
    expect(await page.getByTestId('desired-reportIntervalSec').textContent()).toBe('7');
    expect(await page.getByTestId('hw-led').textContent()).toContain('on');
    // Events of the new boot carry a new epoch.
    await expect.poll(async () => page.$$eval('[data-testid=events] li', (items) => items.some((item) => (item.textContent ?? '').includes('#2.'))), { timeout: 10_000 }).toBe(true);
    await session.screenshot('power-cycled');
    expect(session.pageErrors).toEqual([]);
  });
});
