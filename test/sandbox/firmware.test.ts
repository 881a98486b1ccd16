// The built firmware bundle (firmware/main.ts through the build's gate) in the sandbox, against the
// real cloud stub over real TCP: boots from its config, syncs events and state, follows the cloud's
// desired state, keeps its state over power cycles, caches while offline, and says clearly when
// its config or WiFi is wrong.
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceConfig } from '../../firmware/protocol/device-config.ts';
import { writeDeviceConfigToFlash } from '../../hal-mocks/espruino-sandbox/device-flash.ts';
import { EspruinoSandbox, type EspruinoSandboxOptions } from '../../hal-mocks/espruino-sandbox/sandbox.ts';
import { VirtualScheduler } from '../../hal-mocks/espruino-sandbox/scheduler.ts';
import { EspruinoStorage } from '../../hal-mocks/espruino-sandbox/storage.ts';
import { startTestCloud, waitFor, type TestCloud } from '../sync/helpers.ts';
import { buildBundle, temporaryDir } from './helpers.ts';

const geometry = { pageBytes: 4096, pageCount: 64 };
let bundlePath = '';
let cloud: TestCloud | undefined;
let sandbox: EspruinoSandbox | undefined;

beforeAll(async () => {
  bundlePath = await buildBundle();
});

afterEach(async () => {
  sandbox?.stop();
  sandbox = undefined;
  await cloud?.close();
  cloud = undefined;
});

function bootDevice(deviceConfig: DeviceConfig | undefined, options: EspruinoSandboxOptions = {}): { lines: string[]; imagePath: string } {
  const imagePath = join(temporaryDir('firmware'), 'device.flash');
  if (deviceConfig !== undefined) writeDeviceConfigToFlash(imagePath, deviceConfig, geometry);
  const lines: string[] = [];
  sandbox = new EspruinoSandbox({
    bundlePath,
    flashImagePath: imagePath,
    flashPageBytes: geometry.pageBytes,
    flashPageCount: geometry.pageCount,
    onConsoleLine: (line) => lines.push(line),
    ...options,
  });
  sandbox.boot();
  return { lines, imagePath };
}

/** A provisioned device whose cloud asks for a reading every second. */
async function provisioned(deviceId: string): Promise<DeviceConfig> {
  cloud = await startTestCloud();
  const config = await cloud.provision(deviceId);
  const desired = await cloud.cloud.context.repository.patchDesired(deviceId, 0, { reportIntervalSec: 1 }, Date.now());
  expect(desired.outcome).toBe('applied');
  return config;
}

async function reported(deviceId: string, key: string): Promise<unknown> {
  const state = await cloud!.cloud.context.repository.getState(deviceId);
  return state?.entries.find((entry) => entry.key === key)?.reportedValue;
}

