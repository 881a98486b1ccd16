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

  it('[SYNC-33] keeps events made offline over a load() and delivers them under their boot epoch', async () => {
    const bundlePath = await buildBundle();
    const config = await cloud.provision('real-b');
    const repository = cloud.cloud.context.repository;
    expect((await repository.patchDesired('real-b', 0, { reportIntervalSec: 1 }, Date.now())).outcome).toBe('applied');
    const dir = mkdtempSync(join(tmpdir(), 'tandem-real-'));
    await writeDeviceConfigWithBinary(binary, dir, config);
    new RealEspruino({ binaryPath: binary, workDir: dir, bundlePath, bootFrom: 'storage' }).install();
    // Boot 1, online: learns the 1 s reading interval (kept in its state store).
    let booted = bootFromStorage(binary, dir);
    device = booted;
    await waitFor(() => booted.output().includes('report interval 1 s'), 30_000, 'the first session');
    booted.stop();
    // Offline (nothing listens at its broker port): readings for 6 s, then load(), which runs
    // E.on('kill') and restarts from Storage as the next boot.
    await writeDeviceConfigWithBinary(binary, dir, { ...config, mqttPort: 1 });
    booted = bootFromStorage(binary, dir, 'setTimeout(function(){load();},6000)');
    device = booted;
    // (Writing the config with the binary boots the firmware too, so epochs are read, not assumed.)
    const epochs = (): number[] => booted.output().map((line) => /^device real-b, boot epoch (\d+)$/.exec(line)).filter((match) => match !== null).map((match) => Number(match![1]));
    await waitFor(() => epochs().length >= 2, 30_000, 'the reboot by load()');
    const offlineEpoch = epochs()[0]!;
    expect(epochs()[1]).toBe(offlineEpoch + 1);
    const found = booted.output().map((line) => /^events: (\d+) unacknowledged events of earlier boots on flash$/.exec(line)).find((match) => match !== null);
    expect(found, booted.output().join('\n')).toBeDefined();
    const onFlash = Number(found![1]);
    expect(onFlash).toBeGreaterThanOrEqual(4);
    booted.stop();
    // Online again: the offline boot's events arrive under its epoch, every one, once.
    await writeDeviceConfigWithBinary(binary, dir, config);
    booted = bootFromStorage(binary, dir);
    device = booted;
    const offlineSeqs = async (): Promise<number[]> => (await repository.listEvents('real-b', { limit: 1000 })).filter((event) => event.epoch === offlineEpoch).map((event) => event.seq).sort((a, b) => a - b);
    await waitFor(async () => (await offlineSeqs()).length >= onFlash, 30_000, 'the offline boot\'s events');
    const seqs = await offlineSeqs();
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
    expect(booted.output().some((line) => line.includes('Uncaught') || line.includes('OUT OF MEMORY'))).toBe(false);
  }, 120_000);
});
