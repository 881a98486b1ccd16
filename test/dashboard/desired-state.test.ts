// Browser test: a desired change made in the dashboard (PATCH with If-Match) reaches the emulated
// device, which applies it (its LED, its report interval) and sends back what it does: telemetry
// at the new interval. A stale If-Match is refused with a clear note instead of overwriting.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listedTelemetryTimes, openDashboard, type DashboardSession } from './helpers.ts';

let session: DashboardSession;

beforeAll(async () => {
  session = await openDashboard(2);
});

afterAll(async () => {
  await session?.close();
});

describe('dashboard: desired state', () => {
  it('shows the fleet, and a desired change set in the page reaches the device and comes back', async () => {
    const { page } = session;
    await page.getByTestId('row-demo-1').getByText('connected', { exact: true }).waitFor({ timeout: 10_000 });
    await page.getByTestId('row-demo-2').getByText('connected', { exact: true }).waitFor({ timeout: 10_000 });
    await page.getByTestId('row-demo-1').click();
    await expect.poll(() => page.getByTestId('detail-id').textContent()).toBe('demo-1');
    // The device's own report arrives first: firmware and boot count as reported state.
    await expect.poll(() => page.getByTestId('reported-bootCount').textContent(), { timeout: 10_000 }).toBe('1');
    await expect.poll(() => page.getByTestId('hw-led').textContent(), { timeout: 5000 }).toContain('off');

    await page.getByTestId('edit-led').fill('true');
    await page.getByTestId('set-led').click();
    await expect.poll(() => page.getByTestId('state-note').textContent()).toContain('Desired version 1');
    await expect.poll(() => page.getByTestId('desired-led').textContent()).toBe('true');
    // The device applies it: its console says so, the fleet shows the LED on.
    await expect.poll(() => page.getByTestId('hw-led').textContent(), { timeout: 10_000 }).toContain('on');
    expect(session.fleet.controls.devices().find((d) => d.deviceId === 'demo-1')!.console).toContain('led on');
    // Only demo-1 was asked.
    expect(session.fleet.controls.devices().find((d) => d.deviceId === 'demo-2')!.led).toBe(false);

    // A faster report interval: the device's telemetry comes back every second instead of ten.
    await page.getByTestId('edit-reportIntervalSec').fill('1');
    await page.getByTestId('set-reportIntervalSec').click();
    await expect.poll(() => page.getByTestId('hw-interval').textContent(), { timeout: 10_000 }).toBe('1 s');
    const changedAt = Date.now();
    await expect
      .poll(async () => (await listedTelemetryTimes(page)).filter((ts) => ts >= changedAt - 1000).length, { timeout: 20_000, interval: 500 })
      .toBeGreaterThanOrEqual(3);
    const recent = (await listedTelemetryTimes(page)).filter((ts) => ts >= changedAt - 1000).sort((a, b) => a - b);
    for (let i = 1; i < recent.length; i++) expect(recent[i]! - recent[i - 1]!).toBeLessThanOrEqual(2000);
    // The chart of a telemetry field draws those points.
    const points = Number(await page.getByTestId('chart-telemetry.temp').getAttribute('data-points'));
    expect(points).toBeGreaterThanOrEqual(3);
    await session.screenshot('desired-state');
    expect(session.pageErrors).toEqual([]);
  });

  it('refuses a change based on a stale version and says so', async () => {
    const { page } = session;
    // Someone else changes the desired state; the page still holds the version it showed.
    await page.route('**/api/devices/demo-1/state', (route) => route.abort());
    const before = await session.api<{ desiredVersion: number }>('/api/devices/demo-1/state');
    const other = await session.api('/api/devices/demo-1/state/desired', { method: 'PATCH', headers: { 'if-match': `"${before.body.desiredVersion}"` }, body: { led: false } });
    expect(other.status).toBe(200);
    await page.getByTestId('edit-led').fill('true');
    await page.getByTestId('set-led').click();
    await expect.poll(() => page.getByTestId('state-note').textContent()).toContain('moved on');
    await page.unroute('**/api/devices/demo-1/state');
    const after = await session.api<{ entries: Array<{ key: string; desiredValue: unknown }> }>('/api/devices/demo-1/state');
    expect(after.body.entries.find((e) => e.key === 'led')!.desiredValue).toBe(false);
    await expect.poll(() => page.getByTestId('desired-led').textContent(), { timeout: 5000 }).toBe('false');
    await expect.poll(() => page.getByTestId('hw-led').textContent(), { timeout: 10_000 }).toContain('off');
  });
});