describe('firmware bundle in the sandbox against the cloud stub', () => {
  it('boots from its config, sends telemetry and reports its state', async () => {
    const config = await provisioned('emu-a');
    const { lines } = bootDevice(config);
    expect(lines[0]).toBe('Tandem firmware 0.1.0 on Espruino 2v29');
    expect(lines).toContain('device emu-a, boot epoch 1');
    const repository = cloud!.cloud.context.repository;
    await waitFor(async () => (await repository.countEvents('emu-a')) >= 2, 15_000, 'two telemetry events in the cloud');
    const [event] = await repository.listEvents('emu-a', { limit: 1 });
    expect(event!.templateId).toBe('telemetry');
    expect(Object.keys(event!.fields as object).sort()).toEqual(['batt', 'hum', 'temp', 'ts']);
    await waitFor(async () => (await reported('emu-a', 'firmware')) === '0.1.0', 10_000, 'firmware reported');
    expect(await reported('emu-a', 'bootCount')).toBe(1);
    expect(typeof (await reported('emu-a', 'batteryMv'))).toBe('number');
    expect(lines).toContain('report interval 1 s');
    expect(sandbox!.uncaughtErrors).toEqual([]);
  });

  it('follows a desired change, keeps its state over a power cycle, and caches while offline', async () => {
    const config = await provisioned('emu-b');
    const { lines } = bootDevice(config);
    const repository = cloud!.cloud.context.repository;
    await waitFor(() => lines.includes('report interval 1 s'), 10_000, 'the session');
    const patched = await repository.patchDesired('emu-b', 1, { led: true }, Date.now());
    expect(patched.outcome).toBe('applied');
    cloud!.cloud.context.live.publish({ type: 'desired', deviceId: 'emu-b', desiredVersion: 2, keys: ['led'] });
    await waitFor(() => lines.includes('led on'), 10_000, 'the LED turned on');

    sandbox!.powerCycle();
    await waitFor(() => lines.includes('device emu-b, boot epoch 2'), 10_000, 'the second boot');
    // The LED comes back from flash at boot, before any connection.
    const afterBoot = lines.slice(lines.indexOf('device emu-b, boot epoch 2'));
    expect(afterBoot.indexOf('led on')).toBeGreaterThan(-1);
    await waitFor(async () => (await reported('emu-b', 'bootCount')) === 2, 10_000, 'bootCount 2 reported');

    sandbox!.setNetworkOnline(false);
    // What was already on its way when the link dropped may still commit: let it settle first.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const before = await repository.countEvents('emu-b');
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(await repository.countEvents('emu-b')).toBe(before);
    sandbox!.setNetworkOnline(true);
    await waitFor(async () => (await repository.countEvents('emu-b')) >= before + 3, 20_000, 'cached events after reconnecting');
    const events = await repository.listEvents('emu-b', { limit: 1000 });
    const epoch2 = events.filter((event) => event.epoch === 2).map((event) => event.seq);
    expect(new Set(epoch2).size).toBe(epoch2.length);
    expect(sandbox!.uncaughtErrors).toEqual([]);
  });

  it('[SYNC-33] keeps events cached offline over a power cycle and delivers them under the boot that made them', async () => {
    const config = await provisioned('emu-d');
    const { lines } = bootDevice(config);
    const repository = cloud!.cloud.context.repository;
    const firstBootSeqs = async (): Promise<number[]> => (await repository.listEvents('emu-d', { limit: 1000 })).filter((event) => event.epoch === 1).map((event) => event.seq).sort((a, b) => a - b);
    await waitFor(() => lines.includes('report interval 1 s'), 10_000, 'the session');
    sandbox!.setNetworkOnline(false);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const before = (await firstBootSeqs()).length;
    // Readings while offline, then a reset: E.on('kill') puts what waits in RAM on flash.
    await new Promise((resolve) => setTimeout(resolve, 5000));
    sandbox!.powerCycle();
    await waitFor(() => lines.includes('device emu-d, boot epoch 2'), 10_000, 'the second boot');
    const found = lines.map((line) => /^events: (\d+) unacknowledged events of earlier boots on flash$/.exec(line)).find((match) => match !== null);
    expect(found).toBeDefined();
    const onFlash = Number(found![1]);
    expect(onFlash).toBeGreaterThanOrEqual(2);
    sandbox!.setNetworkOnline(true);
    // One of them may have been committed before the link dropped (its ack lost): the cloud has it once.
    await waitFor(async () => (await firstBootSeqs()).length >= before + onFlash - 1, 20_000, 'the first boot\'s offline events');
    await waitFor(async () => (await repository.listEvents('emu-d', { limit: 1000 })).some((event) => event.epoch === 2), 20_000, 'the second boot\'s events');
    const seqs = await firstBootSeqs();
    // Every event of the first boot, once: nothing lost in RAM at the reset.
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
    expect(sandbox!.uncaughtErrors).toEqual([]);
  });

  it('says so when the config is missing or invalid, and does not connect', () => {
    const { lines } = bootDevice(undefined, { scheduler: new VirtualScheduler() });
    expect(lines).toEqual(['Tandem firmware 0.1.0 on Espruino 2v29', 'ERROR config: no tandem.cfg in Storage: provision the device first']);
    sandbox!.stop();
    // A file the provisioning would refuse, written straight into the flash.
    const imagePath = join(temporaryDir('firmware'), 'device.flash');
    const storage = new EspruinoStorage({ ...geometry, imagePath });
    storage.writeJSON('tandem.cfg', { deviceId: 'emu-c', secret: 's', mqttHost: '127.0.0.1', mqttPort: 0, tls: false });
    storage.close();
    const invalid: string[] = [];
    sandbox = new EspruinoSandbox({ bundlePath, flashImagePath: imagePath, flashPageCount: geometry.pageCount, scheduler: new VirtualScheduler(), onConsoleLine: (line) => invalid.push(line) });
    sandbox.boot();
    expect(invalid.at(-1)).toBe('ERROR config: tandem.cfg: mqttPort must be a whole number from 1 to 65535');
    expect(sandbox.socketCount).toBe(0);
  });

  it('joins WiFi on an ESP32 when the config names an access point, and says why when it cannot', async () => {
    const config = await provisioned('emu-d');
    const joined = bootDevice({ ...config, wifiSsid: 'lab', wifiPassword: 'pw' }, { wifiAccessPoint: { ssid: 'lab', password: 'pw' } });
    expect(joined.lines).toContain('network: joining WiFi lab');
    await waitFor(() => joined.lines.includes('network: WiFi up, ip 127.0.0.1'), 5_000, 'WiFi up');
    await waitFor(() => joined.lines.some((line) => line.startsWith('sync: session open')), 10_000, 'the session');
    sandbox!.stop();
    const wrong = bootDevice({ ...config, wifiSsid: 'elsewhere' }, { wifiAccessPoint: { ssid: 'lab' } });
    await waitFor(() => wrong.lines.at(-1) === 'ERROR network: WiFi elsewhere: no_ap_found', 5_000, 'the WiFi error');
    sandbox!.stop();
    const linux = bootDevice({ ...config, wifiSsid: 'lab' }, { platform: 'linux' });
    expect(linux.lines).toContain('network: no Wifi module, using the host network');
  });
});
