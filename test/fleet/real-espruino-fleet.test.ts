// The fleet runner with `--espruino`: a device in a real Espruino interpreter (booted from Storage
// behind the byte-counting relay) connects, is taken offline and back by the fleet controls, and
// comes back from a power cycle in a new epoch. Runs when ESPRUINO_BIN names the binary; reported
// as skipped otherwise.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startFleet, type RunningFleet } from '../../scripts/fleet/fleet.ts';
import { fleetBundle } from '../dashboard/helpers.ts';

const binary = process.env.ESPRUINO_BIN ?? '';
let fleet: RunningFleet | undefined;
const dirs: string[] = [];

afterAll(async () => {
  await fleet?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.runIf(binary !== '' && existsSync(binary))('fleet in a real Espruino interpreter', () => {
  it('connects, goes offline and back, and power-cycles into a new epoch', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tandem-real-fleet-'));
    dirs.push(dataDir);
    const running = await startFleet({ deviceCount: 1, bundlePath: await fleetBundle(), dataDir, httpPort: 0, espruinoBinary: binary, log: () => undefined });
    fleet = running;
    const transport = running.cloud.context.transport;
    const view = () => running.controls.devices()[0]!;
    await waitFor(() => transport.isConnected('demo-1'), 'the interpreter to connect', 15_000);
    expect(view().runtime).toBe('espruino');
    expect(view().console).toContain('device demo-1, boot epoch 1');
    // Bytes are counted at the relay: the MQTT connect and the sync hello at least.
    await waitFor(() => view().bytesReceived >= 4, 'the CONNACK through the relay', 5000);
    expect(view().bytesSent).toBeGreaterThan(50);

    expect(running.controls.setNetworkOnline('demo-1', false)).toBe(true);
    await waitFor(() => !transport.isConnected('demo-1'), 'the cloud to see it gone', 5000);
    expect(view().networkOnline).toBe(false);
    expect(running.controls.setNetworkOnline('demo-1', true)).toBe(true);
    await waitFor(() => transport.isConnected('demo-1'), 'the reconnect', 15_000);

    expect(running.controls.pressButton('demo-1')).toBe(false);
    expect(running.controls.powerCycle('demo-1')).toBe(true);
    await waitFor(() => view().console.includes('device demo-1, boot epoch 2'), 'the second boot', 10_000);
    expect(view().boots).toBe(2);
    await waitFor(async () => (await running.cloud.context.repository.getState('demo-1'))?.entries.find((e) => e.key === 'bootCount')?.reportedValue === 2, 'boot count 2 reported', 15_000);
  });
});
