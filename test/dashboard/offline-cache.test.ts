// Browser test: the dashboard takes a device offline; its telemetry stops reaching the cloud but
// is cached on the device; back online, the cached events (with their original times) appear in
// the page's live events and charts, none lost.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listedTelemetryTimes, openDashboard, type DashboardSession } from './helpers.ts';

let session: DashboardSession;

beforeAll(async () => {
  session = await openDashboard(1);
});

afterAll(async () => {
  await session?.close();
});

describe('dashboard: offline device', () => {
  it("shows an offline device's cached events after it reconnects", async () => {
    const { page } = session;
    await page.getByTestId('row-demo-1').getByText('connected', { exact: true }).waitFor({ timeout: 10_000 });
    // Telemetry every second, so the offline spell caches several readings.
    const state = await session.api<{ desiredVersion: number }>('/api/devices/demo-1/state');
    const patched = await session.api('/api/devices/demo-1/state/desired', { method: 'PATCH', headers: { 'if-match': `"${state.body.desiredVersion}"` }, body: { reportIntervalSec: 1 } });
    expect(patched.status).toBe(200);
    await expect.poll(() => page.getByTestId('hw-interval').textContent(), { timeout: 10_000 }).toBe('1 s');
    // Wait for the first one-second reading to arrive live.
    const fastSince = Date.now();
    await expect.poll(async () => (await listedTelemetryTimes(page)).filter((ts) => ts >= fastSince - 1000).length, { timeout: 15_000, interval: 250 }).toBeGreaterThanOrEqual(2);

    await page.getByTestId('network-demo-1').click();
    const offlineAt = Date.now();
    await expect.poll(() => page.getByTestId('net-demo-1').textContent()).toBe('offline');
    await expect.poll(() => page.getByTestId('row-demo-1').getByText('connected', { exact: true }).count(), { timeout: 5000 }).toBe(0);
    expect(await page.getByTestId('row-demo-1').textContent()).toContain('disconnected');
    await page.waitForTimeout(5000);
    // Nothing taken while offline has reached the cloud.
    const duringOffline = (await listedTelemetryTimes(page)).filter((ts) => ts >= offlineAt + 1000);
    expect(duringOffline).toEqual([]);
    expect(session.fleet.controls.devices()[0]!.networkOnline).toBe(false);
    await session.screenshot('offline');

    await page.getByTestId('network-demo-1').click();
    const onlineAt = Date.now();
    await expect.poll(() => page.getByTestId('net-demo-1').textContent()).toBe('online');
    // The cached readings arrive with their own (offline) times: at least one per second offline.
    const offlineSeconds = Math.floor((onlineAt - offlineAt) / 1000);
    await expect
      .poll(async () => (await listedTelemetryTimes(page)).filter((ts) => ts >= offlineAt + 1000 && ts < onlineAt).length, { timeout: 25_000, interval: 500 })
      .toBeGreaterThanOrEqual(offlineSeconds - 2);
    await expect.poll(() => page.getByTestId('row-demo-1').getByText('connected', { exact: true }).count()).toBe(1);
    // And the cloud stored every one of them once (no gaps in the sequence, no duplicates).
    const events = await session.api<{ events: Array<{ epoch: number; seq: number; templateId: string }> }>('/api/devices/demo-1/events?limit=1000');
    const seqs = events.body.events.map((e) => e.seq).sort((a, b) => a - b);
    expect(new Set(seqs).size).toBe(seqs.length);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe(seqs[i - 1]! + 1);
    await session.screenshot('reconnected');
    expect(session.pageErrors).toEqual([]);
  });
});
