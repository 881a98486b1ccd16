// The full firmware in a real Espruino interpreter (a Linux build, ideally in the ESP32 memory
// format) against the cloud stub: booted from Storage as a flashed board boots, it syncs events
// and state and follows the cloud's desired state. Runs when ESPRUINO_BIN names the binary;
// reported as skipped otherwise.
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootFromStorage, type BootedEspruino } from '../../hal-mocks/espruino-sandbox/real-espruino-boot.ts';
import { RealEspruino, writeDeviceConfigWithBinary } from '../../hal-mocks/espruino-sandbox/real-espruino.ts';
import { startTestCloud, waitFor, type TestCloud } from '../sync/helpers.ts';
import { buildBundle } from './helpers.ts';

const binary = process.env.ESPRUINO_BIN ?? '';

describe.runIf(binary !== '' && existsSync(binary))('full firmware in a real Espruino interpreter', () => {
  let cloud: TestCloud;
  let device: BootedEspruino | undefined;
  beforeAll(async () => {
    cloud = await startTestCloud();
  });
  afterAll(async () => {
    device?.stop();
    await cloud.close();
  });

  it('boots from Storage, sends telemetry, reports state, applies desired state, within its memory', async () => {
    const bundlePath = await buildBundle();
    const config = await cloud.provision('real-a');
    const repository = cloud.cloud.context.repository;
    expect((await repository.patchDesired('real-a', 0, { reportIntervalSec: 1, led: true }, Date.now())).outcome).toBe('applied');
    const dir = mkdtempSync(join(tmpdir(), 'tandem-real-'));
    await writeDeviceConfigWithBinary(binary, dir, config);
    new RealEspruino({ binaryPath: binary, workDir: dir, bundlePath, bootFrom: 'storage' }).install();
    device = bootFromStorage(binary, dir, 'setTimeout(function(){print("MEMORY "+JSON.stringify(process.memory()))},6000)');
    await waitFor(async () => (await repository.countEvents('real-a')) >= 3, 30_000, 'telemetry from the interpreter');
    await waitFor(() => device!.output().some((line) => line.startsWith('MEMORY ')), 15_000, 'the memory report');
    const lines = device.output();
    expect(lines).toContain('device real-a, boot epoch 1');
    expect(lines).toContain('led on');
    expect(lines.some((line) => line.includes('Uncaught') || line.includes('OUT OF MEMORY'))).toBe(false);
    const state = await repository.getState('real-a');
    const reported = new Map(state!.entries.map((entry) => [entry.key, entry.reportedValue]));
    expect(reported.get('firmware')).toBe('0.1.0');
    expect(reported.get('bootCount')).toBe(1);
    const memory = JSON.parse(lines.find((line) => line.startsWith('MEMORY '))!.slice(7)) as { usage: number; total: number };
    console.log(`real Espruino: ${memory.usage} of ${memory.total} JsVars in use with the firmware running`);
    expect(memory.usage).toBeLessThan(memory.total / 2);
  });
});
